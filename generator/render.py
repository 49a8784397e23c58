"""Render every entrypoint of a GitOps repo with kustomize, the way its controller would.

Entrypoints are what a controller or a person actually builds: root kustomizations (included by no other),
paths named by Flux Kustomizations and Argo CD Applications, and directories of plain manifests holding
Flux/Argo CD objects (``clusters/<name>/``) that the bootstrap applies as they are.

Each entrypoint is built through a throw-away wrapper kustomization. That costs nothing and buys three
things: a place to list plain manifests the way kustomize-controller generates a kustomization for them, a
place to apply a Flux Kustomization's own ``targetNamespace``/``patches``/``images`` without touching the repo,
and, when asked (``origins=True``), kustomize's ``originAnnotations`` so every object knows its source file.
Origins are asked only where they are shown: they double kustomize's work on a layered build.

Starting kustomize costs more than most builds (it loads its OpenAPI data on every start), so entrypoints are
built in batches: one kustomize run builds many wrappers side by side, each annotating its objects' metadata
with the member's number, so the output can be handed back entrypoint by entrypoint.
kustomize refuses two objects with the same id in one build, so a batch only holds entrypoints that share no
file or directory (the same app's dev and prod overlays never meet) and, by a quick look at the files, no
object kind and name (each environment's copy of the same GitRepository). A batch that still fails is split until
the failing entrypoints are built alone: an error message is exactly what a build of that entrypoint alone
prints. Nothing is renamed or rewritten, so a batched object is byte for byte what a single build gives.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from . import scratch
from .yaml_loader import SafeLoader as _LOADER

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
SUBSTITUTE_DISABLED = "kustomize.toolkit.fluxcd.io/substitute"
# Entrypoints per kustomize run at most. Larger batches start kustomize less often; a failing entrypoint costs
# about log2(size) extra runs to isolate.
BATCH_SIZE = 32
# kustomize is a short-lived Go process: a batch allocates ~300 MB in all, and collecting garbage as it goes
# costs it a quarter of its CPU time and its neighbour a core. With GOGC=off, Go collects only near GOMEMLIMIT.
# Fresh memory costs page faults too, so the limit follows what the build reads: its live heap is ~16 times
# the bytes of its manifests (plus ~40 MB of kustomize's own), and a limit 3-4 times that was fastest, both
# for a batch of 32 app overlays (0.7 MB: 192 MiB) and for 9 MB of CRDs (~450 MiB; 192 MiB doubled its CPU).
# A GOGC or GOMEMLIMIT the user set wins.
_HEAP_PER_INPUT_BYTE = 48
_MEMORY_LIMIT_MIB = (192, 1024)  # floor and ceiling


def kustomize_environment(environ: dict[str, str], input_bytes: int = 0) -> dict[str, str]:
    """The environment of a kustomize run that reads ``input_bytes`` of manifests."""
    if {"GOGC", "GOMEMLIMIT"} & set(environ):
        return dict(environ)
    floor, ceiling = _MEMORY_LIMIT_MIB
    limit = min(max(floor, _HEAP_PER_INPUT_BYTE * input_bytes // 2**20), ceiling)
    return {**environ, "GOGC": "off", "GOMEMLIMIT": f"{limit}MiB"}


class RenderToolMissing(RuntimeError):
    """Neither kustomize nor kubectl is installed."""

    def __init__(self) -> None:
        super().__init__(
            "Neither `kustomize` nor `kubectl` was found on PATH; install kubectl (it bundles kustomize) "
            "or kustomize and run again."
        )


@dataclass(frozen=True)
class Entrypoint:
    """A directory some tool builds. ``mode`` picks the tool's rules: kustomize, flux or argocd."""

    path: Path  # absolute
    rel: str  # repo-relative, posix, "." for the root
    mode: str = "kustomize"
    declared_by: str = ""  # "<file>: <Kind> <namespace>/<name>" for Flux/Argo CD targets
    spec: dict = field(default_factory=dict, compare=False, hash=False)  # the declaring object's spec
    # Other objects declaring the same build (one entrypoint stands for them all): "<file>: <Kind> <ns>/<name>"
    also_declared_by: tuple[str, ...] = field(default=(), compare=False, hash=False)


@dataclass
class RenderedObject:
    data: dict
    entrypoint: str  # Entrypoint.rel
    # Repo-relative file the object came from, when kustomize could tell; None when rendered without origins
    # (validate fills it in, with a second build, for the objects it reports).
    source: str | None


@dataclass
class RenderResult:
    entrypoint: Entrypoint
    objects: list[RenderedObject] = field(default_factory=list)
    error: str | None = None


def find_tool() -> list[str]:
    """The command that builds a kustomization directory given as its next argument."""
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    raise RenderToolMissing()


