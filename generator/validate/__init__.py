"""Validate a GitOps repo the way its controllers will see it: render every entrypoint, then check each
rendered object against its strict schema, the cross-references between objects and the best-practice
policy, and the repo's kustomization files for deprecated fields."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..render import (
    Entrypoint,
    RenderedObject,
    _kustomization_file,
    discover_entrypoints,
    find_tool,
    parse_memo,
    render_repo,
    render_stream,
)
from . import cache as reuse
from . import kustomizations, policy, references
from .checks import CORE_CHECKS, MISSING_SCHEMA, RENDER, SCHEMA, Check, Violation
from .schemas import BUNDLED_SCHEMAS, CRDS_CATALOG, SchemaError, SchemaResult, SchemaStore

SCHEMA_CHECK = SCHEMA.id
RENDER_CHECK = RENDER.id
MISSING_SCHEMA_CHECK = MISSING_SCHEMA.id
SCHEMAS_ENV = "GITOPS_FORGE_SCHEMAS"
CATALOG_ENV = "GITOPS_FORGE_SCHEMA_CATALOG"


def catalog() -> dict[str, Check]:
    """Every check, by id, in id order."""
    checks = [*CORE_CHECKS, *(c for c, _ in policy.CHECKS), *references.CHECKS, *kustomizations.CHECKS]
    return {c.id: c for c in sorted(checks, key=lambda c: c.id)}


def default_schema_locations() -> list[str]:
    """$GITOPS_FORGE_SCHEMAS (comma-separated directories or URL templates), tried before the bundled schemas."""
    if env := os.environ.get(SCHEMAS_ENV, "").strip():
        return [loc.strip() for loc in env.split(",") if loc.strip()]
    return []


def default_schema_catalog() -> str | None:
    """The online lookup tried last: $GITOPS_FORGE_SCHEMA_CATALOG (a URL template; empty or "none": no online
    lookup), else the CRDs-catalog."""
    env = os.environ.get(CATALOG_ENV)
    if env is None:
        return CRDS_CATALOG
    env = env.strip()
    return None if env.lower() in ("", "none", "off") else env


@dataclass(frozen=True)
class Finding:
    entrypoint: str  # repo-relative directory that was rendered
    kind: str
    name: str
    namespace: str | None
    check: str  # GF001… policy, GF1xx schema/render, GF2xx cross-references
    message: str
    severity: str  # "error" | "warning"
    fix: str = ""
    source: str | None = None  # repo-relative file the object (or the mistake) is in, when known


@dataclass(frozen=True)
class RenderError:
    entrypoint: str
    message: str
    source: str | None = None  # the entrypoint's kustomization file, or the file that declares the entrypoint
    check: str = RENDER_CHECK


@dataclass(frozen=True)
class MissingSchema:
    entrypoint: str
    api_version: str
    kind: str
    name: str
    namespace: str | None
    reason: str
    source: str | None = None
    check: str = MISSING_SCHEMA_CHECK


@dataclass
class Report:
    entrypoints: list[str] = field(default_factory=list)
    objects: int = 0
    findings: list[Finding] = field(default_factory=list)
    render_errors: list[RenderError] = field(default_factory=list)
    missing_schemas: list[MissingSchema] = field(default_factory=list)
    ignore_missing_schemas: bool = False
    skipped_checks: list[str] = field(default_factory=list)
    kubernetes_version: str = ""
    schema_locations: list[str] = field(default_factory=list)  # given by the user; tried first
    bundled_schemas: bool = True
    schema_catalog: str | None = None  # tried last

    @property
    def counts(self) -> dict[str, int]:
        return {
            "entrypoints": len(self.entrypoints),
            "objects": self.objects,
            "errors": sum(f.severity == "error" for f in self.findings),
            "warnings": sum(f.severity == "warning" for f in self.findings),
            "render_errors": len(self.render_errors),
            "missing_schemas": len(self.missing_schemas),
        }

    @property
    def kinds_without_schema(self) -> list[str]:
        """``apiVersion Kind`` of each kind that had no schema: these need a --schema-location."""
        return sorted({f"{m.api_version} {m.kind}" for m in self.missing_schemas})

    @property
    def ok(self) -> bool:
        """No errors, every entrypoint rendered, and every object had a schema (unless told to ignore that).
        Warnings are reported but do not fail."""
        c = self.counts
        return not (c["errors"] or c["render_errors"] or (c["missing_schemas"] and not self.ignore_missing_schemas))

    def to_dict(self) -> dict:
        return {**asdict(self), "counts": self.counts, "kinds_without_schema": self.kinds_without_schema, "ok": self.ok}


def _identity(obj: RenderedObject) -> dict:
    meta = obj.data.get("metadata") or {}
    return {
        "entrypoint": obj.entrypoint,
        "kind": str(obj.data.get("kind", "")),
        "name": str(meta.get("name", "")),
        "namespace": meta.get("namespace"),
        "source": obj.source,
    }


def _finding(obj: RenderedObject, check: Check, message: str, **override) -> Finding:
    return Finding(**{**_identity(obj), **override}, check=check.id, message=message, severity=check.severity, fix=check.fix)


def _entrypoint_file(ep: Entrypoint, repo: Path) -> str | None:
    if kfile := _kustomization_file(ep.path):
        return Path(os.path.relpath(kfile, repo)).as_posix()
    if ep.declared_by:
        return ep.declared_by.split(": ", 1)[0]
    return None


Progress = Callable[[str, int, int], None]  # (stage, done so far, total)


def validate_repo(
    path: str | Path,
    *,
    schema_locations: list[str],
    kubernetes_version: str | None = None,
    ignore_missing_schemas: bool = False,
    skip: Iterable[str] = (),
    on_progress: Progress | None = None,
    schema_catalog: str | None = None,
    bundled_schemas: bool = True,
    cache: reuse.ValidateCache | None = None,
) -> Report:
    """Render and check a repo. CRD schemas come from ``schema_locations``, then the bundled schemas, then the
    repo's CRDs, then ``schema_catalog`` (None: default_schema_catalog(); "": no online lookup).
    Raises RenderToolMissing without kustomize/kubectl, ValueError on bad options (an unknown Kubernetes
    version, schema location placeholder or check id). With ``cache``, entrypoints whose inputs did not change
    since a run that cached them are neither rendered nor checked again (cache.py)."""
    known = catalog()
    skip = sorted({s.strip().upper() for s in skip if s.strip()})
    if unknown := [s for s in skip if s not in known]:
        raise ValueError(f"Unknown check id(s) {', '.join(unknown)}; the checks are {', '.join(known)}.")
    catalog_url = default_schema_catalog() if schema_catalog is None else (schema_catalog or None)
    # Bad options fail before any rendering.
    store = SchemaStore(schema_locations, kubernetes_version, bundled=bundled_schemas, catalog=catalog_url)
    repo = Path(os.path.realpath(path))
    progress = on_progress or (lambda _stage, _done, _total: None)

    # Without a cache, a memo for this run still spares parsing a file twice (discovery, batching, file checks).
    with cache.session(repo) if cache is not None else parse_memo({}):
        return _validate(repo, store, known, skip, progress, ignore_missing_schemas, schema_locations, cache)


def _validate(repo: Path, store: SchemaStore, known: dict[str, Check], skip: list[str], progress: Progress,
              ignore_missing_schemas: bool, schema_locations: list[str], cache: reuse.ValidateCache | None) -> Report:
    eps = cache.entrypoints() if cache is not None else None
    if eps is None:
        eps = discover_entrypoints(repo)
        if cache is not None:
            cache.remember_entrypoints(eps)
    keys: list[str | None] = [None] * len(eps)
    builds: list[reuse.Build | None] = [None] * len(eps)
    if cache is not None:
        base = reuse._sha(reuse.code_fingerprint(), reuse.tool_fingerprint(find_tool()))
        for i, ep in enumerate(eps):
            keys[i] = cache.render_key(ep, base, repo)
            if (hit := cache.get(keys[i], "render")) is not None:
                builds[i] = reuse.Build.load(ep, hit)
    todo = [i for i, b in enumerate(builds) if b is None]
    rendered = len(eps) - len(todo)
    progress("render", rendered, len(eps))

    def on_rendered(n: int) -> None:
        nonlocal rendered
        rendered += n
        progress("render", rendered, len(eps))

    # Each build is checked as it arrives, while kustomize renders the next ones; what depends on CRDs that a
    # later build may bring waits for the end.
    early: dict[int, reuse.Checked] = {}
    for j, result in render_stream(repo, [eps[i] for i in todo], on_rendered=on_rendered, origins=False):
        i = todo[j]
        builds[i] = reuse.Build.of(result)
        if cache is not None and not result.error:
            cache.put(keys[i], "render", builds[i].dump())
        early[i] = _object_checks(builds[i], store, early=True)
    done: list[reuse.Build] = builds  # type: ignore[assignment] - every slot is filled
    # CRDs rendered anywhere in the repo describe custom resources everywhere in it.
    crds = [crd for b in done for crd in b.crds]
    store.add_crds(crds)
    check_base = None
    if cache is not None:
        check_base = reuse._sha(reuse.schema_fingerprint(store.kubernetes_version, [*schema_locations, *([str(BUNDLED_SCHEMAS)] if store.bundled else []), *([store.catalog] if store.catalog else [])]),
                                reuse.crd_fingerprint(crds))
    report = Report(
        entrypoints=[ep.rel for ep in eps],
        ignore_missing_schemas=ignore_missing_schemas,
        skipped_checks=skip,
        kubernetes_version=store.kubernetes_version,
        schema_locations=list(schema_locations),
        bundled_schemas=store.bundled,
        schema_catalog=store.catalog,
    )
    refs = references.check_references([b.result for b in done], repo, [b.facts for b in done])
    files = _kustomization_files(repo, cache)
    refs_by_object: dict[tuple[int, int], list] = {}
    for i, index, violation in refs.violations:
        refs_by_object.setdefault((i, index), []).append(violation)
    total = sum(b.count for b in done)
    checked = 0
    outcomes = []
    for i, (key, build) in enumerate(zip(keys, done)):
        check_key = reuse._sha(key, check_base) if key and check_base else None
        outcomes.append(_checks(build, store, cache, check_key, early.get(i)))
        checked += build.count
        progress("check", checked, total)
    reported = [i for i, outcome in enumerate(outcomes) if _reported(i, done[i], outcome, refs_by_object)]
    _find_sources(repo, [done[i] for i in reported], cache, [keys[i] for i in reported])

    for i, (build, outcome) in enumerate(zip(done, outcomes)):
        ep = build.result.entrypoint
        if build.result.error and not (ep.path in refs.handled_paths and not ep.path.is_dir()):
            report.render_errors.append(RenderError(ep.rel, build.result.error, _entrypoint_file(ep, repo)))
        report.objects += build.count
        if i not in reported:
            continue
        violations: dict[int, list] = {}
        for index, check_id, detail in outcome.policy:
            violations.setdefault(index, []).append(Violation(known[check_id], detail))
        for index, obj in enumerate(build.objects()):
            own = violations.get(index, [])
            deprecated = any(v.check.id == policy.DEPRECATED_API_CHECK for v in own)
            status, source, errors = outcome.schema[index]
            _schema(report, SchemaResult(status, source, [SchemaError(*e) for e in errors]), obj, deprecated)
            for v in own:
                report.findings.append(_policy_finding(obj, v, files))
            report.findings += [_finding(obj, v.check, v.message) for v in refs_by_object.get((i, index), [])]

    for fv in files.violations:
        directory = Path(fv.file).parent.as_posix()
        report.findings.append(Finding(
            entrypoint=directory, kind="Kustomization", name=directory, namespace=None, check=fv.violation.check.id,
            message=fv.violation.message, severity=fv.violation.check.severity, fix=fv.violation.check.fix,
            source=fv.file,
        ))
    if skip:
        report.findings = [f for f in report.findings if f.check not in skip]
        if RENDER_CHECK in skip:
            report.render_errors = []
        if MISSING_SCHEMA_CHECK in skip:
            report.missing_schemas = []
    return report


def _kustomization_files(repo: Path, cache: reuse.ValidateCache | None) -> kustomizations.KustomizationFiles:
    """The file checks; with a cache, reused while no kustomization file changed."""
    if cache is None or cache.state is None:
        return kustomizations.scan(repo)
    listed = cache.state.kustomization_files()
    key = reuse._sha(reuse.code_fingerprint(), *(f"{rel}={digest}" for rel, digest in listed))
    paths = [repo / rel for rel, _ in listed]
    if (violations := cache.get(key, "files", counted=False)) is not None:
        return kustomizations.scan(repo, paths, violations)
    scanned = kustomizations.scan(repo, paths)
    cache.put(key, "files", scanned.violations)
    return scanned


def _reported(i: int, build: reuse.Build, outcome: reuse.Checked, refs_by_object: dict[tuple[int, int], list]) -> bool:
    """Whether any object of the entrypoint will be named in the report (and so needs its objects and their
    source files)."""
    return bool(outcome.policy) or any(
        status == "missing" or errors or (i, index) in refs_by_object
        for index, (status, _, errors) in enumerate(outcome.schema)
    )


def _find_sources(repo: Path, reported: list[reuse.Build], cache: reuse.ValidateCache | None,
                  keys: list[str | None]) -> None:
    """Fill in the source file of the objects of ``reported`` entrypoints (rendered without origins, which
    costs kustomize twice the time) by building them again with origins, and cache them with their sources."""
    todo = [(b, k) for b, k in zip(reported, keys) if any(o.source is None for o in b.objects())]
    if not todo:
        return
    for (build, key), sourced in zip(todo, render_repo(repo, [b.result.entrypoint for b, _ in todo], origins=True)):
        found = {_object_id(o.data): o.source for o in sourced.objects}
        for obj in build.objects():
            obj.source = found.get(_object_id(obj.data))
        if cache is not None and not build.result.error:
            cache.put(key, "render", build.dump())


def _object_id(data: dict) -> tuple:
    meta = data.get("metadata") or {}
    return (str(data.get("apiVersion")), str(data.get("kind")), str(meta.get("namespace")), str(meta.get("name")))


def _checks(build: reuse.Build, store: SchemaStore, cache: reuse.ValidateCache | None, key: str | None,
            early: reuse.Checked | None = None) -> reuse.Checked:
    """Schema results and policy violations of one entrypoint's objects: cached, or computed (completing
    ``early``) and cached. Results with a missing schema are not cached: the schema may be reachable next time."""
    if cache is not None and (hit := cache.get(key, "check")) is not None:
        return hit
    checked = early if early is not None else _object_checks(build, store)
    if any(result is None for result in checked.schema):
        datas = [o.data for o in build.objects()]
        schema = [result if result is not None else _schema_result(store, data) for result, data in zip(checked.schema, datas)]
        checked = reuse.Checked(schema, checked.policy)
    if cache is not None and not build.result.error and all(status != "missing" for status, _, _ in checked.schema):
        cache.put(key, "check", checked)
    return checked


def _object_checks(build: reuse.Build, store: SchemaStore, *, early: bool = False) -> reuse.Checked:
    """Schema results and policy violations of one entrypoint's objects; ``early``: None as the schema result of
    an object whose schema may come from a CRD not rendered yet (SchemaStore.validate)."""
    datas = [o.data for o in build.objects()]
    index_of = {id(data): n for n, data in enumerate(datas)}
    schema = [_schema_result(store, data, early=early) for data in datas]
    return reuse.Checked(schema, [(index_of[id(d)], v.check.id, v.detail) for d, v in policy.check_objects(datas)])


def _schema_result(store: SchemaStore, data: dict, *, early: bool = False) -> tuple | None:
    found = store.validate(_as_applied(data), early=early)
    return None if found is None else (found.status, found.source, [(e.path, e.message) for e in found.errors])


def _as_applied(data: dict) -> dict:
    """The object as its controller applies it: kustomize-controller decrypts a SOPS file and drops its `sops`
    metadata first."""
    if isinstance(data.get("sops"), dict):
        return {key: value for key, value in data.items() if key != "sops"}
    return data


def _schema(report: Report, checked: SchemaResult, obj: RenderedObject, deprecated: bool) -> None:
    """Strict schema validation. An object whose API version is removed (GF019 says so, with the replacement)
    is not also reported as unserved or schema-less; it is still validated when a schema for it is at hand."""
    who = _identity(obj)
    if checked.status == "missing":
        if not deprecated:
            api_version = str(obj.data.get("apiVersion", ""))
            report.missing_schemas.append(MissingSchema(api_version=api_version, reason=checked.source, **who))
        return
    errors = checked.errors
    if deprecated:
        errors = [e for e in errors if not (e.path == "apiVersion" and "is not served by" in e.message)]
    fix = f"{SCHEMA.fix} Schema: {checked.source}."
    report.findings += [
        Finding(**who, check=SCHEMA.id, message=f"{e.path}: {e.message}", severity=SCHEMA.severity, fix=fix)
        for e in errors
    ]


def _policy_finding(obj: RenderedObject, v, files: kustomizations.KustomizationFiles) -> Finding:
    if v.check.id != "GF020":
        return _finding(obj, v.check, v.message)
    # Point at the patch that added the container, when a kustomization file has it.
    meta = obj.data.get("metadata") or {}
    for container in policy.imageless_containers(obj.data):
        if f"{container!r}" in v.detail:
            patch = files.patch_for(str(obj.data.get("kind")), str(meta.get("name", "")), container, obj.entrypoint)
            if patch:
                message = (f"{v.check.message}: container {container!r}, added by the strategic-merge patch in {patch} "
                           "because the base has no container of that name")
                return _finding(obj, v.check, message, source=patch)
    return _finding(obj, v.check, v.message)


__all__ = [
    "CATALOG_ENV", "CRDS_CATALOG", "Finding", "MissingSchema", "RenderError", "Report", "SCHEMAS_ENV", "catalog",
    "default_schema_catalog", "default_schema_locations", "validate_repo",
]
