"""Adopt: put a GitOps repo that gitops-forge did not generate (or whose answers file was lost) on the update path.

The answers are inferred from the repo's structure, each with the evidence it came from; an answer that cannot
be read off the repo is a question, answered by --data or, with --defaults, by its default from copier.yml (the
answers model decides what the questions are, so questions added to the template later need no change here).
Rendering the golden path with those answers shows what it would add, what the repo already has (identical or
changed by its owners) and what the template does not know; --write adds the answers file and the missing
files, and writes each file the repo has its own version of as a conflict the way `update` shows one (Copier's
inline markers, the repo's text "before updating", the template's "after updating", unmerged in git's index):
the owner resolves it, nothing is overwritten silently.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import answers as answers_model
from . import questions as questions_model
from . import scaffold, template_source
from .render import normal_url
from .yaml_loader import SafeLoader as _LOADER

# Conventional environment names in promotion order; other names are ordered by a question.
_ENV_RANK = ["dev", "development", "test", "qa", "int", "integration", "stage", "staging", "uat", "preprod",
             "pre-prod", "prod", "production"]
_NOT_ENVS = {"base", "bases", "components", "common", "shared"}


@dataclass
class Question:
    name: str
    why: str
    default: Any = None


@dataclass
class Inference:
    answers: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    questions: list[Question] = field(default_factory=list)
    not_read: set[str] = field(default_factory=set)  # the other engine's answers: neither asked nor recorded

    def infer(self, name: str, value: Any, evidence: str) -> None:
        self.answers[name] = value
        self.evidence[name] = evidence

    def ask(self, name: str, why: str) -> None:
        if all(q.name != name for q in self.questions):
            self.questions.append(Question(name, why))


@dataclass
class Plan:
    add: list[str] = field(default_factory=list)  # the template renders them, the repo lacks them
    same: list[str] = field(default_factory=list)  # identical in the repo
    differ: list[str] = field(default_factory=list)  # the repo has its own version: a conflict with --write
    replaced: list[str] = field(default_factory=list)  # placeholders a tool replaces (flux bootstrap's): kept
    unknown: list[str] = field(default_factory=list)  # the repo's files the template does not render
    conflicts: list[str] = field(default_factory=list)  # written with conflict markers by --write


# --- reading the repo ---------------------------------------------------------------------------------


@dataclass
class _Doc:
    file: str  # repo-relative
    data: dict


def _docs(repo: Path) -> list[_Doc]:
    out = []
    for root, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.endswith((".yaml", ".yml")):
                continue
            path = Path(root) / name
            try:
                loaded = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
            rel = path.relative_to(repo).as_posix()
            out += [_Doc(rel, d) for d in loaded if isinstance(d, dict) and d.get("kind")]
    return out


def _kind(doc: _Doc, kind: str, group: str = "") -> bool:
    return doc.data.get("kind") == kind and str(doc.data.get("apiVersion", "")).startswith(group)


def _meta(doc: _Doc, key: str) -> str:
    return str((doc.data.get("metadata") or {}).get(key) or "")


def _spec(doc: _Doc) -> dict:
    return doc.data.get("spec") or {}


def _subdirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")) if path.is_dir() else []


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def _as_answer_url(url: str) -> str | None:
    """An https:// or ssh:// URL as the answers model wants it (scp-like git@host:org/repo becomes ssh://)."""
    url = url.strip()
    if m := re.match(r"^([\w.-]+)@([\w.-]+):(?!//)(.+)$", url):
        url = f"ssh://{m.group(1)}@{m.group(2)}/{m.group(3)}"
    try:
        return answers_model.validate_git_url(url)
    except answers_model.AnswersError:
        return None


# --- inference --------------------------------------------------------------------------------------


