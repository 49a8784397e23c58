"""What changed in a repo since validate's last run, told by file size and modification time as `git status` does.

A warm run must not pay for what did not change: reading and hashing every file, and discovering the
entrypoints again (walking, parsing every kustomization and every Flux/Argo CD manifest). This module records,
per file, its size, modification time and content digest; the next run re-reads only the files whose size or
time changed. A file modified within two seconds of the last run's scan is re-read too, because a second edit
in the same clock tick can keep both (git's "racily clean" entries).

It also says whether discovery can be reused: discovery reads the tree's shape, every kustomization's
`kind`/`resources`/`components`/`bases`, the content of every manifest that mentions Flux or Argo CD (and the
answers file), and the repository's Git remotes and default branch. When none of that changed, the entrypoints
are the same; editing a patch, an image tag or a Deployment leaves them alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..render import KUSTOMIZATION_FILES, MANIFEST_SUFFIXES, _default_branch, _load_all, repo_urls

RACY_NS = 2_000_000_000
_GITOPS_MARKS = ("fluxcd.io/", "argoproj.io/")  # the strings discovery looks for before parsing a manifest


@dataclass
class RepoState:
    repo: Path
    # repo-relative path -> (size, mtime_ns, sha1 of the content); directories -> (-1, 0, "")
    files: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    # repo-relative path -> what discovery reads from the file, digested (only files discovery reads)
    facts: dict[str, str] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)  # content differs from the last run's, or new, or removed
    same_tree: bool = False  # no file or directory added or removed since the last run
    reread: int = 0  # files read again because their size or time changed (or may have: racy)
    scanned_ns: int = 0

    @classmethod
    def scan(cls, repo: Path, previous: dict[str, Any] | None) -> RepoState:
        """The repo now, compared with ``previous`` (``to_store()`` of the last run, or None)."""
        previous = previous or {}
        old_files: dict[str, tuple[int, int, str]] = previous.get("files") or {}
        old_facts: dict[str, str] = previous.get("facts") or {}
        racy_after = int(previous.get("scanned_ns") or 0) - RACY_NS
        state = cls(repo, scanned_ns=time.time_ns())
        for root, dirs, names in os.walk(repo):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            base = os.path.relpath(root, repo)
            prefix = "" if base == "." else base.replace(os.sep, "/") + "/"
            for d in dirs:
                state.files[prefix + d] = (-1, 0, "")
            for name in names:
                rel = prefix + name
                try:
                    info = os.stat(os.path.join(root, name))
                except OSError:
                    continue
                old = old_files.get(rel)
                if old and old[0] == info.st_size and old[1] == info.st_mtime_ns and info.st_mtime_ns < racy_after:
                    state.files[rel] = old
                    if rel in old_facts:
                        state.facts[rel] = old_facts[rel]
                    continue
                digest = state._read(rel, info)
                if not old or old[2] != digest:
                    state.changed.add(rel)
        state.same_tree = state.files.keys() == old_files.keys()
        state.changed |= old_files.keys() - state.files.keys()
        return state

    def _read(self, rel: str, info: os.stat_result) -> str:
        self.reread += 1
        path = self.repo / rel
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        digest = hashlib.sha1(data).hexdigest()
        self.files[rel] = (info.st_size, info.st_mtime_ns, digest)
        if (fact := _discovery_fact(path, data)) is not None:
            self.facts[rel] = fact
        return digest

    def digest(self, path: str) -> str | None:
        """The content digest of a file of the repo (absolute path), None for one outside it or unknown."""
        rel = os.path.relpath(path, self.repo).replace(os.sep, "/")
        known = self.files.get(rel)
        return known[2] if known and known[0] >= 0 else None

    def unchanged(self, rels: list[str]) -> bool:
        """Whether the tree kept its shape and none of these files (repo-relative, posix) changed."""
        return self.same_tree and all(rel in self.files and rel not in self.changed for rel in rels)

    def kustomization_files(self) -> list[tuple[str, str]]:
        """(repo-relative path, digest) of every kustomization file, in walk order (sorted directories)."""
        found = []
        for rel, (size, _, digest) in self.files.items():
            if size >= 0 and rel.rpartition("/")[2] in KUSTOMIZATION_FILES:
                directory = rel.rpartition("/")[0]
                # kustomize reads the first of the names that exists, as discovery does
                if next(n for n in KUSTOMIZATION_FILES if f"{directory}/{n}".lstrip("/") in self.files) == rel.rpartition("/")[2]:
                    found.append((rel, digest))
        return found

    def discovery_key(self) -> str:
        """A digest of everything entrypoint discovery reads (module docstring)."""
        digest = hashlib.sha256()
        for rel in sorted(self.files):
            digest.update(f"{rel}\0{self.facts.get(rel, '')}\n".encode("utf-8", "surrogateescape"))
        git = [sorted(repo_urls(self.repo)), _default_branch(self.repo)]
        digest.update(json.dumps(git, default=str).encode())
        return digest.hexdigest()

    def to_store(self) -> dict[str, Any]:
        return {"files": self.files, "facts": self.facts, "scanned_ns": self.scanned_ns}


def _discovery_fact(path: Path, data: bytes) -> str | None:
    """What discovery reads from this file, digested; None when it reads nothing of it."""
    if path.name in KUSTOMIZATION_FILES:
        docs = _load_all(path)
        body = docs[0] if docs and isinstance(docs[0], dict) else {}
        shape = [body.get(key) for key in ("kind", "resources", "components", "bases")]
        return hashlib.sha1(json.dumps(shape, default=str).encode()).hexdigest()
    if path.name == ".copier-answers.yml" or (
        path.suffix in MANIFEST_SUFFIXES and any(mark.encode() in data for mark in _GITOPS_MARKS)
    ):
        return hashlib.sha1(data).hexdigest()
    return None
