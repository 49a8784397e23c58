"""staging.stage_all stages exactly what `git add --all` stages: the first commit's tree is the same."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from generator import staging


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_the_staged_tree_is_the_one_git_add_stages(tmp_path):
    tree = tmp_path / "tree"
    (tree / "apps/dev/app-0").mkdir(parents=True)
    (tree / "apps/dev/app-0/kustomization.yaml").write_text("resources: []\n")
    (tree / "scripts").mkdir()
    (tree / "scripts/seal-secret.sh").write_text("#!/bin/sh\necho sealed\n")
    (tree / "scripts/seal-secret.sh").chmod(0o755)
    (tree / "docs").mkdir()
    (tree / "docs/a name with spaces ü.md").write_text("# é\n")
    (tree / "empty.txt").write_bytes(b"")
    (tree / ".gitignore").write_text("*.dec\n")
    (tree / "secret.dec").write_text("plaintext\n")  # ignored: never staged
    os.symlink("docs", tree / "handbook")
    twin = tmp_path / "twin"
    shutil.copytree(tree, twin, symlinks=True)

    for repo in (tree, twin):
        git(repo, "init", "--quiet")
    staging.stage_all(tree)
    git(twin, "add", "--all")

    assert git(tree, "write-tree") == git(twin, "write-tree")
    assert git(tree, "ls-files", "--stage") == git(twin, "ls-files", "--stage")
    assert "secret.dec" not in git(tree, "ls-files")
    assert git(tree, "status", "--porcelain") == git(twin, "status", "--porcelain")
    assert git(tree, "diff", "--name-only") == ""  # the work tree matches the index
    git(tree, "fsck", "--strict")


def test_a_nested_repository_is_refused_so_the_caller_falls_back_to_git_add(tmp_path):
    (tmp_path / "vendor/lib").mkdir(parents=True)
    git(tmp_path / "vendor/lib", "init", "--quiet")
    (tmp_path / "vendor/lib/file").write_text("x\n")
    git(tmp_path, "init", "--quiet")
    try:
        staging.stage_all(tmp_path)
    except staging.StagingError as error:
        assert "vendor/lib" in str(error)
    else:
        raise AssertionError("a nested repository was staged as files")
