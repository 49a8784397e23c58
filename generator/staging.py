"""Stage a freshly generated tree in a new Git repository, fast.

`git add --all` writes one compressed loose object per file: with thousands of files (200 apps x 4
environments) that is most of `gitops-forge new`'s time. Here every blob goes into a single pack through
`git fast-import`, and the index is filled from the blob ids. What ends up staged is exactly what `git add
--all` would stage: the same paths (Git itself lists them, honouring .gitignore), modes and contents, so
the first commit's tree is the same.

`BlobStream` feeds that pack while the files are still being rendered, so Git compresses them on the second
core instead of afterwards; `stage_all` then only adds what the stream has not seen (a file changed after it
was streamed is streamed again: ids come from the bytes on disk at staging time).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Collection
from pathlib import Path


class StagingError(RuntimeError):
    """Git refused a step; the message is Git's."""


class BlobStream:
    """Blobs written into a new repository's object pack by a running `git fast-import` as files appear.

    The repository lives in a temporary directory beside the destination (the same file system) until
    ``move_into`` makes it the destination's ``.git``. Any failure of the stream only means the files are
    staged the ordinary way later: ``add`` never raises.
    """

    def __init__(self, beside: Path, branch: str) -> None:
        self._home = Path(tempfile.mkdtemp(prefix=".gitops-forge-git-", dir=beside))
        self.sent: set[bytes] = set()
        self._process: subprocess.Popen[bytes] | None = None
        try:
            _git(self._home, "init", "--quiet", f"--initial-branch={branch}")
            self._process = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=self._home, stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (StagingError, OSError):
            self._process = None

    def add(self, path: Path) -> None:
        """Stream the contents of the regular file just written at ``path``."""
        if self._process is None:
            return
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            blob = _blob_id(data)
            if blob not in self.sent:
                assert self._process.stdin is not None
                self._process.stdin.write(b"blob\ndata %d\n%s\n" % (len(data), data))
                self.sent.add(blob)
        except OSError:  # a vanished file or a dead fast-import: staging will do it the ordinary way
            self._stop()

    def move_into(self, repo: Path) -> bool:
        """Finish the pack and make its repository ``repo/.git``; False (nothing moved) if the stream failed."""
        if self._process is None or (repo / ".git").exists():
            return False
        try:
            assert self._process.stdin is not None
            self._process.stdin.close()
            ok = self._process.wait() == 0
        except OSError:
            ok = False
        self._process = None
        if not ok:
            return False
        os.rename(self._home / ".git", repo / ".git")
        return True

    def close(self) -> None:
        self._stop()
        shutil.rmtree(self._home, ignore_errors=True)

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
            self.sent.clear()

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def stage_all(repo: Path, present: Collection[bytes] = frozenset()) -> None:
    """Stage every file `git add --all` would stage, in a repository whose index is empty. Blob ids in
    ``present`` are already in the repository's object store."""
    listed = _git(repo, "ls-files", "-z", "--others", "--exclude-standard").stdout
    paths = [p for p in listed.split(b"\0") if p]
    stream: list[bytes] = []
    entries: list[bytes] = []
    for path in paths:
        if path.endswith(b"/"):  # a nested repository: `git add` has its own rules for those
            raise StagingError(f"{os.fsdecode(path)} is a Git repository of its own")
        full = os.path.join(repo, os.fsdecode(path))
        info = os.lstat(full)
        if stat.S_ISLNK(info.st_mode):
            mode, data = b"120000", os.fsencode(os.readlink(full))
        else:
            with open(full, "rb") as handle:
                data = handle.read()
            mode = b"100755" if info.st_mode & stat.S_IXUSR else b"100644"
        blob = _blob_id(data)
        if blob not in present:
            stream += [b"blob\ndata %d\n" % len(data), data, b"\n"]
        entries.append(b"%s %s\t%s\0" % (mode, blob, path))
    if stream:
        _git(repo, "fast-import", "--quiet", input=b"".join(stream))
    _git(repo, "update-index", "-z", "--add", "--index-info", input=b"".join(entries))
    # Record the files' stat data, so that `git status` does not read every file again.
    _git(repo, "update-index", "-q", "--refresh", check=False)


def _blob_id(data: bytes) -> bytes:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().encode()


def _git(repo: Path, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True)
    if check and result.returncode != 0:
        raise StagingError(f"git {args[0]} failed in {repo}: {result.stderr.decode(errors='replace').strip()}")
    return result
