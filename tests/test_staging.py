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


def _write_tree(root: Path, files: dict[str, str], on_written=None) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if on_written:
            on_written(path)


FILES = {f"apps/{env}/app-{n}/kustomization.yaml": f"resources: [{env}-{n}]\n" for env in ("dev", "prod") for n in range(20)}


def test_blobs_streamed_while_files_are_written_give_the_tree_git_add_gives(tmp_path, monkeypatch):
    imported: list[bytes] = []
    git_ = staging._git

    def recording(repo, *args, input=None, check=True):
        if args[0] == "fast-import":
            imported.append(input)
        return git_(repo, *args, input=input, check=check)

    monkeypatch.setattr(staging, "_git", recording)
    tree, twin = tmp_path / "out" / "tree", tmp_path / "twin"
    tree.mkdir(parents=True)
    with staging.BlobStream(tree.parent, "main") as blobs:
        _write_tree(tree, FILES, blobs.add)
        (tree / "apps/dev/app-0/kustomization.yaml").write_text("resources: [changed after streaming]\n")
        (tree / "late.md").write_text("written without being streamed\n")
        assert blobs.move_into(tree)
        staging.stage_all(tree, blobs.sent)
    shutil.copytree(tree, twin, ignore=shutil.ignore_patterns(".git"))
    git(twin, "init", "--quiet", "--initial-branch=main")
    git(twin, "add", "--all")

    assert git(tree, "write-tree") == git(twin, "write-tree")
    assert git(tree, "symbolic-ref", "HEAD") == "refs/heads/main\n"
    git(tree, "fsck", "--strict")
    # Only what changed after streaming, or was never streamed, was sent to Git again.
    assert [stream.count(b"blob\ndata ") for stream in imported] == [2]
    assert git(tree, "status", "--porcelain") == "A  " + "\nA  ".join(sorted(git(twin, "ls-files").split())) + "\n"
    assert sorted(p.name for p in tree.parent.iterdir()) == ["tree"]  # the stream's temporary repo is gone


def test_a_failed_stream_falls_back_to_ordinary_staging(tmp_path):
    from generator import scaffold

    tree = tmp_path / "tree"
    tree.mkdir()
    with staging.BlobStream(tmp_path, "trunk") as blobs:
        _write_tree(tree, dict(list(FILES.items())[:5]), blobs.add)
        blobs._process.kill()  # git died mid-stream
        _write_tree(tree, dict(list(FILES.items())[5:]), blobs.add)  # add never raises
        assert scaffold.init_git(tree, "trunk", blobs)
    assert git(tree, "rev-parse", "--abbrev-ref", "HEAD") == "trunk\n"
    assert git(tree, "status", "--porcelain") == ""
    assert len(git(tree, "ls-files").split()) == len(FILES)
    git(tree, "fsck", "--strict")


def test_new_leaves_no_stream_behind_when_rendering_fails(tmp_path, monkeypatch):
    from generator import scaffold, workflows

    def failing_render(*_args, **_kwargs):
        raise scaffold.ScaffoldError("the template could not be rendered")

    monkeypatch.setattr(scaffold, "_run", failing_render)
    answers = {"default_branch": "main"}
    try:
        workflows.new_repo(tmp_path / "repo", answers)
    except scaffold.ScaffoldError:
        pass
    else:
        raise AssertionError("the failing render was not reported")
    assert list(tmp_path.iterdir()) == []
