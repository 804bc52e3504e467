"""`python -m dreamrelay` runs the CLI."""

from dreamrelay.entry import main

main()
