"""Checks on the repo's kustomization files themselves, not on what they render.

kustomize v5 still accepts fields it deprecated, and ``kustomize edit fix`` rewrites them; a GitOps repo should
not wait for the release that drops them. This module also indexes the strategic-merge patches, so a container
that a patch added by mistake (GF020) can be traced back to the file holding the patch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..render import KUSTOMIZATION_FILES, _load_all, _load_text
from .checks import Check, Violation
from .policy import POD_SPEC_PATHS


DEPRECATED_FIELD = Check(
    "GF021", "error", "Kustomization uses a deprecated field",
    "Move the entries to the replacement field named in the message; `kustomize edit fix` does it for you.",
)
CHECKS = [DEPRECATED_FIELD]

# Deprecated kustomization field -> what replaces it (kustomize v5 deprecation notices).
DEPRECATED_FIELDS = {
    "bases": "resources:",
    "commonLabels": "labels: (with includeSelectors: true to keep selector behaviour)",
    "patchesStrategicMerge": "patches: (one `- path: <file>` or `- patch: |` entry per patch)",
    "patchesJson6902": "patches: (keep each entry's target and path or patch)",
    "vars": "replacements:",
    "imageTags": "images:",
    "helmChartInflationGenerator": "helmCharts:",
}


@dataclass(frozen=True)
class FileViolation:
    file: str  # repo-relative kustomization file
    violation: Violation


@dataclass
class KustomizationFiles:
    repo: Path
    files: list[Path]  # every kustomization file of the repo
    violations: list[FileViolation] = field(default_factory=list)
    # (kind, name, container) -> files of strategic-merge patches that name that container; indexed on first use
    # (only a GF020 finding asks, and a large repo has thousands of patches)
    _patched_containers: dict[tuple[str, str, str], list[str]] | None = None

    @property
    def patched_containers(self) -> dict[tuple[str, str, str], list[str]]:
        if self._patched_containers is None:
            self._patched_containers = {}
            for kfile in self.files:
                body = _first_document(kfile)
                if not isinstance(body, dict):
                    continue
                for patch, where in _strategic_merge_patches(body, kfile, self.repo):
                    for key in _named_containers(patch):
                        self._patched_containers.setdefault(key, []).append(where)
        return self._patched_containers

    def patch_for(self, kind: str, name: str, container: str, near: str) -> str | None:
        """The patch file naming the container, preferring one at or below the directory ``near``."""
        files = self.patched_containers.get((kind, name, container)) or []
        prefix = "" if near in ("", ".") else near.rstrip("/") + "/"
        return next((f for f in files if f.startswith(prefix)), files[0] if files else None)


def scan(repo: Path, files: list[Path] | None = None, violations: list[FileViolation] | None = None) -> KustomizationFiles:
    """The repo's kustomization files (``files`` when the caller has walked the repo already) and their
    deprecated fields (``violations`` when the caller knows them for these very files)."""
    repo = Path(os.path.realpath(repo))
    out = KustomizationFiles(repo, list(_kustomization_files(repo)) if files is None else files)
    if violations is not None:
        out.violations = violations
        return out
    for kfile in out.files:
        rel = Path(os.path.relpath(kfile, repo)).as_posix()
        body = _first_document(kfile)
        if not isinstance(body, dict):
            continue
        for name, replacement in DEPRECATED_FIELDS.items():
            if name in body:
                out.violations.append(FileViolation(rel, Violation(DEPRECATED_FIELD, f"{name} -> use {replacement}")))
    return out


def _kustomization_files(repo: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        name = next((n for n in KUSTOMIZATION_FILES if n in files), None)
        if name:
            yield Path(root) / name


def _first_document(path: Path):
    docs = _load_all(path)  # shares validate's parse cache
    return docs[0] if docs else None


def _strategic_merge_patches(body: dict, kfile: Path, repo: Path) -> Iterator[tuple[dict, str]]:
    """(patch object, repo-relative file holding it) for every strategic-merge patch of a kustomization."""
    here = Path(os.path.relpath(kfile, repo)).as_posix()
    entries: list[tuple[str | None, str | None]] = []  # (inline text, file path)
    for entry in body.get("patches") or []:
        if isinstance(entry, dict):
            entries.append((entry.get("patch"), entry.get("path")))
    for entry in body.get("patchesStrategicMerge") or []:
        if isinstance(entry, str):
            inline = "\n" in entry or ":" in entry.split("/")[0]
            entries.append((entry, None) if inline else (None, entry))
    for text, path in entries:
        where = here
        if path and not text:
            file = Path(os.path.normpath(kfile.parent / path))
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            where = Path(os.path.relpath(file, repo)).as_posix()
        if not isinstance(text, str):
            continue
        for doc in _load_text(text):
            if isinstance(doc, dict) and doc.get("kind"):  # JSON 6902 patches are lists
                yield doc, where


def _named_containers(patch: dict) -> Iterator[tuple[str, str, str]]:
    kind = str(patch.get("kind"))
    name = str((patch.get("metadata") or {}).get("name", ""))
    node = patch
    for key in POD_SPEC_PATHS.get(kind, ()):
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return
    for group in ("initContainers", "containers"):
        for c in node.get(group) or []:
            if isinstance(c, dict) and c.get("name"):
                yield kind, name, str(c["name"])
