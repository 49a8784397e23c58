"""Build a git bundle of the template's release history.

Copier can only update from a git source whose releases are PEP 440 tags. The
project does not tag releases by hand: a release *is* a `version` in
pyproject.toml, so tags are synthesised from that file's history: `vX` points
at the last commit that still carried version X. The working tree (committed
or not) is the current version, so a dev checkout or a wheel build always
ships exactly what is on disk.

Standard library only: the wheel build hook imports this file directly.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import tomllib
from pathlib import Path

_VERSION_LINE = re.compile(r'^version\s*=\s*"([^"]+)"', re.MULTILINE)
BRANCH = "main"


class BundleError(RuntimeError):
    """The template history could not be turned into a bundle."""


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BundleError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _version_of(pyproject_text: str) -> str | None:
    match = _VERSION_LINE.search(pyproject_text)
    return match.group(1) if match else None


def current_version(root: Path) -> str:
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def release_commits(root: Path) -> dict[str, str]:
    """Map each released version to the last commit that carried it (first-parent history)."""
    if not has_commits(root):  # an unpacked sdist, or a repo before its first commit
        return {}
    try:
        commits = _git("rev-list", "--first-parent", "--reverse", "HEAD", cwd=root).split()
    except BundleError:
        return {}
    bumps = set(_git("log", "--first-parent", "--format=%H", "--", "pyproject.toml", cwd=root).split())
    releases: dict[str, str] = {}
    version = None
    for commit in commits:
        if commit in bumps:
            try:
                version = _version_of(_git("show", f"{commit}:pyproject.toml", cwd=root))
            except BundleError:  # pyproject.toml deleted in this commit
                version = None
        if version:
            releases[version] = commit
    # A release only counts if it was a Copier template at the time.
    return {
        version: commit
        for version, commit in releases.items()
        if subprocess.run(
            ["git", "cat-file", "-e", f"{commit}:copier.yml"], cwd=root, capture_output=True
        ).returncode
        == 0
    }


def _snapshot(root: Path, git_dir: Path, parent: str | None) -> str:
    """Commit the working tree (tracked + untracked, minus ignored) into git_dir; return its sha."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            "GIT_DIR": str(git_dir),
            "GIT_WORK_TREE": str(root),
            "GIT_INDEX_FILE": str(Path(scratch) / "index"),
            "GIT_AUTHOR_NAME": "gitops-forge",
            "GIT_AUTHOR_EMAIL": "release@gitops-forge.invalid",
            "GIT_COMMITTER_NAME": "gitops-forge",
            "GIT_COMMITTER_EMAIL": "release@gitops-forge.invalid",
            # A fixed date keeps the snapshot sha a pure function of its content.
            "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
            "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
        }
        _git("add", "--all", "--", ".", ":!*.bundle", cwd=root, env=env)
        tree = _git("write-tree", cwd=root, env=env).strip()
        if parent and _git("rev-parse", f"{parent}^{{tree}}", cwd=root, env=env).strip() == tree:
            return parent
        parents = ["-p", parent] if parent else []
        return _git("commit-tree", tree, *parents, "-m", "Working tree snapshot", cwd=root, env=env).strip()


def build_bundle(root: Path, destination: Path) -> str:
    """Write the template release history of checkout `root` to `destination`; return the current version."""
    root = root.resolve()
    version = current_version(root)
    releases = release_commits(root)
    with tempfile.TemporaryDirectory() as scratch:
        git_dir = Path(scratch) / "history.git"
        _git("init", "--quiet", "--bare", str(git_dir), cwd=Path(scratch))
        head = None
        if releases:
            _git("fetch", "--quiet", "--no-tags", str(root), f"HEAD:refs/heads/{BRANCH}", cwd=git_dir)
            head = _git("rev-parse", f"refs/heads/{BRANCH}", cwd=git_dir).strip()
        head = _snapshot(root, git_dir, head)
        releases[version] = head
        _git("update-ref", f"refs/heads/{BRANCH}", head, cwd=git_dir)
        _git("symbolic-ref", "HEAD", f"refs/heads/{BRANCH}", cwd=git_dir)
        for release, commit in releases.items():
            _git("tag", "--force", f"v{release}", commit, cwd=git_dir)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_suffix(".partial")
        _git("bundle", "create", "--quiet", str(partial), "--all", cwd=git_dir)
        partial.replace(destination)
    return version


def checkout_fingerprint(root: Path) -> str:
    """Cheap identity of a checkout's state, to reuse a bundle built from it."""
    digest = hashlib.sha256()
    for args in (("rev-parse", "HEAD"), ("status", "--porcelain", "--untracked-files=all")):
        try:
            digest.update(_git(*args, cwd=root).encode())
        except BundleError:
            digest.update(b"-")
    if has_commits(root):
        digest.update(_git("diff", "HEAD", cwd=root).encode())
    for line in _git("ls-files", "--others", "--exclude-standard", cwd=root).splitlines():
        path = root / line
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def has_commits(root: Path) -> bool:
    return subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=root, capture_output=True).returncode == 0
