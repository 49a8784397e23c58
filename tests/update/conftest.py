"""Template release fixtures: throw-away git copies of this checkout, tagged as releases.

A "release" here is what the product ships: the checkout's files at a
pyproject version. Bumping the version and changing template files in a copy
gives a later release without touching the real history.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator import template_source
from generator.template_source import TemplateSource

CHECKOUT = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """A fresh cache and a git identity, whatever the machine has."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    for key, value in {
        "GIT_AUTHOR_NAME": "Test User",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test User",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }.items():
        monkeypatch.setenv(key, value)


@dataclass
class TemplateRepo:
    """A git copy of the template whose releases tests can add."""

    root: Path

    def release(self, version: str, edits: dict[str, str] | None = None, message: str = "release") -> TemplateSource:
        """Apply file edits (path -> new text) at this version, commit, and return the tool's view of it."""
        pyproject = self.root / "pyproject.toml"
        pyproject.write_text(re.sub(r'^version = ".*"$', f'version = "{version}"', pyproject.read_text(), count=1, flags=re.M))
        for relative, text in (edits or {}).items():
            target = self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", f"{message} {version}")
        return template_source.from_checkout(self.root)

    def read(self, relative: str) -> str:
        return (self.root / relative).read_text()


@pytest.fixture
def template_repo(tmp_path) -> TemplateRepo:
    """The checkout's current files (committed or not, minus ignored) as a one-release git repo."""
    root = tmp_path / "template-src"
    root.mkdir()
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=CHECKOUT, check=True, capture_output=True
    ).stdout.decode().split("\0")
    for relative in filter(None, listed):
        source = CHECKOUT / relative
        if source.is_file():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / relative)
    git(root, "init", "-q", "-b", "main")
    return TemplateRepo(root)