def render_repo(
    repo: Path,
    entrypoints: list[Entrypoint] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    on_rendered: Callable[[int], None] | None = None,
    origins: bool = True,
) -> list[RenderResult]:
    """Render all entrypoints, in batches, in parallel; results keep discovery order.

    ``batch_size=1`` builds every entrypoint in a kustomize run of its own. ``on_rendered(n)`` is called
    (from worker threads) each time ``n`` more entrypoints are done, for progress displays. ``origins=False``
    leaves every object's source unknown, for half the kustomize time."""
    repo = Path(os.path.realpath(repo))
    eps = discover_entrypoints(repo) if entrypoints is None else entrypoints
    results: list[RenderResult | None] = [None] * len(eps)
    for i, result in render_stream(repo, eps, batch_size=batch_size, on_rendered=on_rendered, origins=origins):
        results[i] = result
    return results  # type: ignore[return-value] - every slot is filled


def render_stream(
    repo: Path,
    eps: list[Entrypoint],
    *,
    batch_size: int = BATCH_SIZE,
    on_rendered: Callable[[int], None] | None = None,
    origins: bool = True,
) -> Iterator[tuple[int, RenderResult]]:
    """(index in ``eps``, result) of every entrypoint, as its batch finishes: the caller checks early builds
    while later ones still render. Options as render_repo's."""
    repo = Path(os.path.realpath(repo))
    tool = find_tool()
    groups: dict[bool, list[int]] = {False: [], True: []}  # by "needs LoadRestrictionsNone"
    failed: list[tuple[int, RenderResult]] = []
    for i, ep in enumerate(eps):
        if problem := _path_problem(ep, repo):
            failed.append((i, RenderResult(ep, error=problem)))
        else:
            groups[_unrestricted(ep)].append(i)
    done = on_rendered or (lambda _n: None)
    done(len(failed))
    yield from failed
    workers = os.cpu_count() or 1

    sizes: dict[int, int] = {}  # index -> bytes of manifests its build reads, filled by _batches

    def run(indices: list[int]) -> dict[int, RenderResult]:
        return _render_batch([eps[i] for i in indices], indices, repo, tool, done, origins, sizes)

    # One thread more than kustomize runs at once: while a batch's output is parsed (Python), the next batch's
    # kustomize already runs, so no core waits for the parse. Each batch starts as soon as it is formed.
    pool = ThreadPoolExecutor(max_workers=workers + 1)
    try:
        futures = [pool.submit(run, batch) for indices in groups.values()
                   for batch in _batches(eps, indices, max(1, batch_size), workers, sizes)]
        for future in as_completed(futures):
            yield from future.result().items()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a caller that stops early leaves no batch queued


