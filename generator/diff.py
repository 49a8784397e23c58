"""What a change does to each cluster: render every entrypoint at two revisions and compare the objects.

The base revision is checked out with ``git worktree`` into a temporary directory (the head is the working
tree unless a ref is given), its files written only as far as the builds compared read them, and both are
rendered the way ``validate`` renders them (``render.render_repo``), side by side. Only entrypoints whose
inputs differ are rendered, plus those that declare them, up to the cluster directories (``apps/<env>/``,
``clusters/<cluster>/``): their Flux Kustomizations and Argo CD Applications say which clusters apply each
entrypoint. A changed YAML file that no entrypoint reads makes everything render: when in doubt, be complete.

Objects are compared by API group, kind, namespace and name. Secret ``data``/``stringData`` and SealedSecret
``encryptedData`` values never leave this module: each is replaced by ``<masked>``, or ``<masked: changed>``
where the head's value differs from the base's.
"""

from __future__ import annotations

import bisect
import difflib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from .render import (
    KUSTOMIZATION_FILES,
    Entrypoint,
    RenderResult,
    _load_all,
    argocd_sources,
    discover_entrypoints,
    entrypoint_inputs,
    parse_memo,
    render_repo,
)

FORMATS = ("text", "markdown", "json")
MARKER = "<!-- gitops-forge diff -->"  # CI finds its own PR comment by this line
MARKDOWN_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters
NO_CLUSTER = "(no cluster)"
_CLUSTER_DIR = re.compile(r"^clusters/([^/]+)")
# Where secret values live: (API group, kind) -> paths of the mappings whose values are masked.
SECRET_FIELDS = {
    ("", "Secret"): [("data",), ("stringData",)],
    ("bitnami.com", "SealedSecret"): [("spec", "encryptedData")],
}
MASKED, MASKED_CHANGED = "<masked>", "<masked: changed>"


class DiffError(Exception):
    """A usage or environment problem (exit code 2); the message is one sentence with the fix."""


