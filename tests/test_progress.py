"""Progress on stderr (generator/progress.py): drawn for people at a terminal, never in JSON or piped output."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types

import pytest
from typer.testing import CliRunner

from generator import progress, questions, scaffold, template_source
from generator.cli import app


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _identity(isolated_user):
    """A git identity and a fresh tool cache (from tests/conftest.py)."""


@pytest.fixture(scope="module")
def answers():
    return questions.complete({"project_name": "progress"}, questions.load())


def test_every_file_copier_writes_is_counted(tmp_path, answers):
    seen: list[str] = []
    with scaffold.rendering_progress(seen.append):
        written = scaffold.new(tmp_path / "repo", answers, template_source.builtin())
    assert sorted(seen) == written


def test_a_terminal_sees_the_files_being_rendered(tmp_path, answers, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress.rendering("Generating repo"):
        scaffold.new(tmp_path / "repo", answers, template_source.builtin())
    assert "Generating repo" in terminal.getvalue()
    assert "files rendered" in terminal.getvalue()


@pytest.mark.parametrize("terminal, quiet", [(False, False), (True, True)])
def test_no_progress_off_a_terminal_or_with_json(tmp_path, answers, monkeypatch, terminal, quiet):
    stream = FakeTerminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress.rendering("Generating repo", quiet=quiet):
        scaffold.new(tmp_path / "repo", answers, template_source.builtin())
    assert stream.getvalue() == ""


def test_update_json_output_stays_clean(tmp_path):
    runner = CliRunner()
    repo = tmp_path / "repo"
    assert runner.invoke(app, ["new", str(repo), "--defaults"]).exit_code == 0
    result = runner.invoke(app, ["update", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["conflicts"] == []
    assert result.stderr == ""
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout == ""


@pytest.mark.parametrize("fmt, shown", [("text", True), ("json", False), ("sarif", False)])
def test_validate_shows_progress_on_a_terminal_in_text_format_only(tmp_path, monkeypatch, fmt, shown):
    from generator.validate import Report, command

    drawn = []
    monkeypatch.setattr(command, "sys", types.SimpleNamespace(stderr=FakeTerminal()))
    monkeypatch.setattr(command, "_with_progress", lambda *args, **kwargs: drawn.append(True) or Report())
    monkeypatch.setattr(command, "validate_repo", lambda *args, **kwargs: Report())
    result = CliRunner().invoke(app, ["validate", str(tmp_path), "-o", fmt])
    assert result.exit_code == 0, result.output
    assert bool(drawn) is shown
