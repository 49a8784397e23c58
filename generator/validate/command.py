"""The `gitops-forge validate` workflow: check the options and the machine, run validate_repo with a progress
display on stderr (people at a terminal only), and turn every expected failure into one sentence."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ..render import RenderToolMissing
from . import Report, default_schema_locations, validate_repo
from .cache import ValidateCache
from .report import FORMATS


class ValidateSetupError(Exception):
    """A usage or environment problem (exit code 2); the message is one sentence with the fix."""


def check_format(fmt: str) -> str:
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ValidateSetupError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    return fmt


def _check_locations(locations: list[str]) -> None:
    for loc in locations:
        if "://" in loc or "{{" in loc:
            continue  # URL or template: missing files are reported per kind, offline is reported as such
        if not Path(loc).is_dir():
            raise ValidateSetupError(
                f"Schema location {loc!r} is not a directory; pass a directory in kubeconform's "
                "{group}/{kind}_{version}.json layout or a URL template."
            )


def run(
    path: Path,
    *,
    schema_locations: list[str] | None = None,
    kubernetes_version: str | None = None,
    ignore_missing_schemas: bool = False,
    skip: list[str] | None = None,
    progress: bool | None = None,
    schema_catalog: str | None = None,
    cache: bool = True,
) -> Report:
    """Validate ``path``. ``progress=None`` shows a progress bar when stderr is a terminal. ``schema_catalog``:
    None for the default online lookup, "" for none. ``cache`` reuses the results of unchanged entrypoints
    from earlier runs (validate/cache.py)."""
    if not path.exists():
        raise ValidateSetupError(f"{path} does not exist; pass the root directory of a GitOps repository.")
    if not path.is_dir():
        raise ValidateSetupError(f"{path} is not a directory; pass the root directory of a GitOps repository.")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ValidateSetupError(f"{path} cannot be read; check its permissions.")
    locations = list(schema_locations or []) or default_schema_locations()
    _check_locations(locations)
    store = None
    if cache:
        store = ValidateCache()
        store.prune()
    try:
        if progress is False or (progress is None and not sys.stderr.isatty()):
            return validate_repo(path, schema_locations=locations, kubernetes_version=kubernetes_version,
                                 ignore_missing_schemas=ignore_missing_schemas, skip=skip or [],
                                 schema_catalog=schema_catalog, cache=store)
        return _with_progress(path, locations, kubernetes_version, ignore_missing_schemas, skip or [], schema_catalog, store)
    except RenderToolMissing as error:
        raise ValidateSetupError(str(error)) from None
    except ValueError as error:
        message = str(error).rstrip(".")
        raise ValidateSetupError(f"{message}.") from None
    except OSError as error:
        raise ValidateSetupError(f"Could not read the repository ({error.strerror or error}: {error.filename}); "
                                 "check that the path is a readable directory.") from None


def _with_progress(path: Path, locations: list[str], version: str | None, ignore: bool, skip: list[str],
                   schema_catalog: str | None, cache: ValidateCache | None = None) -> Report:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, int] = {}
        labels = {"render": "Rendering entrypoints", "check": "Checking objects"}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return validate_repo(path, schema_locations=locations, kubernetes_version=version,
                             ignore_missing_schemas=ignore, skip=skip, on_progress=update, schema_catalog=schema_catalog,
                             cache=cache)


def parse_skip(values: list[str] | None) -> list[str]:
    """--skip GF011 --skip GF012,GF013 -> ["GF011", "GF012", "GF013"]."""
    return [v.strip().upper() for value in values or [] for v in re.split(r"[,\s]+", value) if v.strip()]
