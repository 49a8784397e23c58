"""docs/validate.md lists every check with the message and fix the tool prints."""

from __future__ import annotations

from tests.conftest import REPO_ROOT

from generator.validate import catalog


def test_every_check_is_documented_as_the_tool_states_it():
    text = (REPO_ROOT / "docs" / "validate.md").read_text()
    for check in catalog().values():
        row = f'| <a id="{check.id.lower()}"></a>{check.id} | {check.severity} | {check.message} | {check.fix} |'
        assert row in text, check.id


def test_documented_options_exist():
    from typer.testing import CliRunner

    from generator.cli import app

    help_text = CliRunner().invoke(app, ["validate", "--help"], terminal_width=200).output
    for option in ("--schema-location", "--no-catalog", "--kubernetes-version", "--ignore-missing-schemas", "--format", "--skip"):
        assert option in help_text
