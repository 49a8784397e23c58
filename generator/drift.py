"""Drift: how far a generated repo has left what its template rendered.

The repo's own answers are rendered again at its recorded template version
(`_commit`), offline from the bundled release history, and compared file by
file with the repo: files edited by hand, removed, or added since generation.
That is what `update` will have to merge, and where the repo left the golden path.
"""

from __future__ import annotations

import difflib
import fnmatch
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import scaffold, template_source
from .template_source import TemplateSource


@dataclass
class Drift:
    version: str
    edited: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    # Files the template renders as placeholders that a tool replaces (`_skip_if_exists`, e.g. the
    # manifests `flux bootstrap` writes): a difference there is expected, not drift.
    replaced: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return bool(self.edited or self.removed or self.added)

    def as_dict(self, *, with_diffs: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "edited": self.edited,
            "removed": self.removed,
            "added": self.added,
            "replaced": self.replaced,
        }
        if with_diffs:
            data["diffs"] = self.diffs
        return data


def repo_files(repo: Path) -> list[str]:
    """Files that belong to the repo: tracked or not ignored by git, or every file outside .git without git."""
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=repo, capture_output=True, text=True)
    if inside.returncode == 0:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.split("\0")
        return sorted({name for name in listed if name and (repo / name).is_file()})
    return sorted(str(path.relative_to(repo)) for path in repo.rglob("*") if path.is_file() and ".git" not in path.relative_to(repo).parts)


def _placeholders(questions: Path) -> list[str]:
    config = yaml.safe_load(questions.read_text()) or {}
    return [str(pattern) for pattern in config.get("_skip_if_exists", [])]


def _unified(name: str, rendered: Path, actual: Path) -> str:
    def lines(path: Path) -> list[str]:
        if not path.exists():
            return []
        try:
            return path.read_text().splitlines(keepends=True)
        except UnicodeDecodeError:
            return ["(binary file)\n"]

    return "".join(difflib.unified_diff(lines(rendered), lines(actual), f"template/{name}", f"repo/{name}"))


def compare(repo: Path, rendered: Path, rendered_files: list[str], placeholders: list[str]) -> Drift:
    """Compare the rendered tree with the repo's files (the answers file records the version; it is compared too)."""
    actual = set(repo_files(repo))
    expected = set(rendered_files)
    drift = Drift(version="")
    for name in sorted(expected | actual):
        here, there = repo / name, rendered / name
        if name not in actual:
            drift.removed.append(name)
        elif name not in expected:
            drift.added.append(name)
        elif here.read_bytes() == there.read_bytes():
            continue
        elif any(fnmatch.fnmatch(name, pattern) for pattern in placeholders):
            drift.replaced.append(name)
            continue
        else:
            drift.edited.append(name)
        drift.diffs[name] = _unified(name, there, here)
    return drift


def drift(repo: Path, source: TemplateSource | None = None) -> Drift:
    """Render the repo's answers at its recorded version and list what differs."""
    repo = repo.absolute()
    recorded = scaffold.read_answers(repo)
    version = str(recorded.get("_commit") or "")
    if not version:
        raise scaffold.ScaffoldError(f"{repo / scaffold.ANSWERS_FILE} records no template version (_commit); restore it from git")
    source = source or _source_for(recorded)
    with tempfile.TemporaryDirectory(prefix="gitops-forge-drift-") as scratch:
        rendered = Path(scratch) / "repo"
        files = scaffold.render_at(recorded, source, version, rendered)
        result = compare(repo, rendered, files, _placeholders(template_source.questions_file()))
    result.version = version
    return result


def _source_for(recorded: dict[str, Any]) -> TemplateSource:
    url = recorded.get("_src_path", template_source.CANONICAL_URL)
    if url == template_source.CANONICAL_URL:
        return template_source.builtin()
    raise scaffold.ScaffoldError(f"this repo was generated from {url}, not the gitops-forge template; drift needs the bundled template")