def infer(repo: Path) -> Inference:
    """The answers the repo's structure tells, with evidence; the rest as questions."""
    repo = repo.absolute()
    docs = _docs(repo)
    out = Inference()
    _engine(repo, docs, out)
    _repository(repo, docs, out)
    environments = _environments(repo, docs, out)
    _clusters(repo, docs, out, environments)
    _teams(repo, docs, out)
    _apps(repo, docs, out)
    _options(repo, docs, out)
    _engine_options(repo, docs, out)
    # Every other question of the template (those added later too) is asked, never guessed silently.
    for name, spec in questions_model.load().items():
        if name not in out.answers and name not in out.not_read:
            out.ask(name, "not visible in the repo's structure")
    return out


def _app_of_apps_charts(repo: Path) -> list[tuple[Path, Path]]:
    """Helm charts whose templates write Argo CD Applications (argocd-example-apps' `apps/` chart): (chart
    directory, template). Their templates are not YAML until Helm renders them, so they are read as text."""
    out = []
    for chart in sorted(repo.glob("**/Chart.yaml")):
        if ".git" in chart.relative_to(repo).parts:
            continue
        for template in sorted((chart.parent / "templates").glob("*.y*ml")):
            text = template.read_text(encoding="utf-8", errors="replace")
            if re.search(r"^apiVersion:\s*argoproj\.io/", text, re.M) and re.search(r"^kind:\s*Application(Set)?\s*$", text, re.M):
                out.append((chart.parent, template))
                break
    return out


