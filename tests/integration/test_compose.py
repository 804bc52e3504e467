"""docs/deploy/compose.yaml runs what the image and the settings really offer: every DreamRelay service's
command parses as a `dreamrelay` command line, and every DREAMRELAY_* variable it sets is a setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import yaml
from typer.core import TyperCommand, TyperGroup

from dreamrelay.cli import app
from dreamrelay.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docs" / "deploy" / "compose.yaml"
NOT_SETTINGS = {"DREAMRELAY_CONFIG"}  # names the TOML file the settings are read from


def services() -> dict[str, dict[str, Any]]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return {
        name: service
        for name, service in loaded["services"].items()
        if str(service.get("image", "")).startswith("dreamrelay:")
    }


def parse(args: list[str]) -> TyperCommand:
    """The command `args` names in the `dreamrelay` CLI, its options checked as the CLI checks them: an
    unknown command raises LookupError, an unknown or malformed option typer's usage error."""
    command: TyperCommand | TyperGroup = typer.main.get_command(app)  # type: ignore[assignment]
    while isinstance(command, TyperGroup):
        name, *args = args
        found = command.get_command(typer.Context(command), name)
        if not isinstance(found, TyperCommand | TyperGroup):
            raise LookupError(f"no command {name!r} in `dreamrelay {command.name or ''}`")
        command = found
    command.make_context(command.name or "", list(args))
    return command


def test_the_dreamrelay_services_build_the_image_from_the_repository() -> None:
    found = services()
    assert {"api", "worker", "migrate"} <= set(found)
    for service in found.values():
        assert service["image"] == "dreamrelay:latest"
        assert (COMPOSE.parent / service["build"]["context"]).resolve() == ROOT
        assert (ROOT / "Dockerfile").is_file()


@pytest.mark.parametrize("name", sorted(services()))
def test_each_command_exists_in_the_cli(name: str) -> None:
    command = services()[name]["command"]
    assert command[0] != "dreamrelay", "the image's entry point is already `dreamrelay`"
    assert parse(command).name == command[0]


@pytest.mark.parametrize("name", sorted(services()))
def test_each_dreamrelay_variable_is_a_setting(name: str) -> None:
    environment: dict[str, str] = services()[name].get("environment", {})
    variables = {key for key in environment if key.startswith("DREAMRELAY_")} - NOT_SETTINGS
    assert variables
    unknown = {
        key for key in variables if key.removeprefix("DREAMRELAY_").lower() not in Settings.model_fields
    }
    assert not unknown


def test_a_wrong_command_or_variable_is_caught() -> None:
    with pytest.raises(typer.TyperException, match="no-such-option"):
        parse(["serve", "--no-such-option"])
    with pytest.raises(typer.TyperException, match="integer"):
        parse(["serve", "--port", "not-a-number"])
    with pytest.raises(LookupError):
        parse(["no-such-command"])
    with pytest.raises(LookupError):
        parse(["ledger", "no-such-command"])
    assert parse(["ledger", "verify", "--json"]).name == "verify"
    assert "nonsense" not in Settings.model_fields
