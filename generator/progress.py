"""Progress on stderr for work that takes more than a moment, for people at a terminal only.

Silent when stderr is not a terminal (CI, pipes) and whenever the command prints JSON, so machine-read output
and logs stay clean. Rich draws it and removes it when the work is done.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

# Redraw at most this often: Rich's own refresh is cheap, counting files must stay cheaper than writing them.
_REFRESH = 0.1


def wanted(*, quiet: bool = False) -> bool:
    return not quiet and sys.stderr.isatty()


def console():
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def rendering(action: str, *, quiet: bool = False) -> Iterator[None]:
    """A status line counting the files Copier writes while ``action`` runs (e.g. "Updating to v0.4.1")."""
    if not wanted(quiet=quiet):
        yield
        return
    from . import scaffold

    files = 0
    last = 0.0
    with console().status(f"{action}…", spinner="dots") as status:

        def on_file(_path: str) -> None:
            nonlocal files, last
            files += 1
            now = time.monotonic()
            if now - last >= _REFRESH:
                last = now
                status.update(f"{action}: {files:,} files rendered")

        with scaffold.rendering_progress(on_file):
            yield