def _values(chart: Path, key: str) -> list[str]:
    """Every scalar under `key`, at any depth, in a chart's values.yaml."""
    try:
        data = yaml.load((chart / "values.yaml").read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == key and isinstance(v, (str, int, float)):
                    found.append(str(v))
                walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return found


def _engine(repo: Path, docs: list[_Doc], out: Inference) -> None:
    flux = [d for d in docs if ".toolkit.fluxcd.io/" in str(d.data.get("apiVersion", "")) or "fluxcd.controlplane.io/" in str(d.data.get("apiVersion", ""))]
    argo = [d for d in docs if str(d.data.get("apiVersion", "")).startswith("argoproj.io/")]
    charts = _app_of_apps_charts(repo)
    if flux and not argo and not charts:
        out.infer("engine", "flux", f"Flux objects, e.g. {flux[0].file}")
    elif argo and not flux:
        out.infer("engine", "argocd", f"Argo CD objects, e.g. {argo[0].file}")
    elif charts and not flux:
        chart, template = charts[0]
        out.infer("engine", "argocd", f"Argo CD Applications written by the Helm chart {chart.relative_to(repo).as_posix()}/ "
                                      f"({template.relative_to(repo).as_posix()})")
    else:
        out.ask("engine", "the repo has objects of both Flux and Argo CD" if flux else "the repo has neither Flux nor Argo CD objects")


def _repository(repo: Path, docs: list[_Doc], out: Inference) -> None:
    candidates: list[tuple[str, str]] = []
    if remote := _git(repo, "remote", "get-url", "origin"):
        candidates.append((remote, "git remote origin"))
    for d in docs:
        if _kind(d, "GitRepository", "source.toolkit.fluxcd.io/") and _meta(d, "name") == "flux-system":
            candidates.append((str(_spec(d).get("url", "")), f"GitRepository flux-system in {d.file}"))
    for d in docs:
        if _kind(d, "Application", "argoproj.io/"):
            for source in [_spec(d).get("source") or {}, *(_spec(d).get("sources") or [])]:
                if isinstance(source, dict) and source.get("path") and source.get("repoURL"):
                    candidates.append((str(source["repoURL"]), f"Application {_meta(d, 'name')} in {d.file}"))
    for d in docs:
        # A generated repo's teams read this repository through GitRepositories that check out its own dirs.
        sparse = _spec(d).get("sparseCheckout") or []
        if _kind(d, "GitRepository", "source.toolkit.fluxcd.io/") and sparse and all((repo / str(p)).is_dir() for p in sparse):
            candidates.append((str(_spec(d).get("url", "")), f"GitRepository {_meta(d, 'name')} checking out this repo's {sparse[0]} in {d.file}"))
    for chart, _ in _app_of_apps_charts(repo):
        values = (chart / "values.yaml").relative_to(repo).as_posix()
        candidates += [(url, f"repoURL in {values}, the values of the app-of-apps chart") for url in _values(chart, "repoURL")]
    url = next(((u, why) for raw, why in candidates if (u := _as_answer_url(raw))), None)
    if url:
        out.infer("git_url", url[0], url[1])
        name = normal_url(url[0]).rsplit("/", 1)[-1]
        try:
            out.infer("project_name", answers_model.check_name("project_name", name), f"repository name in {url[0]}")
        except answers_model.AnswersError:
            out.ask("project_name", f"the repository name {name!r} is not a DNS-1123 label")
    else:
        out.ask("git_url", "no git remote, flux-system GitRepository or Argo CD Application names this repository's URL")
        out.ask("project_name", "it is the repository's name, and its URL is unknown")
    own = {normal_url(u) for u in [out.answers.get("git_url", "")] if u}
    # Generated repos: each team's copy of this repository, checking out the team's dirs, is named after the project.
    for d in docs:
        sparse = _spec(d).get("sparseCheckout") or []
        if _kind(d, "GitRepository", "source.toolkit.fluxcd.io/") and own and normal_url(str(_spec(d).get("url", ""))) in own \
                and sparse and all((repo / str(p)).is_dir() for p in sparse) and _meta(d, "namespace") != "flux-system":
            name = _meta(d, "name")
            out.infer("project_name", name, f"GitRepository {name} checking out this repository's {sparse[0]} in {d.file}")
            break
    branch = None
    for d in docs:
        if _kind(d, "GitRepository", "source.toolkit.fluxcd.io/") and _meta(d, "name") == "flux-system":
            branch = ((_spec(d).get("ref") or {}).get("branch"), f"GitRepository flux-system in {d.file}")
        elif _kind(d, "Application", "argoproj.io/") and branch is None:
            revision = str((_spec(d).get("source") or {}).get("targetRevision") or "")
            if revision and revision != "HEAD" and not re.match(r"^v?\d", revision):
                branch = (revision, f"targetRevision of Application {_meta(d, 'name')} in {d.file}")
    for chart, _ in _app_of_apps_charts(repo) if not (branch and branch[0]) else []:
        revisions = [r for r in _values(chart, "targetRevision") if r != "HEAD" and not re.match(r"^v?\d", r)]
        if revisions:
            branch = (revisions[0], f"targetRevision in {(chart / 'values.yaml').relative_to(repo).as_posix()}, the values of the app-of-apps chart")
            break
    if not (branch and branch[0]) and (current := _git(repo, "symbolic-ref", "--short", "HEAD")):
        branch = (current, "the checked-out branch")
    if branch and branch[0]:
        out.infer("default_branch", branch[0], branch[1])
    else:
        out.ask("default_branch", "no GitRepository, Application or checked-out branch names it")


def _declared_paths(docs: list[_Doc], under: str) -> list[tuple[str, str]]:
    """(path, file) of every Flux Kustomization / Argo CD Application declared in files below `under`."""
    out = []
    for d in docs:
        if not d.file.startswith(under):
            continue
        if _kind(d, "Kustomization", "kustomize.toolkit.fluxcd.io/"):
            out.append((str(_spec(d).get("path") or ""), d.file))
        elif d.data.get("kind") in ("Application", "ApplicationSet") and str(d.data.get("apiVersion", "")).startswith("argoproj.io/"):
            spec = _spec(d)
            app = ((spec.get("template") or {}).get("spec") or {}) if d.data["kind"] == "ApplicationSet" else spec
            for source in [app.get("source") or {}, *(app.get("sources") or [])]:
                if isinstance(source, dict) and source.get("path"):
                    out.append((str(source["path"]), d.file))
    return out


def _environments(repo: Path, docs: list[_Doc], out: Inference) -> list[str]:
    found: dict[str, str] = {}
    for top in ("apps", "tenants", "infrastructure"):
        for name in _subdirs(repo / top):
            if name not in _NOT_ENVS and (repo / top / name / "kustomization.yaml").exists() and top != "infrastructure":
                found.setdefault(name, f"{top}/{name}/")
    for overlays in repo.glob("**/overlays"):
        if ".git" not in overlays.parts:
            for name in _subdirs(overlays):
                found.setdefault(name, f"{overlays.relative_to(repo).as_posix()}/{name}/")
    unnamed: list[str] = []
    by_cluster = not found
    if not found:
        # Clusters named like environments (clusters/staging, clusters/production).
        for name in _subdirs(repo / "clusters"):
            if name in _ENV_RANK:
                found.setdefault(name, f"clusters/{name}/")
            else:
                unnamed.append(name)
        if not found:
            unnamed = []
    if not found:
        out.ask("environments", "no environment overlays (apps/<env>/, */overlays/<env>/) were found")
        return []
    known = [e for e in _ENV_RANK if e in found]
    others = sorted(e for e in found if e not in known)
    environments = others + known  # unknown names first: promotion ends in production
    evidence = ", ".join(found[e] for e in environments)
    out.infer("environments", environments, f"{'cluster directories' if by_cluster else 'overlays'} {evidence}")
    if others:
        out.ask("environments", f"the promotion order of {', '.join(others)} is not conventional; confirm the order")
    if unnamed:
        # d2-fleet's clusters/prod-eu, clusters/prod-us: environments the names do not tell.
        out.ask("environments", f"read off cluster names only, and clusters/{', clusters/'.join(unnamed)} name no environment")
    return environments


def _clusters(repo: Path, docs: list[_Doc], out: Inference, environments: list[str]) -> None:
    names = _subdirs(repo / "clusters")
    if not names:
        out.ask("clusters", "there is no clusters/<name>/ directory")
        return
    clusters, unknown, evidence = [], [], []
    for name in names:
        env = None
        for path, file in _declared_paths(docs, f"clusters/{name}/"):
            parts = [p for p in path.strip("./").split("/") if p]
            env = next((p for p in reversed(parts) if p in environments), None)
            if env:
                evidence.append(f"{name}→{env} ({file}: path {path})")
                break
        if env is None and name in environments:
            env, _ = name, evidence.append(f"{name}→{name} (same name)")
        if env is None:
            unknown.append(name)
        clusters.append({"name": name, "environment": env})
    # Promotion order, as the answers list them.
    clusters.sort(key=lambda c: (environments.index(c["environment"]) if c["environment"] in environments else len(environments), c["name"]))
    if unknown:
        out.answers["clusters"] = clusters
        out.ask("clusters", f"no environment is named by what clusters/{', clusters/'.join(unknown)} apply")
    else:
        out.infer("clusters", clusters, "; ".join(evidence))


def _teams(repo: Path, docs: list[_Doc], out: Inference) -> None:
    names = [n for n in _subdirs(repo / "tenants" / "base")]
    if not names:
        out.ask("teams", "there is no tenants/base/<team>/ directory; name the teams and their identity-provider groups")
        return
    teams, without_groups = [], []
    for name in names:
        groups: list[str] = []
        for d in docs:
            if d.file.startswith(f"tenants/base/{name}/") and d.data.get("kind") in ("RoleBinding", "ClusterRoleBinding"):
                for subject in d.data.get("subjects") or []:
                    if isinstance(subject, dict) and subject.get("kind") == "Group" and subject.get("name") not in groups:
                        groups.append(str(subject["name"]))
        if not groups:
            without_groups.append(name)
        teams.append({"name": name, "groups": groups})
    out.infer("teams", teams, f"tenants/base/{{{','.join(names)}}}/ and the Groups of their RoleBindings")
    if without_groups:
        out.ask("teams", f"no RoleBinding names an identity-provider group of {', '.join(without_groups)}")


def _apps(repo: Path, docs: list[_Doc], out: Inference) -> None:
    bases = [(name, repo / "apps" / "base" / name) for name in _subdirs(repo / "apps" / "base")]
    # <app>/base next to <app>/overlays (the kustomize and Argo CD example layout), wherever it is.
    bases += [(p.parent.name, p) for p in sorted(repo.glob("**/base")) if (p.parent / "overlays").is_dir() and ".git" not in p.parts]
    if not bases:
        # Apps in a layout of their own (plain directories, Helm charts) are asked for, not taken for none.
        platform = ("infrastructure/", "clusters/", "tenants/")
        found = sorted({str(Path(d.file).parent) + "/" for d in docs if not d.file.startswith(platform)
                        and d.data.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "HelmRelease", "Rollout")})
        app_of_apps = {chart for chart, _ in _app_of_apps_charts(repo)}
        found += sorted(f"{c.parent.relative_to(repo).as_posix()}/ (a Helm chart)" for c in repo.glob("**/Chart.yaml")
                        if c.parent not in app_of_apps and ".git" not in c.relative_to(repo).parts
                        and not c.relative_to(repo).as_posix().startswith(platform))
        if found:
            shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
            out.ask("apps", f"workloads outside an apps/base/<app>/ or <app>/base layout: {shown}; name the apps to generate")
            return
        out.infer("apps", [], "no apps/base/<app>/ or <app>/base directory, and no workloads outside the platform's directories")
        return
    teams = [t["name"] for t in out.answers.get("teams") or []]
    apps, missing = [], []
    for name, path in bases:
        rel = path.relative_to(repo).as_posix()
        app: dict[str, Any] = {"name": name}
        deployment = next((d for d in docs if d.file.startswith(rel + "/") and _kind(d, "Deployment", "apps/")), None)
        if deployment:
            pod = ((_spec(deployment).get("template") or {}).get("spec") or {})
            container = next(iter(pod.get("containers") or []), {}) or {}
            if container.get("image"):
                app["image"] = str(container["image"])
            port = next(iter(container.get("ports") or []), {}) or {}
            if port.get("containerPort"):
                app["port"] = int(port["containerPort"])
            for key, probe, default in (("health_path", "livenessProbe", "/healthz"), ("ready_path", "readinessProbe", "/readyz")):
                probe_path = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
                if probe_path and probe_path != default:
                    app[key] = probe_path
        team = _app_team(name, docs, teams)
        if team:
            app["team"] = team
        elif len(teams) == 1:
            app["team"] = teams[0]
        absent = [k for k in ("image", "port", "team") if k not in app]
        if absent:
            why = "" if deployment else ", no Deployment in its base"
            missing.append(f"{name} ({', '.join(absent)}{why})")
        apps.append(app)
    out.answers["apps"] = apps
    out.evidence["apps"] = ", ".join(f"{p.relative_to(repo).as_posix()}/" for _, p in bases) + " with their Deployments"
    if missing:
        out.ask("apps", f"not read off the repo: {'; '.join(missing)}")


