"""Jinja's compiled templates, kept between runs.

Rendering a repo compiles ~450 distinct template sources (the files and every path template), about a
fifth of `gitops-forge new`'s time. The compiled code depends only on the source, its name and the
environment's configuration, so it is stored once per configuration in the user cache and reused by every
later render: `new`, `add`, `update` and the rest render the same template sources.

Jinja's own bytecode caches serve only loaded files, keyed by file name, which changes with every checkout of
the template Copier makes; this cache serves every compilation (path templates and question defaults too),
keyed by template name and source. The file is one marshal dump, written atomically:
concurrent runs can only lose each other's additions, never read half a file.
"""

from __future__ import annotations

import hashlib
import inspect
import marshal
import os
import sys
import tempfile
from pathlib import Path
from types import CodeType
from typing import Any

import jinja2

# Past this many entries (several template versions' worth), a save keeps only what the last run used.
MAX_ENTRIES = 4000


class CompiledTemplates:
    """Compiled code of template sources for one Jinja environment configuration, read from and saved to
    ``path``. ``install`` makes an environment compile through it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._codes = _read(path)
        self._used: set[str] = set()
        self._added = False

    @classmethod
    def for_environment(cls, env: jinja2.Environment, directory: Path) -> CompiledTemplates:
        return cls(directory / f"{_fingerprint(env)}.marshal")

    def install(self, env: jinja2.Environment) -> None:
        """Serve ``env.compile`` (behind ``from_string`` and every loaded template) from this cache.

        The environment is the caller's own instance, so its bound method is replaced on the instance.
        """
        compile_ = env.compile

        def compile(source: Any, name: str | None = None, filename: str | None = None, raw: bool = False,
                    defer_init: bool = False) -> Any:
            if raw or defer_init or not isinstance(source, str):
                return compile_(source, name, filename, raw, defer_init)
            key = _key(name, source)
            code = self._codes.get(key)
            if code is None:
                code = compile_(source, name, filename)
                self._codes[key] = code
                self._added = True
            else:
                # Extensions may keep per-compile state, reset in this hook (Copier's {% yield %} does).
                env.preprocess(source, name, filename)
            self._used.add(key)
            return code

        env.compile = compile  # type: ignore[method-assign]

    def save(self) -> None:
        """Write the cache if this run compiled anything; failing to write only costs the next run time."""
        if not self._added:
            return
        codes = self._codes
        if len(codes) > MAX_ENTRIES:
            codes = {key: code for key, code in codes.items() if key in self._used}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".compiled-")
            with os.fdopen(handle, "wb") as out:
                marshal.dump(codes, out)
            os.replace(temporary, self.path)
        except OSError:
            pass
        self._added = False


def _key(name: str | None, source: str) -> str:
    return hashlib.sha1(f"{name}\0{source}".encode("utf-8", "surrogatepass")).hexdigest()


def _read(path: Path) -> dict[str, CodeType]:
    try:
        codes = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(codes, dict) or not all(isinstance(code, CodeType) for code in codes.values()):
        return {}
    return codes


def _fingerprint(env: jinja2.Environment) -> str:
    """Everything compiled code depends on besides its source: Python, Jinja, the environment's class and
    syntax settings, and the exact code of every extension (which may rewrite the source or the parse)."""
    parts: list[Any] = [sys.version, jinja2.__version__, _class_identity(type(env))]
    parts += [_class_identity(type(extension)) for extension in sorted(env.extensions.values(), key=lambda e: e.identifier)]
    parts += [
        env.block_start_string, env.block_end_string, env.variable_start_string, env.variable_end_string,
        env.comment_start_string, env.comment_end_string, env.line_statement_prefix, env.line_comment_prefix,
        env.trim_blocks, env.lstrip_blocks, env.newline_sequence, env.keep_trailing_newline,
        env.optimized, env.is_async, env.autoescape if isinstance(env.autoescape, bool) else _class_identity(env.autoescape),
    ]
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:20]


def _class_identity(obj: Any) -> str:
    """A class or function by name and the bytes of the file that defines it."""
    name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
    try:
        source = Path(inspect.getfile(obj)).read_bytes()
    except (TypeError, OSError):
        return name
    return f"{name}:{hashlib.sha1(source).hexdigest()}"
