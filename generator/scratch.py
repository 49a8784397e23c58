"""Where short-lived files go: memory-backed /dev/shm when the machine has it with room to spare.

Thousands of small files that live for milliseconds (Copier's temporary trees, kustomize batch wrappers) cost
a fraction of a disk's time there. On a journal-less ext4, creating files on disk is also slower for minutes
after a large delete (the inode allocator skips recently freed inodes, reading the inode table for each), so
scratch files kept off the disk neither pay that nor cause it for the next command.
"""

from __future__ import annotations

import os
import shutil

SHM = "/dev/shm"


def memory_dir(needed: int = 0) -> str | None:
    """/dev/shm if it is a writable directory with room for ``needed`` bytes four times over plus 256 MiB
    (a small /dev/shm, as containers often have, is left to its usual users); else None (the usual temporary
    directory)."""
    try:
        if os.path.isdir(SHM) and os.access(SHM, os.W_OK | os.X_OK) and shutil.disk_usage(SHM).free > 4 * needed + 2**28:
            return SHM
    except OSError:
        pass
    return None
