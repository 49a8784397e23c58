"""Audit: a scorecard of any Flux or Argo CD repository against the practices gitops-forge generates.

Every entrypoint is rendered the way `validate` renders it, and validate's policy checks run over the objects;
the audit adds checks of the repository as a whole. Each check has an id, an area, a weight, evidence (file and
object) and a one-line fix. A check passes or fails; an area's score is the weight of its passed checks over the
weight of its checks, in percent; the overall score is the mean of the area scores. Nothing else counts.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .render import RenderedObject, RenderResult, render_repo
from .validate import policy

AREAS = {
    "organisation": "Repository organisation",
    "security": "Security",
    "reliability": "Reliability",
    "monitoring": "Monitoring and alerting",
    "documentation": "Documentation and runbooks",
    "ci": "CI and update path",
}


@dataclass
class Result:
    id: str
    area: str
    title: str
    weight: int
    passed: bool
    evidence: list[str] = field(default_factory=list)  # "file: Kind namespace/name — what"
    fix: str = ""


@dataclass
class Scorecard:
    repo: str
    results: list[Result]

    def area_score(self, area: str) -> int:
        mine = [r for r in self.results if r.area == area]
        total = sum(r.weight for r in mine)
        return round(100 * sum(r.weight for r in mine if r.passed) / total) if total else 100

    @property
    def score(self) -> int:
        return round(sum(self.area_score(a) for a in AREAS) / len(AREAS))

    def to_dict(self) -> dict:
        return {
            "repo": self.repo,
            "score": self.score,
            "areas": {a: {"title": t, "score": self.area_score(a)} for a, t in AREAS.items()},
            "checks": [asdict(r) for r in self.results],
            "scoring": "area score = weight of passed checks / weight of all checks in the area; overall = mean of the areas",
        }


@dataclass
class _Repo:
    root: Path
    results: list[RenderResult]
    files: list[str]

    @property
    def objects(self) -> list[RenderedObject]:
        seen, out = set(), []
        for r in self.results:
            for o in r.objects:
                meta = o.data.get("metadata") or {}
                key = (o.data.get("apiVersion"), o.data.get("kind"), meta.get("namespace"), meta.get("name"), o.source)
                if key not in seen:
                    seen.add(key)
                    out.append(o)
                # A Flux Operator ResourceSet's templates are objects the operator applies per input.
                if o.data.get("kind") == "ResourceSet" and str(o.data.get("apiVersion", "")).startswith("fluxcd.controlplane.io/"):
                    out += [RenderedObject(t, o.entrypoint, o.source) for t in (o.data.get("spec") or {}).get("resources") or []
                            if isinstance(t, dict) and t.get("kind")]
        return out

    def of(self, *kinds: str) -> list[RenderedObject]:
        return [o for o in self.objects if o.data.get("kind") in kinds]

    def text(self, *globs: str) -> str:
        parts = []
        for pattern in globs:
            for path in sorted(self.root.glob(pattern)):
                if path.is_file():
                    parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(parts).lower()


def _who(o: RenderedObject, what: str = "") -> str:
    meta = o.data.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))
    return f"{o.source or o.entrypoint}: {o.data.get('kind')} {where}" + (f" — {what}" if what else "")


Check = Callable[[_Repo], tuple[bool, list[str]]]
CHECKS: list[tuple[str, str, str, int, str, Check]] = []


def check(id: str, area: str, title: str, weight: int, fix: str):
    def register(fn: Check) -> Check:
        CHECKS.append((id, area, title, weight, fix, fn))
        return fn

    return register


def _policy(repo: _Repo, *ids: str) -> tuple[bool, list[str]]:
    evidence = []
    for r in repo.results:
        for data, v in policy.check_objects([o.data for o in r.objects]):
            if v.check.id in ids:
                obj = next(o for o in r.objects if o.data is data)
                evidence.append(_who(obj, f"{v.check.id} {v.message}"))
    return not evidence, sorted(set(evidence))


def _workloads(repo: _Repo) -> list[RenderedObject]:
    return repo.of("Deployment", "StatefulSet")


def _flux_kustomizations(repo: _Repo) -> list[RenderedObject]:
    """Flux Kustomizations the repo writes; `flux bootstrap`'s own flux-system is configured by the bootstrap."""
    return [o for o in repo.of("Kustomization") if str(o.data.get("apiVersion", "")).startswith("kustomize.toolkit.fluxcd.io/")
            and ((o.data.get("metadata") or {}).get("namespace"), (o.data.get("metadata") or {}).get("name")) != ("flux-system", "flux-system")]


