"""Validate a GitOps repo the way its controllers will see it: render every entrypoint, then check each
rendered object against its strict schema and the best-practice policy."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..render import RenderedObject, render_repo
from .policy import check_objects
from .schemas import SchemaStore

SCHEMA_CHECK = "GF100"


@dataclass(frozen=True)
class Finding:
    entrypoint: str  # repo-relative directory that was rendered
    kind: str
    name: str
    namespace: str | None
    check: str  # GF001… policy checks, GF100 schema
    message: str
    severity: str  # "error" | "warning"
    fix: str = ""
    source: str | None = None  # repo-relative file the object came from, when known


@dataclass(frozen=True)
class RenderError:
    entrypoint: str
    message: str


@dataclass(frozen=True)
class MissingSchema:
    entrypoint: str
    api_version: str
    kind: str
    name: str
    namespace: str | None
    reason: str
    source: str | None = None


@dataclass
class Report:
    entrypoints: list[str] = field(default_factory=list)
    objects: int = 0
    findings: list[Finding] = field(default_factory=list)
    render_errors: list[RenderError] = field(default_factory=list)
    missing_schemas: list[MissingSchema] = field(default_factory=list)
    ignore_missing_schemas: bool = False

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
    def ok(self) -> bool:
        """No errors, every entrypoint rendered, and every object had a schema (unless told to ignore that).
        Warnings are reported but do not fail."""
        c = self.counts
        return not (c["errors"] or c["render_errors"] or (c["missing_schemas"] and not self.ignore_missing_schemas))

    def to_dict(self) -> dict:
        return {**asdict(self), "counts": self.counts, "ok": self.ok}


def _identity(obj: RenderedObject) -> dict:
    meta = obj.data.get("metadata") or {}
    return {
        "entrypoint": obj.entrypoint,
        "kind": str(obj.data.get("kind", "")),
        "name": str(meta.get("name", "")),
        "namespace": meta.get("namespace"),
        "source": obj.source,
    }


def validate_repo(
    path: str | Path,
    *,
    schema_locations: list[str],
    kubernetes_version: str | None = None,
    ignore_missing_schemas: bool = False,
) -> Report:
    """Render and check a repo. Raises RenderToolMissing without kustomize/kubectl, ValueError on bad options."""
    store = SchemaStore(schema_locations, kubernetes_version)  # bad options fail before any rendering
    results = render_repo(Path(path))
    # CRDs rendered anywhere in the repo describe custom resources everywhere in it.
    store.add_crds(o.data for r in results for o in r.objects)
    report = Report(entrypoints=[r.entrypoint.rel for r in results], ignore_missing_schemas=ignore_missing_schemas)
    for result in results:
        if result.error:
            report.render_errors.append(RenderError(result.entrypoint.rel, result.error))
        report.objects += len(result.objects)
        for obj in result.objects:
            who = _identity(obj)
            checked = store.validate(obj.data)
            if checked.status == "missing":
                api_version = str(obj.data.get("apiVersion", ""))
                report.missing_schemas.append(MissingSchema(api_version=api_version, reason=checked.source, **who))
            fix = f"Fix the object to match its schema ({checked.source})."
            report.findings += [
                Finding(**who, check=SCHEMA_CHECK, message=f"{e.path}: {e.message}", severity="error", fix=fix)
                for e in checked.errors
            ]
        by_id = {id(o.data): o for o in result.objects}
        for data, v in check_objects([o.data for o in result.objects]):
            who = _identity(by_id[id(data)])
            c = v.check
            report.findings.append(Finding(**who, check=c.id, message=v.message, severity=c.severity, fix=c.fix))
    return report
