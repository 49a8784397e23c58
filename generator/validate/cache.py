"""Reuse of `validate` work across runs: a content-addressed cache of each entrypoint's render and checks.

An entrypoint's entry is keyed by everything its build reads and everything its checks depend on:

- the bytes of every file kustomize can load for it: the entrypoint directory, and for every kustomization in its
  closure the whole directory below it (patches, generator inputs) plus every path a kustomization names
  (resources, components, bases, patches, ``../`` files), followed transitively; for a directory of plain
  manifests, the manifests kustomize-controller lists;
- the declaring Flux Kustomization's or Argo CD Application's build options, the entrypoint's path and mode;
- the kustomize/kubectl binary (path, size, modification time), the version of this validator's code;
- for the checks also: the schema set (Kubernetes version of the built-in schemas, each schema location and, for
  directories, every schema file's name, size and modification time) and the CustomResourceDefinitions rendered
  anywhere in the repo (they define custom resources everywhere in it).

So an unchanged entrypoint costs a file read, and a change to a base or a component changes the key of every
overlay that uses it. A file whose size and modification time did not change is not even read again, and an
entrypoint none of whose files changed keeps its key, in a tree of the same shape (repo_state.py); so does
discovery when nothing it reads changed. Entrypoints that use a remote base are never cached (their input is not on this machine).
Cross-references between entrypoints are always checked afresh, over every entrypoint's objects.

Entries live under the user's cache directory (``$XDG_CACHE_HOME/gitops-forge/validate``), one pickle per repo holding
the entries and YAML parses its last run used (readable only by the user); a repo's file unused for 30 days is removed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..render import (
    KUSTOMIZATION_FILES,
    Entrypoint,
    RenderedObject,
    RenderResult,
    _is_remote,
    _kustomize_options,
    _load_all,
    _recursive,
    parse_memo,
    scan_manifests,
)
from ..template_source import cache_dir
from .references import BuildFacts, build_facts
from .repo_state import RepoState

FORMAT = "2"
UNUSED_DAYS = 30
_CODE = Path(__file__).resolve().parents[1]


def _sha(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    return digest.hexdigest()


@functools.cache
def code_fingerprint() -> str:
    """This validator's own code and the libraries whose results are stored."""
    from importlib.metadata import PackageNotFoundError, version

    parts: list[str | bytes] = [FORMAT]
    for path in [_CODE / "render.py", *sorted((_CODE / "validate").glob("*.py"))]:
        parts.append(path.read_bytes())
    for package in ("kubernetes-validate", "jsonschema", "pyyaml"):
        try:
            parts.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            parts.append(package)
    return _sha(*parts)


def tool_fingerprint(tool: list[str]) -> str:
    binary = Path(os.path.realpath(tool[0]))
    try:
        info = binary.stat()
        return _sha(*tool, str(binary), str(info.st_size), str(info.st_mtime_ns))
    except OSError:
        return _sha(*tool)


def schema_fingerprint(kubernetes_version: str, locations: list[str]) -> str:
    parts = [kubernetes_version]
    for loc in locations:
        parts.append(loc)
        if Path(loc).is_dir():
            for root, dirs, files in os.walk(loc):
                dirs.sort()
                for name in sorted(files):
                    info = os.stat(os.path.join(root, name))
                    parts.append(f"{os.path.relpath(os.path.join(root, name), loc)}:{info.st_size}:{info.st_mtime_ns}")
    return _sha(*parts)


def crd_fingerprint(objects: list[dict]) -> str:
    crds = [o for o in objects if o.get("kind") == "CustomResourceDefinition"]
    return _sha(*sorted(json.dumps(o, sort_keys=True, default=str) for o in crds))


class _Remote(Exception):
    """The entrypoint reads a remote base."""