def _namespaces_of(objects: list[RenderedObject]) -> set[str]:
    return {str((o.data.get("metadata") or {}).get("namespace")) for o in objects if (o.data.get("metadata") or {}).get("namespace")}


# --- repository organisation ------------------------------------------------------------------------


@check("AU101", "organisation", "Every entrypoint builds", 3, "Fix the build errors `gitops-forge validate` lists.")
def _builds(repo: _Repo):
    errors = [f"{r.entrypoint.rel}: {r.error.splitlines()[0]}" for r in repo.results if r.error]
    return (bool(repo.results) and not errors), errors or ([] if repo.results else ["no entrypoint found"])


@check("AU102", "organisation", "Apps have a base and an overlay per environment", 2,
       "Put each app's manifests in a base and patch them per environment in overlays (apps/base/<app>, apps/<env>/<app>).")
def _overlays(repo: _Repo):
    import yaml

    users: dict[str, set[str]] = {}  # app base dir -> overlay dirs building it
    for f in repo.files:
        if not re.search(r"(^|/)kustomization\.ya?ml$", f) or f.startswith(("tenants/", "infrastructure/", "clusters/")):
            continue
        try:
            body = yaml.safe_load((repo.root / f).read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        here = Path(f).parent
        for ref in (body.get("resources") or []) if isinstance(body, dict) else []:
            target = Path(os.path.normpath(here / str(ref))).as_posix()
            if "base" in target.split("/") and "://" not in str(ref):
                users.setdefault(target, set()).add(here.as_posix())
    shared = sorted(f"{base}/ (overlays {', '.join(sorted(o))})" for base, o in users.items() if len(o) >= 2)
    if shared:
        return True, shared[:3]
    # Not applicable to a repo without app manifests of its own (its tenants' or another repository's sources
    # hold the apps: flux2-multi-tenancy, d2-fleet) or with a single environment: there is nothing to overlay.
    own_apps = [f for f in repo.files if re.search(r"(^|/)kustomization\.ya?ml$", f)
                and not f.startswith(("tenants/", "infrastructure/", "clusters/"))]
    if not own_apps:
        return True, ["not applicable: no app manifests outside clusters/, infrastructure/ and tenants/ (the apps come from other sources)"]
    environments = _environments(repo)
    if len(environments) < 2:
        return True, [f"not applicable: one environment or none ({', '.join(environments) or 'no clusters/<name>/ or overlays/<env>/'})"]
    return False, ["no app base is built by an overlay per environment"]


def _environments(repo: _Repo) -> list[str]:
    """The environments a repo deploys: its clusters/<name>/ directories, or the <env> of its overlays/<env>/."""
    clusters = {f.split("/")[1] for f in repo.files if f.startswith("clusters/") and f.count("/") >= 2}
    overlays = {m.group(1) for f in repo.files if (m := re.search(r"(?:^|/)overlays/([^/]+)/", f))}
    return sorted(clusters or overlays)


@check("AU103", "organisation", "Controllers, configs and apps are applied in order", 2,
       "Make configs depend on controllers and apps on configs (Flux dependsOn, Argo CD sync waves).")
def _ordering(repo: _Repo):
    flux = _flux_kustomizations(repo)
    argo = repo.of("Application")
    ordered = [o for o in flux if (o.data.get("spec") or {}).get("dependsOn")]
    ordered += [o for o in argo if "argocd.argoproj.io/sync-wave" in ((o.data.get("metadata") or {}).get("annotations") or {})]
    ordered += [o for o in repo.of("ResourceSet") if (o.data.get("spec") or {}).get("dependsOn")]
    return bool(ordered), [_who(o, "ordered") for o in ordered[:3]] or ["no dependsOn or sync-wave on any Kustomization/Application"]


# --- security -------------------------------------------------------------------------------------------


@check("AU201", "security", "Workloads meet the restricted Pod Security profile", 3,
       "Run as non-root with a seccomp profile, drop all capabilities, no privilege escalation (validate GF001-GF009).")
def _pod_security(repo: _Repo):
    return _policy(repo, *(f"GF00{i}" for i in range(1, 10)))


@check("AU202", "security", "Namespaces enforce Pod Security", 2,
       "Label each namespace pod-security.kubernetes.io/enforce: restricted (or baseline where it must).")
def _psa(repo: _Repo):
    namespaces = repo.of("Namespace")
    bad = [_who(o, "no pod-security enforce label") for o in namespaces
           if "pod-security.kubernetes.io/enforce" not in ((o.data.get("metadata") or {}).get("labels") or {})]
    return bool(namespaces) and not bad, bad or ([] if namespaces else ["the repo defines no Namespace"])


@check("AU203", "security", "No plaintext Secrets, no wildcard or escalating RBAC", 3,
       "Seal or SOPS-encrypt Secrets; name resources and verbs in RBAC rules (validate GF013-GF016).")
def _secrets_rbac(repo: _Repo):
    return _policy(repo, "GF013", "GF014", "GF015", "GF016")


@check("AU204", "security", "Every workload namespace has a NetworkPolicy", 2,
       "Add a default-deny NetworkPolicy and allow only the traffic each app needs.")
def _netpol(repo: _Repo):
    covered = _namespaces_of(repo.of("NetworkPolicy"))
    bad = [_who(o, "namespace without a NetworkPolicy") for o in _workloads(repo)
           if str((o.data.get("metadata") or {}).get("namespace")) not in covered]
    return not bad, bad


@check("AU205", "security", "Tenants are fenced", 2,
       "Apply tenants' Kustomizations as their own ServiceAccount (Flux) or in their own AppProject (Argo CD).")
def _tenancy(repo: _Repo):
    bad = []
    for o in repo.of("Kustomization"):
        meta, spec = o.data.get("metadata") or {}, o.data.get("spec") or {}
        if str(o.data.get("apiVersion", "")).startswith("kustomize.toolkit.fluxcd.io/") and meta.get("namespace") not in (None, "flux-system") \
                and not spec.get("serviceAccountName"):
            bad.append(_who(o, "applied with the controller's own rights"))
    ok, argo = _policy(repo, "GF018")
    return not bad and ok, bad + argo


# --- reliability -----------------------------------------------------------------------------------------


@check("AU301", "reliability", "Containers have probes, requests and limits", 2,
       "Set liveness/readiness probes and resource requests and limits (validate GF010, GF011).")
def _probes(repo: _Repo):
    return _policy(repo, "GF010", "GF011")


@check("AU302", "reliability", "Workloads have a PodDisruptionBudget", 2, "Add a PodDisruptionBudget for each Deployment.")
def _pdb(repo: _Repo):
    covered = _namespaces_of(repo.of("PodDisruptionBudget"))
    bad = [_who(o, "no PodDisruptionBudget in its namespace") for o in _workloads(repo)
           if str((o.data.get("metadata") or {}).get("namespace")) not in covered]
    return not bad, bad or ([] if _workloads(repo) else ["no Deployment or StatefulSet rendered (Helm charts' workloads are not checked)"])


@check("AU303", "reliability", "Removed objects are pruned", 1, "Set prune: true (Flux) or syncPolicy.automated.prune (Argo CD).")
def _prune(repo: _Repo):
    bad = [_who(o, "prune off") for o in _flux_kustomizations(repo) if not (o.data.get("spec") or {}).get("prune")]
    bad += [_who(o, "no automated prune") for o in repo.of("Application")
            if not (((o.data.get("spec") or {}).get("syncPolicy") or {}).get("automated") or {}).get("prune")]
    return not bad, bad


@check("AU304", "reliability", "Readiness is checked before dependants go on", 1,
       "Give each Flux Kustomization wait: true (or healthChecks) and each Argo CD Application a retry policy.")
def _isolation(repo: _Repo):
    bad = [_who(o, "no wait or health checks") for o in _flux_kustomizations(repo)
           if not ((o.data.get("spec") or {}).get("wait") or (o.data.get("spec") or {}).get("healthChecks"))]
    bad += [_who(o, "no retry") for o in repo.of("Application") if not ((o.data.get("spec") or {}).get("syncPolicy") or {}).get("retry")]
    return not bad, bad


# --- monitoring and alerting ---------------------------------------------------------------------------


@check("AU401", "monitoring", "Metrics are scraped", 2, "Add ServiceMonitors/PodMonitors for the apps and the GitOps controllers.")
def _metrics(repo: _Repo):
    found = repo.of("ServiceMonitor", "PodMonitor")
    return bool(found), [_who(o) for o in found[:3]] or ["no ServiceMonitor or PodMonitor"]


@check("AU402", "monitoring", "Alerting rules exist", 2, "Add PrometheusRules for failed reconciliations and app availability.")
def _rules(repo: _Repo):
    found = [_who(o) for o in repo.of("PrometheusRule")[:3]]
    # The kube-prometheus-stack chart installs its default rules unless defaultRules.create is false.
    for o in repo.of("HelmRelease", "Application"):
        spec = o.data.get("spec") or {}
        chart = str(((spec.get("chart") or {}).get("spec") or {}).get("chart") or (spec.get("chartRef") or {}).get("name")
                    or (spec.get("source") or {}).get("chart") or "")
        values = spec.get("values") or {}
        if chart == "kube-prometheus-stack" and (values.get("defaultRules") or {}).get("create", True) is not False:
            found.append(_who(o, "the chart's default rules"))
    return bool(found), found or ["no PrometheusRule, and no kube-prometheus-stack with its default rules"]


@check("AU403", "monitoring", "Alerts reach a receiver", 2,
       "Route alerts somewhere: an AlertmanagerConfig, a Flux notification Provider and Alert, or Argo CD notifications.")
def _receiver(repo: _Repo):
    found = repo.of("AlertmanagerConfig", "Provider", "Alert")
    found += [o for o in repo.objects if "notifications" in str((o.data.get("metadata") or {}).get("name", "")) and o.data.get("kind") in ("ConfigMap", "HelmRelease")]
    found += [o for o in repo.of("Application") if "notifications" in json.dumps(o.data.get("spec") or {})]
    return bool(found), [_who(o) for o in found[:3]] or ["no AlertmanagerConfig, notification Provider or Argo CD notifications"]


# --- documentation and runbooks -------------------------------------------------------------------------

_DOCS = ("README.md", "docs/**/*.md", "*.md", "clusters/**/*.md")


def _doc_check(words: tuple[str, ...]) -> Check:
    def run(repo: _Repo):
        pages = [f for f in repo.files if f.endswith(".md")]
        hits = [f for f in pages if any(w in (repo.root / f).read_text(encoding="utf-8", errors="replace").lower() for w in words)]
        return bool(hits), hits[:3] or [f"no Markdown page mentions {' or '.join(words)}"]

    return run


for _id, _title, _words, _fix in (
    ("AU501", "A rollback runbook", ("rollback", "roll back"), "Write docs/rollback.md: how to revert a release and how Git drives it."),
    ("AU502", "A disaster-recovery runbook", ("disaster recovery", "disaster-recovery"), "Write docs/disaster-recovery.md: rebuild a cluster from the repo."),
    ("AU503", "A key-rotation runbook", ("rotate", "rotation"), "Document how sealing/SOPS keys and deploy keys are rotated."),
    ("AU504", "An onboarding guide", ("onboarding", "add a team", "new team"), "Write docs/onboarding.md: how a team and its apps join."),
):
    check(_id, "documentation", _title, 1, _fix)(_doc_check(_words))


# --- CI and update path -----------------------------------------------------------------------------------


@check("AU601", "ci", "CI validates the manifests", 3, "Run `gitops-forge validate` (or kustomize build + kubeconform) on every pull request.")
def _ci(repo: _Repo):
    ci = [f for f in repo.files if f.startswith(".github/workflows/") or f in (".gitlab-ci.yml", ".circleci/config.yml")]
    validates = re.compile(r"gitops-forge validate|kubeconform|kustomize build|kubectl kustomize|flux build|flux-schema|flux schema validate")
    # A CI job may run the repo's own script that validates (scripts/validate.sh in the Flux examples).
    scripts = [f for f in repo.files if f.endswith(".sh") and validates.search((repo.root / f).read_text(errors="replace"))]
    validating = [f for f in ci if validates.search(text := (repo.root / f).read_text(errors="replace"))
                  or any(script in text for script in scripts)]
    return bool(validating), validating or (ci[:3] and [f"{f}: does not validate manifests" for f in ci[:3]]) or ["no CI configuration"]


@check("AU602", "ci", "Dependencies are updated by a bot", 2, "Add renovate.json (or Dependabot) covering Helm charts and images.")
def _renovate(repo: _Repo):
    found = [f for f in repo.files if f in ("renovate.json", "renovate.json5", ".github/renovate.json", ".github/dependabot.yml", ".renovaterc")]
    return bool(found), found or ["no Renovate or Dependabot configuration"]


@check("AU603", "ci", "The repo is on a template's update path", 1, "Run `gitops-forge adopt --write` to record the answers and follow template updates.")
def _answers(repo: _Repo):
    ok = ".copier-answers.yml" in repo.files
    return ok, [".copier-answers.yml"] if ok else ["no .copier-answers.yml"]


# --- running ------------------------------------------------------------------------------------------


def _files(root: Path) -> list[str]:
    out = []
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        out += [Path(os.path.relpath(Path(base) / f, root)).as_posix() for f in files]
    return sorted(out)


def audit(path: Path) -> Scorecard:
    root = Path(os.path.realpath(path))
    repo = _Repo(root, render_repo(root), _files(root))
    results = []
    for id, area, title, weight, fix, fn in CHECKS:
        passed, evidence = fn(repo)
        results.append(Result(id, area, title, weight, passed, evidence, "" if passed else fix))
    return Scorecard(str(path), results)


def render(card: Scorecard, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(card.to_dict(), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(_sarif(card), indent=2) + "\n"
    md = fmt == "markdown"
    lines = [f"# Audit of {card.repo}: {card.score}/100" if md else f"Audit of {card.repo}: {card.score}/100",
             "" if md else "", "Area score = weight of passed checks / weight of the area's checks; overall = mean of the areas.", ""]
    for area, title in AREAS.items():
        lines.append(f"## {title}: {card.area_score(area)}/100" if md else f"{title}: {card.area_score(area)}/100")
        for r in (r for r in card.results if r.area == area):
            mark = "✓" if r.passed else "✗"
            lines.append(f"- {mark} {r.id} (weight {r.weight}) {r.title}" if md else f"  {mark} {r.id} (weight {r.weight}) {r.title}")
            if r.passed and r.evidence[:1] and r.evidence[0].startswith("not applicable"):
                lines.append(f"  - {r.evidence[0]}" if md else f"      {r.evidence[0]}")
            if not r.passed:
                for e in r.evidence[:5]:
                    lines.append(f"  - {e}" if md else f"      {e}")
                lines.append(f"  - Fix: {r.fix}" if md else f"      fix: {r.fix}")
        lines.append("")
    return "\n".join(lines)


def _sarif(card: Scorecard) -> dict:
    rules = [{"id": id, "name": title, "shortDescription": {"text": title}, "help": {"text": fix},
              "properties": {"area": area, "weight": weight}} for id, area, title, weight, fix, _ in CHECKS]
    results = []
    for r in card.results:
        if r.passed:
            continue
        for e in r.evidence[:20] or [""]:
            file = e.split(": ", 1)[0] if ": " in e else ""
            result = {"ruleId": r.id, "level": "warning", "message": {"text": f"{r.title}: {e}. Fix: {r.fix}"}}
            if file and (Path(card.repo) / file).exists():
                result["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": file}}}]
            results.append(result)
    return {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "runs": [{"tool": {"driver": {"name": "gitops-forge audit", "rules": rules}}, "results": results}]}
