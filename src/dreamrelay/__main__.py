"""`python -m dreamrelay` runs the CLI."""

from dreamrelay.cli import app

app()
