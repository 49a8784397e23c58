"""Generated repos of both engines, each copied into a fresh git repository a test may change."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ..generated.variants import generate

ENGINES = ("flux", "argocd")
APP = "podinfo"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def snapshot(repo: Path) -> dict[str, bytes]:
    """Every file of the work tree (outside .git) and its bytes."""
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(repo.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(repo).parts[:1]}


def overlay(env: str, app: str = APP) -> str:
    return f"apps/{env}/{app}/kustomization.yaml"


def set_tag(repo: Path, env: str, tag: str, *, digest: str | None = None, commit: bool = True) -> None:
    """Edit an overlay the way a release pipeline or Renovate would, and commit it."""
    path = repo / overlay(env)
    text = path.read_text()
    lines = [line for line in text.splitlines(keepends=True) if not line.strip().startswith("digest:")]
    out = []
    for line in lines:
        if line.strip().startswith("newTag:"):
            indent = line[: len(line) - len(line.lstrip())]
            line = f'{indent}newTag: "{tag}"\n'
            if digest:
                line += f"{indent}digest: {digest}\n"
        out.append(line)
    path.write_text("".join(out))
    if commit:
        git(repo, "commit", "-qam", f"{env}: {tag}")


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture
def repo(engine, tmp_path_factory, tmp_path, isolated_user) -> Path:
    """A generated repo (defaults, GitHub CI) of the engine, committed on main."""
    generated = generate(tmp_path_factory, {"ci": "github", **({"engine": "argocd"} if engine == "argocd" else {})})
    target = tmp_path / "repo"
    shutil.copytree(generated.repo, target, ignore=shutil.ignore_patterns(".git"))
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-qm", "Generate repository with gitops-forge")
    return target


def promote(repo: Path, *args: str):
    from typer.testing import CliRunner

    from generator.cli import app

    return CliRunner().invoke(app, ["promote", *args, "--path", str(repo)])


def assert_refused(repo: Path, args: list[str], message: str) -> None:
    """`promote ARGS` refuses with one sentence containing `message`, exit 2, and touches no file."""
    before = snapshot(repo)
    result = promote(repo, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.count("Error:") == 1 and result.output.strip().endswith(".")
    assert snapshot(repo) == before