def _app_team(app: str, docs: list[_Doc], teams: list[str]) -> str | None:
    for d in docs:
        if not d.file.startswith("apps/"):
            continue
        if _kind(d, "Kustomization", "kustomize.toolkit.fluxcd.io/") and _meta(d, "name") == app and _meta(d, "namespace") in teams:
            return _meta(d, "namespace")
        if _kind(d, "Application", "argoproj.io/") and _meta(d, "name") == app and _spec(d).get("project") in teams:
            return str(_spec(d)["project"])
    return None


def _options(repo: Path, docs: list[_Doc], out: Inference) -> None:
    """Answers that switch features on or off, where the repo shows them."""
    if (repo / ".github" / "workflows").is_dir():
        out.infer("ci", "github", ".github/workflows/")
    elif (repo / ".gitlab-ci.yml").exists():
        out.infer("ci", "gitlab", ".gitlab-ci.yml")
    kinds = {d.data.get("kind") for d in docs}
    if "SealedSecret" in kinds or list(repo.glob("clusters/*/pub-sealed-secrets.pem")):
        out.infer("secrets", "sealed-secrets", "SealedSecrets or a sealing certificate")
    elif (repo / ".sops.yaml").exists() or any("sops" in d.data for d in docs):
        out.infer("secrets", "sops", ".sops.yaml or SOPS-encrypted files")
    if kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}:
        out.infer("monitoring", True, "ServiceMonitor/PodMonitor/PrometheusRule objects")
    pager = repo / "infrastructure" / "configs" / "monitoring" / "alertmanager-pager.yaml"
    if pager.exists():
        text = pager.read_text(encoding="utf-8", errors="replace")
        for choice in answers_model.PAGERS:
            if re.search(rf"{choice}_?configs", text, re.IGNORECASE):
                out.infer("pager", choice, f"{choice} receiver in {pager.relative_to(repo).as_posix()}")
    argo_notifications = repo / "infrastructure" / "controllers" / "argo-cd" / "notifications-values.yaml"
    if argo_notifications.exists():
        text = argo_notifications.read_text(encoding="utf-8", errors="replace")
        services = {"slack": "slack", "teams": "msteams", "github": "github-status", "gitlab": "github-status"}
        found = [choice for service, choice in services.items() if f"service.{service}:" in text]
        if found:
            out.infer("alerts_to", found[0], f"Argo CD notification service in {argo_notifications.relative_to(repo).as_posix()}")
    for d in docs:
        if _kind(d, "Provider", "notification.toolkit.fluxcd.io/"):
            kind = str(_spec(d).get("type", ""))
            choice = "github-status" if kind in ("github", "gitlab") else kind
            if choice in answers_model.ALERT_CHANNELS:
                out.infer("alerts_to", choice, f"Provider {_meta(d, 'name')} (type {kind}) in {d.file}")
                if choice != "github-status":
                    break
        if _kind(d, "GitRepository", "source.toolkit.fluxcd.io/") and (_spec(d).get("verify") or {}).get("mode"):
            provider = str((_spec(d).get("verify") or {}).get("provider", "cosign"))
            if provider in ("gpg", "ssh"):
                out.infer("verify", provider, f"spec.verify of GitRepository {_meta(d, 'name')} in {d.file}")