@dataclass
class ObjectChange:
    change: str  # "added" | "removed" | "changed"
    api_version: str
    kind: str
    namespace: str | None
    name: str
    diff: str = ""  # unified diff of the object's YAML, secret values masked

    @property
    def title(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


@dataclass
class EntrypointDiff:
    path: str
    objects: list[ObjectChange] = field(default_factory=list)


@dataclass
class ClusterDiff:
    name: str
    entrypoints: list[EntrypointDiff] = field(default_factory=list)

    def count(self, change: str) -> int:
        return sum(o.change == change for e in self.entrypoints for o in e.objects)


@dataclass
class Revision:
    ref: str  # as given, or "working tree"
    commit: str | None  # None for the working tree


@dataclass
class DiffReport:
    base: Revision
    head: Revision
    clusters: list[ClusterDiff] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {revision, entrypoint, message}
    entrypoints: int = 0  # at both revisions together
    rendered: int = 0  # of them, rendered

    @property
    def totals(self) -> dict[str, int]:
        # An entrypoint several clusters apply is listed under each; count its objects once.
        seen: dict[tuple, str] = {}
        for cluster in self.clusters:
            for ep in cluster.entrypoints:
                for o in ep.objects:
                    seen[(ep.path, o.api_version, o.kind, o.namespace, o.name)] = o.change
        counts = {c: sum(v == c for v in seen.values()) for c in ("added", "removed", "changed")}
        return {**counts, "clusters": len([c for c in self.clusters if c.name != NO_CLUSTER])}

    @property
    def changed(self) -> bool:
        return bool(self.clusters)

    @property
    def cluster_names(self) -> list[str]:
        return [c.name for c in self.clusters if c.name != NO_CLUSTER]

    def to_dict(self) -> dict:
        return {
            "base": vars(self.base),
            "head": vars(self.head),
            "changed": self.changed,
            "totals": self.totals,
            "clusters": [
                {
                    "name": c.name,
                    "entrypoints": [
                        {"path": e.path, "objects": [vars(o) for o in e.objects]} for e in c.entrypoints
                    ],
                }
                for c in self.clusters
            ],
            "errors": self.errors,
            "entrypoints": {"total": self.entrypoints, "rendered": self.rendered},
        }


# --- git -----------------------------------------------------------------------------------------


def _git(cwd: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        verb = args[2] if args[0] == "-c" else args[0]
        raise DiffError(f"git {verb} failed ({message[-1] if message else proc.returncode}).")
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _commit_of(top: Path, ref: str) -> str:
    sha = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if not sha:
        raise DiffError(f"{ref!r} is not a commit of this repository; pass a branch, tag or commit.")
    return sha


def default_branch(top: Path, root: Path) -> str | None:
    """The ref of the default branch: the answers' `default_branch` (remote first), else origin/HEAD,
    else main or master."""
    candidates = []
    docs = _load_all(root / ".copier-answers.yml")  # discovery reads it again: one parse under diff's parse memo
    answers = docs[0] if docs else {}
    if isinstance(answers, dict) and answers.get("default_branch"):
        candidates += [f"origin/{answers['default_branch']}", str(answers["default_branch"])]
    if origin_head := _git(top, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD", check=False):
        candidates.append(origin_head)
    candidates += ["origin/main", "main", "origin/master", "master"]
    for ref in candidates:
        if _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False):
            return ref
    return None


def _changed_files(top: Path, base: str, head: str | None, prefix: str) -> list[str]:
    """Paths (relative to the diffed directory) that differ between the revisions, untracked files included
    when the head is the working tree."""
    spec = prefix or "."
    names = _git(top, "diff", "--name-only", "--no-renames", base, *([head] if head else []), "--", spec).splitlines()
    if head is None:
        names += _git(top, "ls-files", "--others", "--exclude-standard", "--", spec).splitlines()
    strip = f"{prefix}/" if prefix else ""
    return sorted({n[len(strip):] for n in names if n and n.startswith(strip)})


class _Checkout:
    """A revision in a git worktree, its files written as they are needed: git's index knows them all, and a
    diff of one app's change reads a few directories of a base that has thousands of files (writing them all
    costs more than the rest of the diff). ``whole``: write every file now."""

    def __init__(self, top: Path, directory: Path, commit: str, prefix: str, whole: bool = False) -> None:
        self.directory, self.complete = directory, False
        self.root = directory / prefix if prefix else directory
        _git(top, "worktree", "add", "--no-checkout", "--detach", "--quiet", str(directory), commit)
        _git(directory, "read-tree", commit)
        listing = subprocess.run(["git", "-C", str(directory), "ls-files", "-z"], capture_output=True, text=True,
                                 check=False).stdout
        self._files = sorted(name for name in listing.split("\0") if name)
        self._written: set[str] = set()
        if whole:
            self.write_all()

    def write_all(self) -> None:
        if not self.complete:
            # git's parallel checkout: writing, not CPU, is most of the time.
            _git(self.directory, "-c", f"checkout.workers={max(4, os.cpu_count() or 1)}", "checkout-index", "--all",
                 "--force")
            self.complete = True

    def write(self, paths: Iterable[Path]) -> int:
        """Write the files at or below ``paths`` (in this checkout; others are left out); how many were new."""
        if self.complete:
            return 0
        wanted: set[str] = set()
        for path in paths:
            try:
                rel = Path(os.path.normpath(path)).relative_to(self.directory).as_posix()
            except ValueError:
                continue
            if rel == ".":
                self.write_all()
                return 0
            start = bisect.bisect_left(self._files, rel)
            for name in self._files[start:]:
                if name != rel and not name.startswith(rel + "/"):
                    break
                wanted.add(name)
        new = sorted(wanted - self._written)
        if new:
            subprocess.run(["git", "-C", str(self.directory), "checkout-index", "--force", "-z", "--stdin"],
                           input="\0".join(new), capture_output=True, text=True, check=False)
            self._written.update(new)
        return len(new)

    def write_inputs(self, eps: list[Entrypoint]) -> None:
        """Write what building ``eps`` reads: every directory and file their kustomizations include, followed
        until nothing new turns up (each round reads the kustomizations the last one wrote)."""
        while self.write(path for ep in eps for path in entrypoint_inputs(ep)):
            pass


# --- which entrypoints to render -----------------------------------------------------------------


def _key(ep: Entrypoint) -> tuple[str, str, str]:
    return (ep.rel, ep.mode, ep.declared_by)


def _has_kustomization(directory: Path) -> bool:
    return any((directory / name).is_file() for name in KUSTOMIZATION_FILES)


class _Readers:
    """Which entrypoints read a file: the file itself is an input of theirs, or it is inside an input
    directory and not inside a nested kustomization (a unit of its own, read only where it is listed)."""

    def __init__(self, inputs: dict[tuple, set[Path]], root: Path, roots: tuple[Path, Path]) -> None:
        self.root, self.roots = root, roots
        self.index: dict[Path, set[tuple]] = {}
        for key, paths in inputs.items():
            for path in paths:
                self.index.setdefault(path, set()).add(key)
        self._units: dict[Path, bool] = {}

    def _unit(self, rel: tuple[str, ...]) -> bool:
        if rel not in self._units:
            self._units[rel] = any(_has_kustomization(r.joinpath(*rel)) for r in self.roots)
        return self._units[rel]

    def of(self, file: Path) -> set[tuple]:
        found = set(self.index.get(file, ()))
        parts = file.relative_to(self.root).parts
        for depth in range(len(parts) - 1, -1, -1):
            found |= self.index.get(self.root.joinpath(*parts[:depth]), set())
            if depth and self._unit(parts[:depth]):
                break
        return found


@dataclass
class _Plan:
    compare: set[tuple] | None  # entrypoint keys whose objects may differ; None: every entrypoint
    render: dict[str, list[Entrypoint]]  # what to render at each revision (compared ones, and declaring ones)


def _plan(eps: dict[str, list[Entrypoint]], roots: dict[str, Path], changed: list[str]) -> _Plan:
    """Which entrypoints a change can reach, and what to render to tell which clusters apply them.

    Inputs are read at the head, and at the base only for entrypoints that exist there alone: a file one
    revision reads and the other does not is listed by a kustomization file that changed, which both read.
    Files deleted in the head are looked up at the base when the head does not explain them."""
    everything = _Plan(None, eps)
    pair = (roots["base"], roots["head"])
    head_keys = {_key(ep) for ep in eps["head"]}
    specs = {side: {_key(ep): json.dumps(ep.spec, sort_keys=True, default=str) for ep in eps[side]} for side in eps}
    chosen = {k for side, other in (("base", "head"), ("head", "base"))
              for k, spec in specs[side].items() if specs[other].get(k) != spec}  # only at one revision, or re-declared
    head = _Readers({_key(ep): entrypoint_inputs(ep) for ep in eps["head"]}, roots["head"], pair)
    only_base = [ep for ep in eps["base"] if _key(ep) not in head_keys]
    base_eps, base = only_base, None

    def base_readers(every: bool) -> _Readers:
        nonlocal base, base_eps
        if base is None or (every and len(base_eps) < len(eps["base"])):
            base_eps = eps["base"] if every else base_eps
            base = _Readers({_key(ep): entrypoint_inputs(ep) for ep in base_eps}, roots["base"], pair)
        return base

    for name in changed:
        read_by = head.of(roots["head"] / name) | base_readers(False).of(roots["base"] / name)
        if not read_by and not (roots["head"] / name).exists():
            read_by = base_readers(True).of(roots["base"] / name)
        hidden = any(part.startswith(".") for part in Path(name).parts)
        if not read_by and name.endswith((".yaml", ".yml")) and not hidden:
            return everything  # a manifest nobody seems to read: cannot tell cheaply what it changes
        chosen |= read_by
    if not chosen:
        return _Plan(set(), {side: [] for side in eps})

    # Entrypoints that declare the compared ones: their Flux Kustomizations/Argo CD Applications tell which
    # clusters apply what. Up from each compared entrypoint to the cluster directories, whichever entrypoint
    # holds a file declaring it (every such file, also those of identical declarations discovery merged into
    # one entrypoint); at the base only when some entrypoint exists there alone. Nothing else: on a repo with
    # many apps, each environment's list of apps and every other cluster would cost more than the change.
    declaring: dict[str, set[tuple]] = {"base": set(), "head": set()}
    for side in ("head", "base") if only_base else ("head",):
        readers = head if side == "head" else base_readers(True)
        by_key: dict[tuple, list[Entrypoint]] = {}
        for ep in eps[side]:
            by_key.setdefault(_key(ep), []).append(ep)
        todo, seen = [k for k in chosen if k in by_key], set()
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            for ep in by_key.get(key, ()):
                for who in filter(None, (ep.declared_by, *ep.also_declared_by)):
                    parents = readers.of(roots[side] / who.split(": ", 1)[0])
                    if not parents:
                        return everything
                    declaring[side] |= parents
                    todo += parents
    return _Plan(chosen, {side: [ep for ep in eps[side] if _key(ep) in chosen | declaring[side]] for side in eps})


def _structure(kustomization: Path) -> str | None:
    """What discovery reads from a kustomization file: its kind and what it includes (None: no such file)."""
    if not kustomization.is_file():
        return None
    docs = _load_all(kustomization)  # what discovery reads, through the same parse memo
    body = docs[0] if docs and isinstance(docs[0], dict) else {}
    return json.dumps([body.get(k) for k in ("kind", "resources", "components", "bases")], default=str)


def _same_entrypoints(changed: list[str], roots: dict[str, Path]) -> bool:
    """Whether both revisions have the same entrypoints: no kustomization file changed, and no changed
    manifest holds Flux or Argo CD objects (which is all that discovery reads)."""
    for name in changed:
        if Path(name).name in KUSTOMIZATION_FILES:
            if len({_structure(root / name) for root in roots.values()}) != 1:
                return False
            continue
        if name.endswith((".yaml", ".yml")):
            for root in roots.values():
                try:
                    text = (root / name).read_text(encoding="utf-8")
                except FileNotFoundError:
                    continue
                except (OSError, UnicodeDecodeError):
                    return False
                if "fluxcd.io/" in text or "argoproj.io/" in text:
                    return False
    return True


# --- clusters ------------------------------------------------------------------------------------


def _declared_paths(obj: dict) -> list[tuple[str, str]]:
    """(kind, repo-relative path) of each directory a Flux Kustomization / Argo CD Application points at."""
    api, kind, spec = str(obj.get("apiVersion", "")), obj.get("kind"), obj.get("spec") or {}
    if api.startswith("kustomize.toolkit.fluxcd.io/") and kind == "Kustomization":
        paths = [spec.get("path") or "."]
    elif api.startswith("argoproj.io/") and kind == "Application":
        paths = [s["path"] for s in argocd_sources(spec) if s.get("path") and not s.get("chart")]
    else:
        return []
    return [(str(kind), Path(os.path.normpath(str(p).lstrip("/"))).as_posix()) for p in paths]


def _clusters(results: list[RenderResult]) -> dict[tuple, set[str]]:
    """Entrypoint key -> names of the clusters that apply it, following what each rendered entrypoint
    declares (and, statically, which entrypoint holds each declaring file)."""
    by_rel: dict[str, list[Entrypoint]] = {}
    for r in results:
        by_rel.setdefault(r.entrypoint.rel, []).append(r.entrypoint)
    parents: dict[tuple, set[tuple]] = {}
    for r in results:
        for obj in r.objects:
            name = str((obj.data.get("metadata") or {}).get("name", ""))
            for kind, path in _declared_paths(obj.data):
                children = by_rel.get(path, [])
                named = [c for c in children if re.search(rf": {kind} [^/]*/{re.escape(name)}$", c.declared_by)]
                for child in named or children:
                    parents.setdefault(_key(child), set()).add(_key(r.entrypoint))
    out: dict[tuple, set[str]] = {}
    for r in results:
        seen, todo = set(), [_key(r.entrypoint)]
        while todo:
            key = todo.pop()
            if key not in seen:
                seen.add(key)
                todo += parents.get(key, ())
        out[_key(r.entrypoint)] = {m.group(1) for rel, _, _ in seen if (m := _CLUSTER_DIR.match(rel))}
    return out


# --- comparing -----------------------------------------------------------------------------------


def _ident(data: dict) -> tuple[str, str, str | None, str]:
    group = str(data.get("apiVersion", "")).rpartition("/")[0]
    meta = data.get("metadata") or {}
    return (group, str(data.get("kind", "")), meta.get("namespace"), str(meta.get("name", "")))


def _masked(data: dict, other: dict | None) -> dict:
    """``data`` with its secret values replaced: ``<masked>`` where ``other`` (the base) has the same value
    or is not given, ``<masked: changed>`` where it differs or lacks the key."""
    group, kind = _ident(data)[:2]
    paths = SECRET_FIELDS.get((group, kind))
    if not paths:
        return data
    data = json.loads(json.dumps(data, default=str))
    for path in paths:
        node, theirs = data, other
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            theirs = theirs.get(part) if isinstance(theirs, dict) else None
        values = node.get(path[-1]) if isinstance(node, dict) else None
        if not isinstance(values, dict):
            if values is not None:
                node[path[-1]] = MASKED
            continue
        theirs = theirs.get(path[-1]) if isinstance(theirs, dict) else None
        for key, value in values.items():
            same = other is None or (isinstance(theirs, dict) and theirs.get(key) == value)
            values[key] = MASKED if same else MASKED_CHANGED
    return data


def _dump(data: dict) -> list[str]:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1_000).splitlines(keepends=True)


def _compare(base: RenderResult | None, head: RenderResult | None, labels: tuple[str, str]) -> list[ObjectChange]:
    old = {_ident(o.data): o.data for o in (base.objects if base else [])}
    new = {_ident(o.data): o.data for o in (head.objects if head else [])}
    changes = []
    for ident in sorted(old.keys() | new.keys(), key=lambda i: tuple(str(p) for p in i)):
        a, b = old.get(ident), new.get(ident)
        if a == b:
            continue
        data = b if b is not None else a
        change = "added" if a is None else "removed" if b is None else "changed"
        text = ""
        if change == "changed":
            masked_a, masked_b = _masked(a, None), _masked(b, a)
            where = "/".join(p for p in (ident[1], ident[2], ident[3]) if p)
            text = "".join(difflib.unified_diff(_dump(masked_a), _dump(masked_b),
                                                f"{labels[0]}/{where}", f"{labels[1]}/{where}", n=3))
        changes.append(ObjectChange(change, str(data.get("apiVersion", "")), ident[1], ident[2], ident[3], text))
    return changes


# --- the workflow --------------------------------------------------------------------------------


def diff_repo(path: Path, base: str | None = None, head: str | None = None) -> DiffReport:
    """Render ``path`` at ``base`` (default: the merge base with the default branch) and ``head`` (default:
    the working tree) and report what changes, cluster by cluster. Raises DiffError, RenderToolMissing."""
    # Discovery parses every kustomization and Flux/Argo CD manifest, planning reads the kustomizations again,
    # and the base has mostly the same texts: validate's parse memo parses each text once.
    with parse_memo({}):
        return _diff_repo(path, base, head)


def _diff_repo(path: Path, base: str | None, head: str | None) -> DiffReport:
    if not path.is_dir():
        raise DiffError(f"{path} is not a directory; pass the root directory of a GitOps repository.")
    root = Path(os.path.realpath(path))
    top_text = _git(root, "rev-parse", "--show-toplevel", check=False)
    if not top_text:
        raise DiffError(f"{path} is not inside a git repository; diff compares two revisions of one.")
    top = Path(os.path.realpath(top_text))
    prefix = "" if root == top else root.relative_to(top).as_posix()
    head_commit = _commit_of(top, head) if head else None
    if base is None:
        branch = default_branch(top, root)
        if branch is None:
            raise DiffError("Cannot tell the default branch (no origin/HEAD, main or master); pass --base.")
        base_commit = _git(top, "merge-base", head_commit or "HEAD", branch, check=False)
        if not base_commit:
            raise DiffError(f"HEAD and {branch} have no common ancestor; pass --base.")
        base_label = f"merge base with {branch}"
    else:
        base_commit, base_label = _commit_of(top, base), base
    report = DiffReport(Revision(base_label, base_commit), Revision(head or "working tree", head_commit))

    with tempfile.TemporaryDirectory(prefix="gitops-forge-diff-") as tmp:
        checkouts = Path(os.path.realpath(tmp))
        # Set up while the head is discovered and planned, one after the other. A head given as a ref is written
        # whole; the base only as far as the diff reads it (_Checkout).
        pool = ThreadPoolExecutor(max_workers=1)
        pending = {
            side: pool.submit(_Checkout, top, checkouts / side, commit, prefix, whole=side == "head")
            for side, commit in (("head", head_commit), ("base", base_commit)) if commit
        }

        def checkout(side: str) -> _Checkout | None:
            return pending[side].result() if side in pending else None

        try:
            _compare_revisions(report, root, checkout, _changed_files(top, base_commit, head_commit, prefix))
        finally:
            pool.shutdown(wait=True)
            for side in pending:
                if (checkouts / side).exists():
                    _git(top, "worktree", "remove", "--force", str(checkouts / side), check=False)
            if pending:
                _git(top, "worktree", "prune", check=False)
    return report


def _compare_revisions(report: DiffReport, root: Path, checkout: Callable[[str], _Checkout | None],
                       changed: list[str]) -> None:
    head_checkout, base = checkout("head"), checkout("base")
    assert base is not None  # the base is always a commit
    head_root = head_checkout.root if head_checkout else root
    head_eps = discover_entrypoints(head_root) if head_root.is_dir() else []
    roots = {"base": base.root, "head": head_root}
    base.write(roots["base"] / name for name in changed)
    if _same_entrypoints(changed, roots):  # discovery is most of the fixed cost on big repos: do it once
        base_eps = [replace(ep, path=Path(os.path.normpath(roots["base"] / ep.rel))) for ep in head_eps]
        if not all((head_root / name).exists() for name in changed):
            base.write_all()  # _plan looks a file the head deleted up among the base's entrypoints' inputs
    else:
        base.write_all()
        base_eps = discover_entrypoints(roots["base"]) if roots["base"].is_dir() else []
    eps = {"base": base_eps, "head": head_eps}
    report.entrypoints = len(base_eps) + len(head_eps)
    if not changed:
        return
    plan = _plan(eps, roots, changed)
    report.rendered = sum(len(e) for e in plan.render.values())
    base.write_inputs(plan.render["base"])
    with ThreadPoolExecutor(max_workers=2) as pool:
        # No origin annotations: a diff names objects, not their files, and they double kustomize's work.
        futures = {side: pool.submit(render_repo, roots[side], plan.render[side], origins=False)
                   for side in eps if plan.render[side]}
        results = {side: (futures[side].result() if side in futures else []) for side in eps}
    if any(r.error for r in results["base"]) and not base.complete:
        # A file the build reads that the base's checkout lacks (one named from another directory, say): the
        # same build with every file of the base. An error that stays is the base's own.
        base.write_all()
        results["base"] = render_repo(roots["base"], plan.render["base"], origins=False)
    clusters = _clusters(results["head"])
    for key, names in _clusters(results["base"]).items():
        clusters.setdefault(key, names)
    by_key = {side: {_key(r.entrypoint): r for r in results[side]} for side in results}
    labels = ("a", "b")
    grouped: dict[str, list[EntrypointDiff]] = {}
    for key in sorted(by_key["base"].keys() | by_key["head"].keys()):
        if plan.compare is not None and key not in plan.compare:
            continue  # rendered only to find clusters; its inputs did not change
        old, new = by_key["base"].get(key), by_key["head"].get(key)
        failed = False
        for side, result in (("base", old), ("head", new)):
            if result is not None and result.error:
                report.errors.append({"revision": side, "entrypoint": key[0], "message": result.error})
                failed = True
        if failed:
            continue  # an entrypoint that does not build is reported, not compared
        objects = _compare(old, new, labels)
        if not objects:
            continue
        for cluster in sorted(clusters.get(key) or {NO_CLUSTER}):
            entry = next((e for e in grouped.setdefault(cluster, []) if e.path == key[0]), None)
            if entry is None:
                grouped[cluster].append(EntrypointDiff(key[0], objects))
            else:  # the same directory built twice for one cluster (two declarations): list objects once
                entry.objects += [o for o in objects if o not in entry.objects]
    order = sorted(grouped, key=lambda c: (c == NO_CLUSTER, c))
    report.clusters = [ClusterDiff(name, sorted(grouped[name], key=lambda e: e.path)) for name in order]


# --- output --------------------------------------------------------------------------------------


_SIGNS = {"added": "+", "removed": "-", "changed": "~"}
_COLOURS = {"added": "32", "removed": "31", "changed": "33"}


def _summary(report: DiffReport) -> str:
    t = report.totals
    clusters = ", ".join(report.cluster_names) or "none"
    return (f"{t['changed']} changed, {t['added']} added, {t['removed']} removed object(s); "
            f"clusters touched: {clusters}.")


def _revisions(report: DiffReport) -> str:
    base = f"{report.base.commit[:12]} ({report.base.ref})" if report.base.commit else report.base.ref
    head = f"{report.head.commit[:12]} ({report.head.ref})" if report.head.commit else report.head.ref
    return f"{base} → {head}"


def format_text(report: DiffReport, colour: bool = False) -> str:
    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if colour else text

    lines = [f"gitops-forge diff: {_revisions(report)}"]
    if not report.changed:
        lines.append("No rendered object changes.")
    for cluster in report.clusters:
        lines.append(paint(f"cluster {cluster.name}", "1"))
        for ep in cluster.entrypoints:
            lines.append(f"  {ep.path}")
            for o in ep.objects:
                lines.append("    " + paint(f"{_SIGNS[o.change]} {o.change} {o.title}", _COLOURS[o.change]))
                for line in o.diff.splitlines():
                    code = "36" if line.startswith("@@") else "32" if line.startswith("+") else "31" if line.startswith("-") else ""
                    lines.append("      " + (paint(line, code) if code else line))
    for error in report.errors:
        lines.append(paint(f"error ({error['revision']}) {error['entrypoint']}: {error['message']}", "31"))
    if report.changed:
        lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def format_markdown(report: DiffReport, limit: int = MARKDOWN_LIMIT) -> str:
    """One collapsible section per cluster. Past ``limit`` characters, object diffs are left out from the
    end (their list stays), then objects; the totals at the top always stay."""
    head = [MARKER, "### gitops-forge diff", "", f"`{_revisions(report)}`", ""]
    if not report.changed:
        head.append("No rendered object changes.")
    else:
        head.append(f"**{_summary(report)}**")
    errors = [f"- :x: {e['revision']} `{e['entrypoint']}`: {e['message']}" for e in report.errors]
    if errors:
        head += ["", "Entrypoints that did not render (not compared):", *errors]

    items = [(c, e, o) for c in report.clusters for e in c.entrypoints for o in e.objects]
    with_diff = len(items)
    shown = len(items)
    while True:
        text = _markdown_body(report, head, items[:shown], with_diff)
        if len(text) <= limit or shown == 0:
            return text
        if with_diff > 0:
            with_diff = max(0, with_diff - max(1, with_diff // 4))
        else:
            shown = max(0, shown - max(1, shown // 4))


def _markdown_body(report: DiffReport, head: list[str], items: list, with_diff: int) -> str:
    lines = list(head)
    index = 0
    total = sum(len(e.objects) for c in report.clusters for e in c.entrypoints)
    for cluster in report.clusters:
        counts = ", ".join(f"{cluster.count(c)} {c}" for c in ("changed", "added", "removed") if cluster.count(c))
        body: list[str] = []
        for ep in cluster.entrypoints:
            listed = False
            for o in ep.objects:
                if index >= len(items):
                    break
                if not listed:
                    body += ["", f"#### `{ep.path}`", ""]
                    listed = True
                body.append(f"- **{o.change}** `{o.title}`")
                if o.diff and index < with_diff:
                    fence = "````" if "```" in o.diff else "```"
                    body += ["", f"  {fence}diff", *(f"  {line}" for line in o.diff.splitlines()), f"  {fence}"]
                elif o.diff:
                    body.append("  (diff left out: the comment is at its size limit; run `gitops-forge diff` locally)")
                index += 1
        if not body:
            continue
        lines += ["", f"<details><summary><b>{cluster.name}</b>: {counts}</summary>", *body, "", "</details>"]
    if len(items) < total:
        lines += ["", f"… and {total - len(items)} more object change(s) not listed (size limit); "
                  "run `gitops-forge diff` locally for all of them."]
    return "\n".join(lines) + "\n"


def format_json(report: DiffReport) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


def render(report: DiffReport, fmt: str, colour: bool = False) -> str:
    if fmt == "markdown":
        return format_markdown(report)
    if fmt == "json":
        return format_json(report)
    return format_text(report, colour)


def check_format(fmt: str) -> str:
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise DiffError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    return fmt


__all__ = ["DiffError", "DiffReport", "FORMATS", "MARKER", "check_format", "diff_repo", "render"]
