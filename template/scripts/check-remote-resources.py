#!/usr/bin/env python3
"""Refuse remote bases under apps/: every kustomization there may only use files of this repository.

Usage: python3 scripts/check-remote-resources.py [DIRECTORY]   (needs PyYAML)

A kustomization in a team's directory that lists a URL (https://, ssh://, git@host:..., github.com/org/repo,
...) in `resources:`, `components:` or `bases:` would deploy manifests nobody reviewed here, past
CODEOWNERS and past the sources the cluster allows. So every entry must name a file or directory that
exists inside the repository, and no kustomization under apps/ may pull Helm charts (`helmCharts:`).
Exits 0 when every entry is local, 1 when one is not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
LISTS = ("resources", "components", "bases")


def problems(root: Path) -> list[str]:
    """One line per entry of a kustomization under apps/ that is not a local path inside root."""
    found = []
    apps = root / "apps"
    for path in sorted(p for name in KUSTOMIZATION_FILES for p in apps.rglob(name)) if apps.is_dir() else []:
        where = path.relative_to(root).as_posix()
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue  # yamllint reports files that do not parse
        if not isinstance(document, dict):
            continue
        if document.get("helmCharts"):
            found.append(f"{where}: helmCharts pulls a chart from outside this repository")
        for field in LISTS:
            for entry in document.get(field) or []:
                entry = str(entry)
                target = (path.parent / entry).resolve()
                remote = "://" in entry or entry.startswith("git@") or not target.exists()
                if remote or not target.is_relative_to(root):
                    found.append(f"{where}: {field} entry {entry!r} is not a file or directory of this repository")
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else ".").resolve()
    found = problems(root)
    for line in found:
        print(line)
    if found:
        print("Remote bases are not allowed under apps/: copy what you need into the repository, reviewed like the rest.")
        return 1
    print("Every kustomization under apps/ uses files of this repository only.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