def _engine_options(repo: Path, docs: list[_Doc], out: Inference) -> None:
    """Answers that only one engine reads: inferred where the repo shows them, and the other engine's answers are
    not asked at all (the template neither asks nor records them)."""
    engine = out.answers.get("engine")
    if engine == "flux":
        if operator := sorted(repo.glob("clusters/*/flux-system/flux-instance.yaml")):
            out.infer("flux_install", "operator", f"a FluxInstance in {operator[0].relative_to(repo).as_posix()}")
        elif bootstrap := sorted(repo.glob("clusters/*/flux-system/gotk-components.yaml")):
            out.infer("flux_install", "bootstrap", f"flux bootstrap's {bootstrap[0].relative_to(repo).as_posix()}")
        policy = repo / "infrastructure/configs/tenancy/validatingadmissionpolicy-tenant-sources.yaml"
        git_url = out.answers.get("git_url")
        if policy.exists() and git_url:
            allowed = re.findall(r"'([^']+)'", policy.read_text(encoding="utf-8", errors="replace").split("validations:")[0])
            out.infer("tenant_source_allowlist", [url for url in allowed if url != git_url],
                      f"the allowed URLs of {policy.relative_to(repo).as_posix()}")
        elif not policy.exists():
            out.infer("tenant_source_allowlist", [], "no tenant source policy: this repository only")
    if engine == "argocd":
        for d in docs:
            match = re.search(r"domain: argocd\.[a-z0-9-]+\.([a-z0-9.-]*[a-z0-9])", yaml.safe_dump(d.data)) if _kind(d, "Application", "argoproj.io/") else None
            if match and _meta(d, "name") == "infra-controllers":
                out.infer("argocd_domain", match.group(1), f"global.domain of infra-controllers in {d.file}")
                break
        values = repo / "infrastructure/controllers/argo-cd/values.yaml"
        if values.exists():
            ha = "redis-ha:" in values.read_text(encoding="utf-8", errors="replace")
            out.infer("argocd_ha", ha, f"{'redis-ha' if ha else 'no redis-ha'} in {values.relative_to(repo).as_posix()}")
    not_read = answers_model.ARGOCD_ONLY if engine == "flux" else {"flux_install", "tenant_source_allowlist"} if engine == "argocd" else set()
    out.not_read = set(not_read)