def _batches(eps: list[Entrypoint], indices: list[int], size: int, workers: int,
             sizes: dict[int, int] | None = None) -> Iterator[list[int]]:
    """Greedy: each entrypoint joins the first batch it shares no file, directory or likely object id with (the
    same GitRepository written out in every environment's directory). A batch is handed out as soon as it is
    full, so kustomize starts while the rest are formed. The rest are then split so every worker has one, and
    handed out costliest first, by the bytes of manifests they read (kustomize's time follows them), so no
    worker is left with a long batch at the end. ``sizes`` receives each entrypoint's bytes."""
    batches: list[tuple[list[int], set]] = []
    files: dict[Path, tuple[set[tuple[str, str]], int]] = {}  # manifest -> (likely ids, size), read once
    sizes = {} if sizes is None else sizes
    handed_out = 0
    for i in indices:
        footprint = _footprint(eps[i])
        marks: set = set(footprint)
        sizes[i] = 0
        for path in footprint:
            if path.suffix in MANIFEST_SUFFIXES:
                if path not in files:
                    files[path] = _likely_ids(path), _size(path)
                ids, file_size = files[path]
                marks |= ids
                sizes[i] += file_size
        n = next((n for n, (_, used) in enumerate(batches) if used.isdisjoint(marks)), len(batches))
        if n == len(batches):
            batches.append(([], set()))
        members, used = batches[n]
        members.append(i)
        used |= marks
        if len(members) >= size:
            del batches[n]
            handed_out += 1
            yield members
    out = [members for members, _ in batches]
    while handed_out + len(out) < workers and max((len(b) for b in out), default=0) > 1:
        out.sort(key=len)
        big = out.pop()
        out += [big[: len(big) // 2], big[len(big) // 2 :]]
    yield from sorted(out, key=lambda members: -sum(sizes[i] for i in members))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


_KIND = re.compile(r"^kind:\s*['\"]?([\w.-]+)", re.M)
_NAME = re.compile(r"^metadata:[^\n]*\n(?:[ \t]+[^\n]*\n)*?[ \t]+name:\s*['\"]?([\w.${}-]+)", re.M)


def _likely_ids(path: Path) -> set[tuple[str, str]]:
    """(kind, name) of the objects a manifest file most likely holds, read with a regex: only a hint for
    batching (a wrong guess costs a split batch, never a wrong result)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    ids = set()
    for doc in re.split(r"^---", text, flags=re.M):
        kind, name = _KIND.search(doc), _NAME.search(doc)
        if kind and name:
            ids.add((kind.group(1), name.group(1)))
    return ids


def _footprint(ep: Entrypoint) -> set[Path]:
    """The directories and files a build of ``ep`` reads (local ones; remote bases cannot collide locally)."""
    seen: set[Path] = set()

    def visit(path: Path) -> None:
        if path in seen:
            return
        seen.add(path)
        if not path.is_dir():
            return
        kfile = _kustomization_file(path)
        if kfile is None:
            for item in scan_manifests(path, _recursive(ep)):
                visit(item)
            return
        docs = _load_all(kfile)
        body = docs[0] if docs and isinstance(docs[0], dict) else {}
        for key in ("resources", "components", "bases"):
            for ref in body.get(key) or []:
                if isinstance(ref, str) and not _is_remote(ref):
                    visit(Path(os.path.normpath(path / ref)))

    visit(ep.path)
    for component in _kustomize_options(ep).get("components") or []:
        if isinstance(component, str):
            visit(Path(os.path.normpath(ep.path / component)))
    return seen


# --- discovery ---------------------------------------------------------------------------------------


def _kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)


def _load_all(path: Path) -> list:
    """Documents of a YAML file; files that do not parse are kustomize's to report, not discovery's."""
    try:
        return _load_text(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []


# sha1 of a YAML text -> its documents, while a caller keeps parses across runs (validate's cache): discovery
# parses every kustomization and every Flux/Argo CD manifest, and PyYAML is most of an unchanged repo's cost.
# Callers treat the documents as read-only.
_parsed: dict[bytes, list] | None = None


@contextmanager
def parse_memo(memo: dict[bytes, list]) -> Iterator[None]:
    """Reuse and record YAML parses in ``memo`` while the block runs."""
    global _parsed
    previous, _parsed = _parsed, memo
    try:
        yield
    finally:
        _parsed = previous


def _load_text(text: str) -> list:
    memo = _parsed
    if memo is not None:
        key = hashlib.sha1(text.encode("utf-8", "surrogateescape")).digest()
        if (docs := memo.get(key)) is not None:
            return docs
    try:
        docs = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
    except yaml.YAMLError:
        docs = []
    if memo is not None:
        memo[key] = docs
    return docs


def _is_remote(ref: str) -> bool:
    return "://" in ref or ref.startswith(("github.com/", "git@", "gitlab.com/", "bitbucket.org/"))


def _rel(path: Path, repo: Path) -> str:
    return Path(os.path.relpath(path, repo)).as_posix()


def scan_manifests(directory: Path, recursive: bool = True) -> list[Path]:
    """What kustomize-controller lists when a path has no kustomization: every manifest file, and sub-directories
    that have their own kustomization (not descended into). Hidden files and directories are left out."""
    found: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if _kustomization_file(entry):
                found.append(entry)
            elif recursive:
                found.extend(scan_manifests(entry))
        elif entry.suffix in MANIFEST_SUFFIXES:
            found.append(entry)
    return found


def argocd_sources(app_spec: dict) -> list[dict]:
    """The sources of an Argo CD Application spec: its single `source` or its `sources`."""
    sources = [app_spec["source"]] if app_spec.get("source") else list(app_spec.get("sources") or [])
    return [s for s in sources if isinstance(s, dict)]


def _declared_paths(obj: dict) -> list[tuple[str, str, dict]]:
    """(mode, repo-relative path, spec) for each source path a Flux/Argo CD object points at."""
    api, kind, spec = str(obj.get("apiVersion", "")), obj.get("kind"), obj.get("spec") or {}
    if api.startswith("kustomize.toolkit.fluxcd.io/") and kind == "Kustomization":
        return [("flux", spec.get("path") or ".", spec)]
    if api.startswith("argoproj.io/") and kind in ("Application", "ApplicationSet"):
        app = ((spec.get("template") or {}).get("spec") or {}) if kind == "ApplicationSet" else spec
        # Helm-chart sources and generator-templated paths are not directories of this repo.
        return [
            ("argocd", s["path"], s)
            for s in argocd_sources(app)
            if s.get("path") and not s.get("chart") and "{{" not in s["path"]
        ]
    return []


def _is_gitops_object(obj: dict) -> bool:
    api = str(obj.get("apiVersion", ""))
    return ".toolkit.fluxcd.io/" in api or api.startswith("argoproj.io/")


def _walk(repo: Path) -> tuple[dict[Path, Path], list[Path]]:
    """Kustomization dirs (-> their file) and every other manifest file, hidden directories left out."""
    kustomizations: dict[Path, Path] = {}
    manifests: list[Path] = []
    for root, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(root)
        if kfile := _kustomization_file(here):
            kustomizations[here] = kfile
        manifests += [here / f for f in sorted(files) if f.endswith(MANIFEST_SUFFIXES) and f not in KUSTOMIZATION_FILES]
    return kustomizations, manifests


def _references(kustomizations: dict[Path, Path]) -> tuple[set[Path], set[Path]]:
    """Paths some kustomization includes (resources, components, bases), and the dirs that are Components."""
    included: set[Path] = set()
    components: set[Path] = set()
    for directory, kfile in kustomizations.items():
        docs = _load_all(kfile)
        body = docs[0] if docs and isinstance(docs[0], dict) else {}
        if body.get("kind") == "Component":
            components.add(directory)
        for ref in [*(body.get("resources") or []), *(body.get("components") or []), *(body.get("bases") or [])]:
            if isinstance(ref, str) and not _is_remote(ref):
                included.add(Path(os.path.normpath(directory / ref)))
    return included, components


def normal_url(url: str) -> str:
    """host/path of a Git URL, whatever its form (https, ssh://, scp-like), without .git."""
    url = url.strip().lower()
    if m := re.match(r"^[\w.-]+@([\w.-]+):(?!//)(.*)$", url):  # git@host:org/repo
        host, path = m.groups()
    else:
        rest = re.sub(r"^[a-z+]+://", "", url)
        host, _, path = rest.partition("/")
        host = host.rpartition("@")[2].split(":")[0]
    return f"{host}/{path.strip('/').removesuffix('.git')}"


def repo_urls(repo: Path, bootstrap_urls: Iterable[str] = ()) -> set[str]:
    """The URLs this repository is known by: the GitRepository `flux bootstrap` created (when committed), the
    answers file of a generated repo, and its Git remotes; normalised by normal_url."""
    urls = set(bootstrap_urls)
    docs = _load_all(repo / ".copier-answers.yml")  # the C parser and validate's parse cache: large with many apps
    answers = docs[0] if docs else {}
    if isinstance(answers, dict) and answers.get("git_url"):
        urls.add(str(answers["git_url"]))
    try:
        remotes = subprocess.run(["git", "-C", str(repo), "remote", "-v"], capture_output=True, text=True, timeout=10)
        urls.update(line.split()[1] for line in remotes.stdout.splitlines() if len(line.split()) >= 2)
    except (OSError, subprocess.SubprocessError):
        pass
    return {normal_url(u) for u in urls if u}


def _default_branch(repo: Path) -> str | None:
    """The branch Flux syncs this repository from: a generated repo's answer, else the remote's default branch
    (never the checked-out branch: validating a feature branch must not skip the main branch's sources)."""
    docs = _load_all(repo / ".copier-answers.yml")  # as in repo_urls: the C parser, one parse under a parse memo
    answers = docs[0] if docs else {}
    if isinstance(answers, dict) and answers.get("default_branch"):
        return str(answers["default_branch"])
    try:
        head = subprocess.run(["git", "-C", str(repo), "symbolic-ref", "--short", "refs/remotes/origin/HEAD"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip().removeprefix("origin/") or None if head.returncode == 0 else None


def another_revision(git_refs: dict[tuple, str], source: tuple) -> bool:
    """Whether the GitRepository `source` (namespace, name), a GitRepository of this repository, checks out another
    branch or tag than the one Flux syncs this repository from. `git_refs` holds each GitRepository's ref as JSON,
    and at ("", "") the default branch when no flux-system GitRepository is committed."""
    own_ref, ref = git_refs.get(("flux-system", "flux-system")) or git_refs.get(("", "")), git_refs.get(source)
    if own_ref:
        return bool(ref) and ref != own_ref
    # Nothing names the branch Flux syncs this repository from (flux bootstrap's gotk-sync.yaml not committed, a
    # checkout without origin/HEAD): Flux syncs a repository's default branch, so a ref other than main or
    # master is another tree.
    return bool(ref) and json.loads(ref) not in ({"branch": "main"}, {"branch": "master"})


def git_repositories(objects: Iterable[dict]) -> tuple[dict[tuple, str], dict[tuple, str]]:
    """Each Flux GitRepository's URL, and its ref as JSON ("" when it names none), by (namespace, name)."""
    urls: dict[tuple, str] = {}
    refs: dict[tuple, str] = {}
    for obj in objects:
        if obj.get("kind") == "GitRepository" and str(obj.get("apiVersion", "")).startswith("source.toolkit."):
            meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
            key = (meta.get("namespace"), meta.get("name"))
            urls[key] = str(spec.get("url", ""))
            refs[key] = json.dumps(spec["ref"], sort_keys=True) if spec.get("ref") else ""
    return urls, refs


def _elsewhere(obj: dict, own_urls: set[str], git_urls: dict[tuple, str], git_refs: dict[tuple, str]) -> bool:
    """Whether a Flux Kustomization's or Argo CD Application's path is inside another source: an OCIRepository,
    a Bucket or an ExternalArtifact (other than the bootstrap's own), or a GitRepository / repoURL of another
    repository. Such a path is never resolved against this repository."""
    spec = obj.get("spec") or {}
    ns = (obj.get("metadata") or {}).get("namespace")
    if obj.get("kind") == "Kustomization":
        if not isinstance(spec.get("sourceRef"), dict):
            return True  # a patch of a Kustomization (sourceRef is required): it declares nothing itself
        ref = spec.get("sourceRef") or {}
        kind, name, ref_ns = ref.get("kind", "GitRepository"), ref.get("name"), ref.get("namespace") or ns
        if kind in ("OCIRepository", "Bucket", "ExternalArtifact"):
            return (ref_ns, name) != ("flux-system", "flux-system")
        url = git_urls.get((ref_ns, name))
        if kind != "GitRepository" or url is None:
            return False
        if own_urls and normal_url(url) not in own_urls:
            return True
        # The same repository at another branch or tag (flux2-multi-tenancy's tenants) is another tree.
        return another_revision(git_refs, (ref_ns, name))
    if obj.get("kind") in ("Application", "ApplicationSet"):
        app = ((spec.get("template") or {}).get("spec") or {}) if obj.get("kind") == "ApplicationSet" else spec
        urls = {normal_url(str(s.get("repoURL", ""))) for s in argocd_sources(app) if s.get("repoURL")}
        return bool(own_urls) and bool(urls) and "{{" not in " ".join(urls) and urls.isdisjoint(own_urls)
    return False


def _gitops_objects(manifests: list[Path], repo: Path) -> tuple[list[Entrypoint], dict[Path, str]]:
    """Entrypoints declared by Flux/Argo CD objects, and the dirs holding such objects (-> mode to build them)."""
    declared: list[Entrypoint] = []
    gitops_dirs: dict[Path, str] = {}
    found: list[tuple[Path, dict]] = []
    for file in manifests:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "fluxcd.io/" not in text and "argoproj.io/" not in text:
            continue  # most files: no need to parse them
        found += [(file, obj) for obj in _load_text(text) if isinstance(obj, dict) and _is_gitops_object(obj)]
    git_urls, git_refs = git_repositories(obj for _, obj in found)
    own_urls = repo_urls(repo, [git_urls.get(("flux-system", "flux-system"), "")])
    if branch := _default_branch(repo):  # when no flux-system GitRepository is committed
        git_refs[("", "")] = json.dumps({"branch": branch}, sort_keys=True)
    for file, obj in found:
        gitops_dirs.setdefault(file.parent, "flux" if "fluxcd" in str(obj.get("apiVersion")) else "argocd")
        if _elsewhere(obj, own_urls, git_urls, git_refs):
            continue
        meta = obj.get("metadata") or {}
        who = f"{_rel(file, repo)}: {obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name', '')}"
        for mode, path, spec in _declared_paths(obj):
            target = Path(os.path.normpath(repo / path))
            declared.append(Entrypoint(target, _rel(target, repo), mode, who, spec))
    return declared, gitops_dirs


def discover_entrypoints(repo: Path) -> list[Entrypoint]:
    """Root kustomizations, then declared Flux/Argo CD targets, then uncovered dirs of Flux/Argo CD objects."""
    repo = Path(os.path.realpath(repo))
    kustomizations, manifests = _walk(repo)
    included, components = _references(kustomizations)
    declared, gitops_dirs = _gitops_objects(manifests, repo)

    entrypoints = _unique(declared)
    targets = {ep.path for ep in entrypoints}
    # Dirs whose plain manifests something already builds: listed file by file, or scanned below.
    covered = {p.parent for p in included if p.suffix in MANIFEST_SUFFIXES}

    def cover(ep: Entrypoint) -> None:
        if ep.path.is_dir() and not _kustomization_file(ep.path):
            for item in scan_manifests(ep.path, _recursive(ep)):
                if item.is_dir():
                    included.add(item)
                else:
                    covered.add(item.parent)

    for ep in entrypoints:
        cover(ep)
    # Shallowest first, so clusters/prod covers clusters/prod/<sub> before the sub-dir is considered.
    for directory in sorted(gitops_dirs, key=lambda d: len(d.parts)):
        if directory in targets or directory in covered or directory in kustomizations:
            continue
        ep = Entrypoint(directory, _rel(directory, repo), gitops_dirs[directory], "", {})
        entrypoints.append(ep)
        targets.add(directory)
        cover(ep)

    roots = sorted(set(kustomizations) - included - components - targets)
    return [Entrypoint(d, _rel(d, repo)) for d in roots] + entrypoints


# The parts of a Flux Kustomization / Argo CD source that change what a build produces.
_BUILD_KEYS = (
    "targetNamespace", "namePrefix", "nameSuffix", "patches", "images", "components", "postBuild", "directory",
    "kustomize",
)


def _unique(eps: list[Entrypoint]) -> list[Entrypoint]:
    """One entrypoint per distinct build: every cluster's Flux Kustomization for infrastructure/ usually builds
    the same thing, and rendering it three times would report each problem three times."""
    seen: dict[tuple, int] = {}
    out: list[Entrypoint] = []
    for ep in eps:
        key = (ep.path, ep.mode, json.dumps({k: ep.spec.get(k) for k in _BUILD_KEYS}, sort_keys=True))
        if key not in seen:
            seen[key] = len(out)
            out.append(ep)
        else:  # kept, so that `diff` can tell every cluster that applies it
            first = out[seen[key]]
            out[seen[key]] = replace(first, also_declared_by=(*first.also_declared_by, ep.declared_by))
    return out


def _kustomize_options(ep: Entrypoint) -> dict:
    """What the declaring object adds to the kustomize build, in kustomization.yaml's own terms."""
    if ep.mode == "flux":
        spec = ep.spec
        return {
            "namespace": spec.get("targetNamespace"),
            **{key: spec.get(key) for key in ("namePrefix", "nameSuffix", "patches", "images", "components")},
        }
    if ep.mode == "argocd":
        # An Application source's `kustomize:` block. Its `images` are `kustomize edit` strings, not
        # kustomization entries, and change no object's shape, so they are left out.
        options = ep.spec.get("kustomize") or {}
        return {key: options.get(key) for key in ("namespace", "namePrefix", "nameSuffix", "patches", "components")}
    return {}


def _recursive(ep: Entrypoint) -> bool:
    # kustomize-controller descends into sub-directories; Argo CD only with `directory.recurse`.
    return ep.mode != "argocd" or bool((ep.spec.get("directory") or {}).get("recurse"))


# --- rendering ---------------------------------------------------------------------------------------


def _declared_where(ep: Entrypoint) -> str:
    return f" (declared by {ep.declared_by})" if ep.declared_by else ""


def _path_problem(ep: Entrypoint, repo: Path) -> str | None:
    where = _declared_where(ep)
    if not ep.path.is_dir():
        return f"path {ep.rel!r} does not exist in this repository{where}"
    if ep.path != repo and repo not in ep.path.parents:
        return f"path {ep.rel!r} is outside the repository{where}"
    return None


def _unrestricted(ep: Entrypoint) -> bool:
    # Flux builds without load restrictions; so must any wrapper that lists files outside itself.
    return ep.mode == "flux" or not _kustomization_file(ep.path)


def render_entrypoint(ep: Entrypoint, repo: Path, tool: list[str], origins: bool = True,
                      input_bytes: int | None = None) -> RenderResult:
    """Build one entrypoint in a kustomize run of its own (``input_bytes``: of the manifests it reads, when
    known)."""
    repo = Path(os.path.realpath(repo))
    where = _declared_where(ep)
    if problem := _path_problem(ep, repo):
        return RenderResult(ep, error=problem)
    with tempfile.TemporaryDirectory(prefix="gitops-forge-render-", dir=scratch.memory_dir()) as tmp:
        wrapper = Path(os.path.realpath(tmp))
        _write_kustomization(wrapper, _wrapper(ep, wrapper, origins=origins))
        proc = _kustomize(tool, wrapper, _unrestricted(ep), _input_bytes(ep) if input_bytes is None else input_bytes)
        if proc.returncode != 0:
            return RenderResult(ep, error=_clean_error(proc.stderr or proc.stdout, wrapper, repo) + where)
        try:
            objects = [_rendered(doc, wrapper, repo, ep) for doc in _documents(proc.stdout, ep)]
        except yaml.YAMLError as exc:
            return RenderResult(ep, error=f"variable substitution produced invalid YAML: {exc}{where}")
    return RenderResult(ep, objects)


# kustomize is CPU-bound: more runs at once than cores only slows each of them.
_KUSTOMIZE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)


def _input_bytes(ep: Entrypoint) -> int:
    return sum(_size(path) for path in _footprint(ep) if path.suffix in MANIFEST_SUFFIXES)


def _kustomize(tool: list[str], directory: Path, unrestricted: bool, input_bytes: int) -> subprocess.CompletedProcess:
    cmd = [*tool, str(directory)]
    if unrestricted:
        cmd.append("--load-restrictor=LoadRestrictionsNone")
    env = kustomize_environment(dict(os.environ), input_bytes)
    with _KUSTOMIZE_SLOTS:
        return subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)


def _render_batch(
    eps: list[Entrypoint], indices: list[int], repo: Path, tool: list[str], done: Callable[[int], None],
    origins: bool, sizes: dict[int, int],
) -> dict[int, RenderResult]:
    """Build several entrypoints in one kustomize run; on failure split the batch until the failing entrypoints
    are built alone (so their errors read exactly as a build of that entrypoint alone). ``sizes``: index ->
    bytes of manifests its build reads."""
    if len(eps) == 1:
        result = render_entrypoint(eps[0], repo, tool, origins, sizes[indices[0]])
        done(1)
        return {indices[0]: result}
    with tempfile.TemporaryDirectory(prefix="gitops-forge-render-", dir=scratch.memory_dir()) as tmp:
        root = Path(os.path.realpath(tmp))
        top = root / "batch"
        top.mkdir()
        members = []
        for k, ep in enumerate(eps):
            wrapper = root / f"w{k}"
            body = _wrapper(ep, wrapper)
            # Only the entrypoint's own kustomization and nothing to add: listed directly, no layer of its own.
            own = [os.path.relpath(ep.path, wrapper)]
            if body.keys() == {"apiVersion", "kind", "resources"} and body["resources"] == own:
                members.append(os.path.relpath(ep.path, top))
            else:
                wrapper.mkdir()
                _write_kustomization(wrapper, body)
                members.append(os.path.relpath(wrapper, top))
            (top / f"end-{k}.yaml").write_text(json.dumps(_member_end(k)), encoding="utf-8")
            members.append(f"end-{k}.yaml")
        _write_kustomization(top, {
            "resources": members,
            "sortOptions": {"order": "fifo"},  # each member's objects, then its end marker
            **({"buildMetadata": ["originAnnotations"]} if origins else {}),
        })
        proc = _kustomize(tool, top, _unrestricted(eps[0]), sum(sizes[i] for i in indices))
        if proc.returncode == 0:
            try:
                return _split_batch(proc.stdout, eps, indices, top, repo, done)
            except (yaml.YAMLError, KeyError, ValueError):
                pass  # e.g. substitution produced invalid YAML: let the single builds say where
    half = len(eps) // 2
    return {
        **_render_batch(eps[:half], indices[:half], repo, tool, done, origins, sizes),
        **_render_batch(eps[half:], indices[half:], repo, tool, done, origins, sizes),
    }


def _write_kustomization(directory: Path, body: dict) -> None:
    body = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", **body}
    (directory / "kustomization.yaml").write_text(_kustomization_text(body), encoding="utf-8")


def _kustomization_text(body: dict) -> str:
    # JSON, which kustomize reads as YAML: every string stays a string. PyYAML writes YAML 1.1 and would
    # leave a namespace `0o17` plain, which kustomize's YAML 1.2 reader takes for a number.
    return json.dumps(body, indent=2) + "\n"


def _member_end(k: int) -> dict:
    """The object a batch lists after member ``k``'s build. The batch keeps the order it lists resources in, so
    its output reads member by member, each closed by its marker, without a kustomize layer per member to label
    objects. A member object with the same id makes kustomize refuse the batch, which is then split."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"gitops-forge-batch-member-end-{k}"}}


def _is_member_end(obj: dict, k: int) -> bool:
    # By id (origin annotations may have been added): kustomize lets no other object of a build have it.
    end, meta = _member_end(k), obj.get("metadata") or {}
    return (obj.get("apiVersion"), obj.get("kind"), meta.get("name"), meta.get("namespace")) == (
        end["apiVersion"], end["kind"], end["metadata"]["name"], None)


def _split_batch(
    output: str, eps: list[Entrypoint], indices: list[int], top: Path, repo: Path, done: Callable[[int], None]
) -> dict[int, RenderResult]:
    objects: list[list[RenderedObject]] = [[] for _ in eps]
    k = 0  # the member whose objects are being read
    for text in re.split(r"^---\n", output, flags=re.M):
        obj = yaml.load(text, Loader=_LOADER)
        if not isinstance(obj, dict):
            continue
        if k < len(eps) and _is_member_end(obj, k):
            k += 1
            continue
        if k == len(eps):
            raise ValueError("objects after the batch's last member")
        objects[k].append(_rendered(_substituted(obj, text, eps[k]), top, repo, eps[k]))
    if k != len(eps):
        raise ValueError("a batch member's end marker is missing")
    done(len(eps))
    return {i: RenderResult(ep, sorted(objs, key=_legacy_order)) for i, ep, objs in zip(indices, eps, objects)}


# kustomize's default ("legacy") output order, so a batch hands back what a build of its own prints.
_ORDER_FIRST = (
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount", "PodSecurityPolicy",
    "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service",
    "LimitRange", "PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment", "StatefulSet",
    "CronJob", "PodDisruptionBudget",
)
_ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
_TYPE_ORDER = {
    **{kind: i - len(_ORDER_FIRST) for i, kind in enumerate(_ORDER_FIRST)},
    **{kind: 1 + i for i, kind in enumerate(_ORDER_LAST)},
}


def _legacy_order(obj: RenderedObject) -> tuple:
    data = obj.data
    group, _, version = str(data.get("apiVersion") or "").rpartition("/")
    kind = str(data.get("kind") or "")
    meta = data.get("metadata") or {}
    gvk = "_".join((group or "~G", version or "~V", kind or "~K"))
    # Namespaces of the core group sort before those of other groups.
    gvk_key = gvk if kind != "Namespace" else ("0" if not group else "1") + gvk
    ident = "|".join((f"{kind or '[noKind]'}.{version or '[noVer]'}.{group or '[noGrp]'}",
                      str(meta.get("namespace") or "~X"), str(meta.get("name") or "~N")))
    return (_TYPE_ORDER.get(kind, 0), gvk_key, ident)


def _wrapper(ep: Entrypoint, wrapper: Path, *, origins: bool = False) -> dict:
    rel = lambda p: os.path.relpath(p, wrapper)  # noqa: E731 - kustomize refuses absolute directory paths
    if _kustomization_file(ep.path):
        resources = [rel(ep.path)]
    else:
        resources = [rel(p) for p in scan_manifests(ep.path, _recursive(ep))]
    body: dict = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
    options = _kustomize_options(ep)
    for key in ("namespace", "namePrefix", "nameSuffix", "patches", "images"):
        if options.get(key):
            body[key] = options[key]
    if options.get("components"):
        body["components"] = [rel(ep.path / c) for c in options["components"]]
    if origins:
        body["buildMetadata"] = ["originAnnotations"]
    return body


# The wrapper's own layer of kustomize's nested error message says nothing about the repo.
_WRAPPER_LAYER = re.compile(
    r"^accumulating resources: accumulation err='accumulating resources from '[^']*': '[^']*' must resolve to a file': "
    r"recursed accumulation of path '[^']*': "
)


def _clean_error(text: str, wrapper: Path, repo: Path) -> str:
    """kubectl wraps the message in klog noise, and paths are relative to the wrapper; show repo paths."""
    match = re.search(r'err="(.*)"\s*$', text.strip(), re.S)
    message = match.group(1).replace('\\"', '"') if match else text.strip()
    message = message.replace(os.path.relpath(repo, wrapper) + os.sep, "").replace(str(repo) + os.sep, "")
    return _WRAPPER_LAYER.sub("", message, count=1).replace(str(wrapper), "<entrypoint>")


def _documents(output: str, ep: Entrypoint) -> list[dict]:
    # kustomize prints one object per `---`-separated document.
    docs = []
    for text in re.split(r"^---\n", output, flags=re.M):
        obj = yaml.load(text, Loader=_LOADER)
        if isinstance(obj, dict):
            docs.append(_substituted(obj, text, ep))
    return docs


def _substituted(obj: dict, text: str, ep: Entrypoint) -> dict:
    """The object after Flux post-build substitution, unless the entrypoint has none or the object opts out."""
    # Without `${` in the text substitution changes nothing, and the object need not be parsed again.
    if ep.mode == "flux" and (ep.spec.get("postBuild") or {}) and "${" in text:
        meta = obj.get("metadata") or {}
        marks = [(meta.get(k) or {}).get(SUBSTITUTE_DISABLED) for k in ("labels", "annotations")]
        if "disabled" not in marks:
            return yaml.load(substitute(text, ep.spec["postBuild"]), Loader=_LOADER)
    return obj


_VAR = re.compile(r"\$(\$?)\{([_A-Za-z][_A-Za-z0-9]*)(?:(:?[-=])([^}]*))?\}")


def substitute(text: str, post_build: dict) -> str:
    """Flux post-build substitution (fluxcd/pkg/envsubst): ``${var}``, ``${var:=default}``, ``${var:-default}``,
    ``${var=default}``, ``${var-default}``; ``$${var}`` escapes; ``$var`` is left alone. Other bash operators
    are rare in manifests and are left as written.

    Values from ``substituteFrom`` live in the cluster. When a Kustomization uses it, a variable with no inline
    value and no default is left as ``${var}`` rather than blanked, so validation does not invent errors."""
    values = {k: str(v).replace("\n", "") for k, v in (post_build.get("substitute") or {}).items()}
    from_cluster = bool(post_build.get("substituteFrom"))

    def replace(m: re.Match) -> str:
        escaped, name, op, default = m.groups()
        if escaped:
            return m.group(0)[1:]
        value = values.get(name)
        if op and (value is None or (op.startswith(":") and value == "")):
            return default
        if value is None:
            return m.group(0) if from_cluster else ""
        return value

    return _VAR.sub(replace, text)


def _rendered(obj: dict, wrapper: Path, repo: Path, ep: Entrypoint) -> RenderedObject:
    """The object without the annotations rendering added; kustomize's origin annotation, when asked for, becomes
    the object's source file."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    origin_text = annotations.pop(ORIGIN_ANNOTATION, None)
    if "annotations" in meta and not annotations:
        meta.pop("annotations")
    if origin_text is None:
        return RenderedObject(obj, ep.rel, None)
    origin = yaml.load(origin_text, Loader=_LOADER) or {}
    source = None
    # Remote bases carry a `repo`; generated objects name the kustomization that configured them.
    path = origin.get("path") or origin.get("configuredIn") if isinstance(origin, dict) else None
    if path and not origin.get("repo"):
        source = _rel(Path(os.path.normpath(wrapper / path)), repo)
    return RenderedObject(obj, ep.rel, source)


def entrypoint_inputs(ep: Entrypoint) -> set[Path]:
    """The local directories and files a build of ``ep`` reads, for callers that decide whether a change of
    some files can change what the entrypoint renders (e.g. `gitops-forge diff`)."""
    return _footprint(ep)
