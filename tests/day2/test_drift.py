"""Drift: a generated repo re-rendered at its recorded version shows exactly what changed by hand."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from generator.cli import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("isolated_user")


def _new(tmp_path, engine: str):
    repo = tmp_path / f"{engine}-repo"
    result = runner.invoke(app, ["new", str(repo), "--defaults", "--data", f"engine={engine}"])
    assert result.exit_code == 0, result.output
    return repo


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_drift_lists_the_edit_the_deletion_and_the_addition(tmp_path, engine):
    repo = _new(tmp_path, engine)
    untouched = runner.invoke(app, ["drift", str(repo), "--json"])
    assert untouched.exit_code == 0, untouched.output
    assert json.loads(untouched.output) | {"version": ""} == {"version": "", "edited": [], "removed": [], "added": [], "replaced": []}
    assert "No drift" in runner.invoke(app, ["drift", str(repo)]).output

    (repo / "README.md").write_text((repo / "README.md").read_text() + "\nOur own notes.\n")
    (repo / ".yamllint").unlink()
    (repo / "clusters" / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "hand edits"], cwd=repo, check=True)

    result = runner.invoke(app, ["drift", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["edited"], report["removed"], report["added"]) == (["README.md"], [".yamllint"], ["clusters/extra.yaml"])

    diff = runner.invoke(app, ["drift", str(repo), "--diff"]).output
    assert "+++ repo/README.md" in diff and "+Our own notes." in diff
    assert "--- template/.yamllint" in diff and "+kind: ConfigMap" in diff
    assert runner.invoke(app, ["check-update", str(repo), "--drift", "--json"]).output == result.output


def test_drift_on_a_repo_without_answers_is_one_sentence(tmp_path):
    result = runner.invoke(app, ["drift", str(tmp_path)])
    assert result.exit_code == 2 and "has no .copier-answers.yml" in result.output