def complete(inference: Inference, given: dict[str, Any], *, use_defaults: bool) -> dict[str, Any]:
    """Inferred answers, overridden by `given`; unanswered questions fail unless `use_defaults`."""
    specs = questions_model.load()
    answers = {**inference.answers, **given}
    open_questions = [q.name for q in inference.questions if q.name not in given]
    if open_questions and not use_defaults:
        first = open_questions[0]
        raise answers_model.AnswersError(
            f"{first}: not inferable ({next(q.why for q in inference.questions if q.name == first)}); "
            f"pass --data {first}=… or accept the defaults with --defaults"
        )
    for name in open_questions:
        if name in specs and not _complete_value(answers.get(name)):
            answers.pop(name, None)
    if use_defaults:
        _fill_items(answers, specs)
    answers = {k: v for k, v in answers.items() if k in specs}
    completed = answers_model.validate(questions_model.complete(answers, specs, check=answers_model.check_field))
    return {k: v for k, v in completed.items() if k not in inference.not_read}


def _complete_value(value: Any) -> bool:
    if isinstance(value, list):
        return all(_complete_value(v) for v in value)
    if isinstance(value, dict):
        return all(v not in (None, [], "") for v in value.values())
    return value is not None


def _fill_items(answers: dict[str, Any], specs: dict[str, dict[str, Any]]) -> None:
    """With --defaults, an item with a gap takes the default item's value (the template's example app)."""
    teams = answers.get("teams") or []
    for team in teams:
        if not team.get("groups"):
            team["groups"] = [team["name"]]
    defaults = questions_model.complete({k: v for k, v in answers.items() if k in ("project_name", "teams", "environments")}, specs)
    example = next(iter(defaults.get("apps") or []), {})
    for app in answers.get("apps") or []:
        for key in ("image", "port"):
            app.setdefault(key, example.get(key))
        if "team" not in app and teams:
            app["team"] = teams[0]["name"]
    for cluster in answers.get("clusters") or []:
        if not cluster.get("environment") and answers.get("environments"):
            cluster["environment"] = answers["environments"][-1]