def _paths_named(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _paths_named(value, out)
    elif isinstance(node, list):
        for value in node:
            _paths_named(value, out)
    elif isinstance(node, str) and node and "\n" not in node and len(node) < 1024:
        out.append(node)


def inputs(ep: Entrypoint, memo: dict[str, frozenset[str]] | None = None) -> list[str]:
    """Every file (absolute path) a build of ``ep`` can read, a superset. Raises _Remote when it uses a remote
    base. ``memo`` keeps each kustomization directory's closure across the entrypoints of one run."""
    memo = {} if memo is None else memo
    in_progress: set[str] = set()

    def kustomization_closure(directory: str, kfile: Path) -> frozenset[str]:
        if directory in memo:
            return memo[directory]
        if directory in in_progress:  # a cycle is kustomize's to report
            return frozenset()
        in_progress.add(directory)
        files: set[str] = set()
        for root, dirs, names in os.walk(directory):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            files.update(os.path.join(root, name) for name in names)
        named: list[str] = []
        for doc in _load_all(kfile):
            _paths_named(doc, named)
        for ref in named:
            if _is_remote(ref):
                raise _Remote(ref)
            if "/" not in ref and ref in (".", "..") or "/" in ref:
                target = os.path.normpath(os.path.join(directory, ref))
                if os.path.isfile(target):
                    files.add(target)
                elif os.path.isdir(target):
                    files.update(closure(target, recursive=True))
            # a bare name is a file or directory inside `directory`: already walked
        in_progress.discard(directory)
        memo[directory] = frozenset(files)
        return memo[directory]

    def closure(directory: str, recursive: bool) -> set[str]:
        if directory in memo:
            return set(memo[directory])
        if not os.path.isdir(directory):
            return set()
        kfile = next((k for n in KUSTOMIZATION_FILES if os.path.isfile(k := os.path.join(directory, n))), None)
        if kfile is not None:
            return set(kustomization_closure(directory, Path(kfile)))
        files: set[str] = set()
        for item in scan_manifests(Path(directory), recursive):
            files.update(closure(str(item), recursive=True) if item.is_dir() else {str(item)})
        return files

    files = closure(str(ep.path), _recursive(ep))
    for component in _kustomize_options(ep).get("components") or []:
        if isinstance(component, str):
            files |= closure(os.path.normpath(os.path.join(ep.path, component)), recursive=True)
    return sorted(files)


@dataclass
class Checked:
    """One entrypoint's check results: per object its schema result, and its policy violations."""

    # (status, source, [(path, message)]); None while validate waits for the repo's CRDs (never cached)
    schema: list[tuple[str, str, list[tuple[str, str]]] | None]
    policy: list[tuple[int, str, str]]  # (object index, check id, detail)


@dataclass
class ValidateCache:
    """Entries by content key, kept per repo in one pickle (one read and one write per run) that holds the entries
    the last run used. Counts hits so callers (and tests) can tell what was reused."""

    root: Path = field(default_factory=lambda: cache_dir() / "validate")
    hits: int = 0
    misses: int = 0
    state: RepoState | None = None
    _digests: dict[str, str] = field(default_factory=dict)
    _closures: dict[str, frozenset[str]] = field(default_factory=dict)
    _stored: dict[str, Any] = field(default_factory=dict)
    _used: dict[str, Any] = field(default_factory=dict)
    # (rel, mode, spec as JSON) -> (base, key, repo-relative input files), stored and this run's
    _stored_keys: dict[tuple, tuple] = field(default_factory=dict)
    _keys: dict[tuple, tuple] = field(default_factory=dict)
    _stored_discovery: tuple[str, list[Entrypoint]] | None = None
    _discovery: tuple[str, list[Entrypoint]] | None = None

    def entrypoints(self) -> list[Entrypoint] | None:
        """The last run's entrypoints when nothing discovery reads has changed since, else None."""
        key = self.state.discovery_key() if self.state else ""
        self._discovery = (key, [])
        if self._stored_discovery and self._stored_discovery[0] == key:
            self._discovery = self._stored_discovery
            return list(self._stored_discovery[1])
        return None

    def remember_entrypoints(self, eps: list[Entrypoint]) -> None:
        if self._discovery is not None:
            self._discovery = (self._discovery[0], eps)

    def render_key(self, ep: Entrypoint, base: str, repo: Path) -> str | None:
        ident = (ep.rel, ep.mode, json.dumps(ep.spec, sort_keys=True, default=str))
        old = self._stored_keys.get(ident)
        if old and old[0] == base and self.state and self.state.unchanged(old[2]):
            self._keys[ident] = old
            return old[1]
        try:
            files = inputs(ep, self._closures)
        except _Remote:
            self._keys[ident] = (base, None, [])
            return None
        parts = [base, *ident]
        prefix = str(repo) + os.sep
        for path in files:
            digest = self._digests.get(path) or (self.state.digest(path) if self.state else None)
            if digest is None:
                try:
                    with open(path, "rb") as handle:
                        digest = hashlib.sha1(handle.read()).hexdigest()
                except OSError:
                    digest = "unreadable"
                self._digests[path] = digest
            parts.append(f"{path.removeprefix(prefix)}={digest}")
        key = _sha(*parts)
        # Outside the repo a file keeps its "../" path, which no state knows: such keys are always recomputed.
        self._keys[ident] = (base, key, [Path(os.path.relpath(path, repo)).as_posix() for path in files])
        return key

    def get(self, key: str | None, kind: str, counted: bool = True) -> Any:
        """The stored value, or None. ``hits``/``misses`` count the entrypoints' entries (``counted``)."""
        if key is None:
            return None
        value = self._stored.get(f"{kind}:{key}")
        if value is None:
            self.misses += counted
            return None
        self.hits += counted
        self._used[f"{kind}:{key}"] = value
        return value

    def put(self, key: str | None, kind: str, value: Any) -> None:
        if key is not None:
            self._used[f"{kind}:{key}"] = value

    @contextmanager
    def session(self, repo: Path) -> Iterator[None]:
        """Load the repo's entries and YAML parses, run the block with them, then store what it used."""
        path = self.root / f"{_sha(FORMAT, str(repo))[:32]}.pickle"
        stored: dict[str, Any] = {}
        try:
            with path.open("rb") as handle:
                stored = pickle.load(handle)  # noqa: S301 - written by this tool into the user's own cache
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
            pass
        self._stored = stored.get("entries") or {}
        self._stored_keys = stored.get("keys") or {}
        self._stored_discovery = stored.get("discovery")
        parses = _UsedMemo(stored.get("parses") or {})
        with parse_memo(parses):
            self.state = RepoState.scan(repo, stored.get("state"))
            yield
        if (self._used.keys() != self._stored.keys() or parses.new or len(parses.used) != len(parses.stored)
                or self.state.reread or self._keys != self._stored_keys or self._discovery != self._stored_discovery):
            used_parses = {key: parses.stored.get(key, parses.new.get(key)) for key in parses.used}
            self._write(path, {"entries": self._used, "parses": used_parses, "state": self.state.to_store(),
                               "keys": self._keys, "discovery": self._discovery})

    def _write(self, path: Path, value: Any) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial = path.with_name(f"{path.name}.{os.getpid()}.part")
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            partial.replace(path)  # never a half-written file, even with two runs at once
        except OSError:
            pass  # a read-only or full cache only costs speed

    def prune(self) -> None:
        """Remove the entries of repos not validated for UNUSED_DAYS."""
        now = time.time()
        try:
            for path in self.root.glob("*.pickle*"):
                if now - path.stat().st_mtime > UNUSED_DAYS * 86400:
                    path.unlink(missing_ok=True)
        except OSError:
            pass


class _UsedMemo(dict):
    """A parse memo that records which stored parses were used and which are new."""

    def __init__(self, stored: dict[bytes, list]):
        super().__init__()
        self.stored = stored
        self.used: set[bytes] = set()
        self.new: dict[bytes, list] = {}

    def get(self, key, default=None):  # noqa: ANN001, ANN201 - dict's signature
        if key in self.stored:
            self.used.add(key)
            return self.stored[key]
        return self.new.get(key, default)

    def __setitem__(self, key, value) -> None:  # noqa: ANN001
        self.used.add(key)
        self.new[key] = value


@dataclass
class Build:
    """One entrypoint's render as validate keeps it: what the reference checks need, the object count and the
    CRDs at hand; the objects themselves loaded only when asked. Unpickling every object of a large repo costs
    more than everything else a warm run does, and only the entrypoints that changed or that the report names
    need them."""

    result: RenderResult  # its objects are loaded by objects() when the build came from the cache
    facts: BuildFacts
    count: int
    crds: list[dict]
    _stored: bytes | None = None

    @classmethod
    def of(cls, result: RenderResult) -> Build:
        crds = [o.data for o in result.objects if o.data.get("kind") == "CustomResourceDefinition"]
        return cls(result, build_facts(result.objects), len(result.objects), crds)

    @classmethod
    def load(cls, ep: Entrypoint, value: tuple) -> Build:
        error, facts, count, crds, stored = value
        return cls(RenderResult(ep, [], error), facts, count, crds, stored)

    def objects(self) -> list[RenderedObject]:
        if self._stored is not None:
            rel = self.result.entrypoint.rel
            self.result.objects = [RenderedObject(data, rel, source) for data, source in pickle.loads(self._stored)]
            self._stored = None
        return self.result.objects

    def dump(self) -> tuple:
        stored = pickle.dumps([(o.data, o.source) for o in self.objects()], protocol=pickle.HIGHEST_PROTOCOL)
        return self.result.error, self.facts, self.count, self.crds, stored
