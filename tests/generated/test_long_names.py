"""Names at the 40-character limit still give a repo that renders and passes yamllint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pytest_copie.plugin import Copie

from generator.render import render_repo

BIN = Path(sys.executable).parent


def longest(prefix: str) -> str:
    return prefix + "x" * (40 - len(prefix))


@pytest.mark.parametrize(("engine", "secrets", "verify"), [("flux", "sealed-secrets", "ssh"), ("flux", "sops", "ssh"), ("argocd", "sealed-secrets", "gpg")])
def test_longest_names_render_and_lint(engine, secrets, verify, tmp_path):
    env, team, app, cluster = longest("env-"), longest("team-"), longest("app-"), longest("cluster-")
    answers = {
        "project_name": longest("project-"),
        "engine": engine,
        "secrets": secrets,
        "verify": verify,
        "environments": [env],
        "clusters": [{"name": cluster, "environment": env}],
        "teams": [{"name": team, "groups": ["group"]}],
        "apps": [{"name": app, "team": team, "image": "ghcr.io/acme/app:1.0.0", "port": 8080}],
    }
    copie = Copie(default_template_dir=Path(__file__).resolve().parents[2], test_dir=tmp_path, config_file=tmp_path / "none.yml")
    result = copie.copy(extra_answers=answers)
    assert result.exit_code == 0, result.exception
    repo = result.project_dir
    lint = subprocess.run([str(BIN / "yamllint"), "--strict", "-c", str(repo / ".yamllint"), str(repo)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    assert [r.error for r in render_repo(repo) if r.error] == []