# --- planning and writing ----------------------------------------------------------------------------


def plan(repo: Path, answers: dict[str, Any], rendered: Path, files: list[str]) -> Plan:
    from .drift import _placeholders, repo_files

    placeholders = _placeholders(template_source.questions_file())
    out = Plan()
    for name in files:
        if name == scaffold.ANSWERS_FILE:
            continue
        here = repo / name
        if not here.exists():
            out.add.append(name)
        elif here.read_bytes() == (rendered / name).read_bytes():
            out.same.append(name)
        elif any(fnmatch.fnmatch(name, pattern) for pattern in placeholders):
            out.replaced.append(name)  # Copier's update leaves these alone too (_skip_if_exists)
        else:
            out.differ.append(name)
    rendered_set = set(files)
    out.unknown = [name for name in repo_files(repo) if name not in rendered_set and name != scaffold.ANSWERS_FILE]
    return out


def adopt(repo: Path, answers: dict[str, Any], *, write: bool) -> tuple[Plan, str]:
    """Render the golden path with `answers` at the current template version and compare; with `write`, add the
    answers file and the files the repo lacks, and write a conflict into each file the repo has its own version
    of (Plan.conflicts). Returns the plan and the template version."""
    repo = repo.absolute()
    if write:
        _check_clean(repo)
    source = template_source.builtin()
    version = f"v{source.latest()}"
    with tempfile.TemporaryDirectory(prefix="gitops-forge-adopt-") as scratch:
        rendered = Path(scratch) / "repo"
        files = scaffold.render_at(answers, source, version, rendered)
        result = plan(repo, answers, rendered, files)
        if write:
            for name in [scaffold.ANSWERS_FILE, *result.add]:
                target = repo / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(rendered / name, target)
            result.conflicts = [name for name in result.differ if _write_conflict(repo, name, rendered / name)]
            _mark_unmerged(repo, result.conflicts, rendered)
    return result, version


# Copier's labels for the sides of an update conflict (copier/_main.py, `git merge-file -L …`): the repo's
# text is the side "before updating", the template's the side "after updating".
_LABELS = ("before updating", "last update", "after updating")


def _check_clean(repo: Path) -> None:
    """Like `update`, --write wants committed work in a git repo, so that `git reset --hard && git clean -fd`
    undoes it. A directory outside git is written too (each conflict keeps the repo's text as one side)."""
    if _git(repo, "rev-parse", "--is-inside-work-tree") != "true":
        return
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "."], cwd=repo,
                            capture_output=True, text=True).stdout.splitlines()
    if status:
        raise scaffold.ScaffoldError(
            f"the repository has uncommitted changes ({len(status)} path(s), e.g. {status[0][3:]}); "
            "commit or stash them, then run adopt --write again"
        )


def _write_conflict(repo: Path, name: str, template_file: Path) -> bool:
    """Merge the template's file into the repo's the way `git merge` treats a file both sides added: no common
    base, the lines both have stay as they are, each difference becomes a conflict block. True when the file
    now holds conflict markers; a file git cannot merge (binary) is left as the repo has it."""
    target = repo / name
    with tempfile.NamedTemporaryFile(prefix="gitops-forge-base-") as base:
        merged = subprocess.run(
            ["git", "merge-file", "-p", "-L", _LABELS[0], "-L", _LABELS[1], "-L", _LABELS[2], "--",
             str(target), base.name, str(template_file)],
            capture_output=True,
        )
    if merged.returncode < 0 or merged.returncode > 127:
        return False
    target.write_bytes(merged.stdout)
    return merged.returncode > 0


def _mark_unmerged(repo: Path, names: list[str], rendered: Path) -> None:
    """Record each conflict in git's index as `update` does (stage 2 the repo's committed file, stage 3 the
    template's, no common base), so `git status` shows it unmerged and a commit is refused until it is resolved."""
    if not names or _git(repo, "rev-parse", "--is-inside-work-tree") != "true":
        return
    top = Path(_git(repo, "rev-parse", "--show-toplevel"))
    prefix = _git(repo, "rev-parse", "--show-prefix")
    lines = []
    for name in names:
        path = f"{prefix}{name}"
        staged = _git(top, "ls-files", "--stage", "--", path)
        if not staged:
            continue  # not tracked (an ignored file): nothing to record
        mode, sha = staged.split()[:2]
        theirs = _git(top, "hash-object", "-w", "--", str(rendered / name))
        lines += [f"0 {'0' * 40}\t{path}", f"{mode} {sha} 2\t{path}", f"{mode} {theirs} 3\t{path}"]
    if lines:
        subprocess.run(["git", "update-index", "--index-info"], cwd=top, input="\n".join(lines) + "\n",
                       text=True, check=True, capture_output=True)
