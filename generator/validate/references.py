"""Cross-reference checks: what an object names must exist.

Two kinds of reach:

* **Same build.** A Service, PodDisruptionBudget or NetworkPolicy selects pods, and a HorizontalPodAutoscaler
  scales a workload, in its own namespace; those objects come from the same entrypoint (one kustomize build),
  so they are looked up there.
* **Same cluster.** Flux and Argo CD objects refer to each other across entrypoints: the ``apps`` Kustomization
  of ``clusters/prod`` depends on ``tenants``, a HelmRelease in ``apps/prod`` uses a HelmRepository from
  ``infrastructure/``. An entrypoint's *scope* is everything applied together with it: starting from each
  entrypoint nothing else declares (a cluster directory), follow the paths of the Flux Kustomizations and
  Argo CD Applications it renders. A reference must resolve in every cluster scope its object is applied in.
  An object no cluster applies (a plain kustomization nothing declares, such as an environment that has no
  cluster yet) only needs its target somewhere in the repo.

Objects ``flux bootstrap`` creates (GitRepository/OCIRepository and Kustomization ``flux-system`` in
``flux-system``) are taken as present: most repos do not commit them until the first bootstrap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..render import (
    _BUILD_KEYS,
    Entrypoint,
    RenderedObject,
    RenderResult,
    _declared_paths,
    _default_branch,
    another_revision,
    argocd_sources,
    git_repositories,
    normal_url,
    repo_urls,
)
from .checks import Check, Violation
from .policy import POD_SPEC_PATHS, skipped_checks

SOURCE_REF = Check(
    "GF201", "error", "Flux reference points at an object that does not exist",
    "Create the source (GitRepository, OCIRepository, HelmRepository, ...) or fix the reference's kind, name "
    "and namespace; a reference without a namespace looks in the referring object's namespace.",
)
DEPENDS_ON = Check(
    "GF202", "error", "dependsOn names an object that does not exist",
    "Fix the name (and namespace: dependsOn defaults to the object's own namespace) or remove the entry; Flux "
    "waits forever for a dependency that never appears.",
)
PATH = Check(
    "GF203", "error", "Path does not exist in this repository",
    "Fix spec.path (Flux, relative to the repo root) or spec.source.path (Argo CD), or add the directory.",
)
SERVICE = Check(
    "GF204", "error", "Service selects no pods",
    "Make spec.selector match the pod template labels of a workload in the same namespace.",
)
PDB = Check(
    "GF205", "error", "PodDisruptionBudget selects no pods",
    "Make spec.selector match the pod template labels of a workload in the same namespace.",
)
HPA = Check(
    "GF206", "error", "HorizontalPodAutoscaler scales a workload that does not exist",
    "Fix spec.scaleTargetRef (kind and name of a Deployment or StatefulSet in the same namespace).",
)
NETWORK_POLICY = Check(
    "GF207", "error", "NetworkPolicy selects no pods",
    "Make spec.podSelector match the pod template labels of a workload in the same namespace (an empty "
    "podSelector selects every pod).",
)
PROJECT = Check(
    "GF208", "error", "Argo CD project does not exist",
    "Add the AppProject to the repo (next to the Applications that use it) or fix spec.project.",
)
CHECKS = [SOURCE_REF, DEPENDS_ON, PATH, SERVICE, PDB, HPA, NETWORK_POLICY, PROJECT]

Key = tuple[str, str | None, str]  # (kind, namespace, name)
BOOTSTRAP_OBJECTS: frozenset[Key] = frozenset({
    ("GitRepository", "flux-system", "flux-system"),
    ("OCIRepository", "flux-system", "flux-system"),
    ("Kustomization", "flux-system", "flux-system"),
})


@dataclass
class ReferenceResult:
    violations: list[tuple[int, int, Violation]]  # (result index, object index, violation)
    # Entrypoint paths that do not exist but are reported here (GF203) or belong to another repository, so
    # their render error adds nothing.
    handled_paths: set[Path]


@dataclass
class BuildFacts:
    """What the reference checks need of one build's objects: small, so validate's cache keeps it next to the
    render and an unchanged entrypoint's objects need not be loaded at all."""

    # (object index, check id, message, (namespace, podSelector) of a NetworkPolicy whose own build has no match
    # (a neighbour may have one), else None)
    same_build: list[tuple[int, str, str, tuple[str | None, dict] | None]]
    pods: list[tuple[str | None, dict]]  # (namespace, pod labels) of every pod template
    keys: set[Key]
    references: list[tuple[int, str, Key, str]]  # (object index, check id, target, description), skips applied
    # (object index, object, whether the object skips GF203) of objects declaring paths, and GitRepositories
    gitops: list[tuple[int, dict, bool]]


def build_facts(objects: list[RenderedObject]) -> BuildFacts:
    index_of = {id(obj): n for n, obj in enumerate(objects)}
    same_build = [
        (index_of[id(obj)], v.check.id, v.message,
         (_namespace(obj.data), (obj.data.get("spec") or {}).get("podSelector") or {}) if v.check is NETWORK_POLICY else None)
        for obj, v in _same_build(objects)
    ]
    references, gitops = [], []
    for n, obj in enumerate(objects):
        skipped = skipped_checks(obj.data)
        references += [(n, check.id, target, what) for check, target, what in _gitops_references(obj.data)
                       if check.id not in skipped]
        if _declared_paths(obj.data) or obj.data.get("kind") == "GitRepository":
            gitops.append((n, obj.data, PATH.id in skipped))
    return BuildFacts(same_build, _pod_templates(objects), _keys(objects), references, gitops)


_BY_ID = {check.id: check for check in CHECKS}


def check_references(
    results: list[RenderResult], repo: Path, facts: list[BuildFacts] | None = None
) -> ReferenceResult:
    """The reference checks over every entrypoint; ``facts`` (one per result, from build_facts) spare reading
    the results' objects."""
    repo = Path(os.path.realpath(repo))
    facts = [build_facts(r.objects) for r in results] if facts is None else facts
    eps = [r.entrypoint for r in results]
    out: list[tuple[int, int, Violation]] = []
    scopes = _scopes(eps, facts, repo)

    # Pods by namespace, per set of entrypoints applied together: built once per set, not once per policy
    # (a repo with hundreds of apps has a NetworkPolicy per app and environment).
    pods_in: dict[frozenset[int], dict[str | None, list[dict]]] = {}

    def guards_a_neighbour(i: int, namespace: str | None, selector: dict) -> bool:
        # A NetworkPolicy may guard pods another entrypoint of the same cluster deploys (the platform's
        # policies in tenants/ for the apps synced from apps/): it selects no pods only if no entrypoint
        # applied with it has a match. One that no cluster applies yet (an environment without a
        # cluster) is checked against the whole repo, like the references below.
        neighbours = frozenset(set().union(*(
            members for root, members in scopes if i in members and eps[root].mode != "kustomize"
        )) or range(len(eps)))
        if neighbours not in pods_in:
            by_namespace: dict[str | None, list[dict]] = {}
            for j in neighbours:
                for ns, labels in facts[j].pods:
                    by_namespace.setdefault(ns, []).append(labels)
            pods_in[neighbours] = by_namespace
        return any(_matches(selector, labels) for labels in pods_in[neighbours].get(namespace, ()))

    for i, fact in enumerate(facts):
        out += [
            (i, index, Violation(_BY_ID[check_id], message))
            for index, check_id, message, policy in fact.same_build
            if policy is None or not guards_a_neighbour(i, *policy)
        ]
    keys = [fact.keys for fact in facts]
    scope_keys = [(root, frozenset().union(BOOTSTRAP_OBJECTS, *(keys[i] for i in members))) for root, members in scopes]
    everywhere = frozenset().union(BOOTSTRAP_OBJECTS, *keys)
    gitops = [data for fact in facts for _, data, _ in fact.gitops]
    own_urls = _own_urls(gitops, repo)
    # ("", "") in git_refs is the branch Flux syncs this repository from.
    git_urls, git_refs = git_repositories(gitops)
    if branch := _default_branch(repo):
        git_refs[("", "")] = json.dumps({"branch": branch}, sort_keys=True)
    git_urls = _RefUrls(git_urls, git_refs)
    handled: set[Path] = set()
    for i, fact in enumerate(facts):
        # The clusters (Flux/Argo CD roots) that apply this entrypoint; a plain kustomization nothing applies
        # (an environment without a cluster yet) resolves against the whole repo.
        mine = [
            (eps[root].rel, ks)
            for (root, members), (_, ks) in zip(scopes, scope_keys)
            if i in members and eps[root].mode != "kustomize"
        ] or [("", everywhere)]
        for index, check_id, target, what in fact.references:
            missing = [root for root, ks in mine if target not in ks]
            if missing:
                where = "" if len(missing) == len(mine) else f" (in what {', '.join(missing)} applies)"
                out.append((i, index, Violation(_BY_ID[check_id], f"{what}{where}")))
        for index, data, path_skipped in fact.gitops:
            if not path_skipped:
                out += [(i, index, v) for v in _paths(data, repo, own_urls, git_urls, handled)]
    return ReferenceResult(out, handled)


# --- same build --------------------------------------------------------------------------------------


def _pod_templates(objects: list[RenderedObject]) -> list[tuple[str | None, dict]]:
    """(namespace, pod labels) of every pod the build's workloads create (any kind with a pod template)."""
    pods = []
    for obj in objects:
        data = obj.data
        kind = data.get("kind")
        path = POD_SPEC_PATHS.get(kind)
        template = None
        if path and kind != "Pod":
            template = data
            for key in path[:-1]:  # the template, not its spec
                template = template.get(key) if isinstance(template, dict) else None
        elif kind == "Pod":
            template = data
        elif isinstance((data.get("spec") or {}).get("template"), dict):  # Argo Rollouts and other CRDs
            template = data["spec"]["template"]
            if not isinstance(template.get("spec"), dict) or "containers" not in template["spec"]:
                template = None
        if isinstance(template, dict):
            labels = (template.get("metadata") or {}).get("labels") or {}
            pods.append((_namespace(data), {str(k): str(v) for k, v in labels.items()}))
    return pods


def _namespace(data: dict) -> str | None:
    return (data.get("metadata") or {}).get("namespace")


def _matches(selector: dict, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) or a plain map (Service) against pod labels."""
    if "matchLabels" in selector or "matchExpressions" in selector:
        match = selector.get("matchLabels") or {}
        expressions = selector.get("matchExpressions") or []
    else:
        match, expressions = selector, []
    if any(labels.get(str(k)) != str(v) for k, v in match.items()):
        return False
    for e in expressions:
        key, op, values = str(e.get("key")), e.get("operator"), [str(v) for v in e.get("values") or []]
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, True)
        if not ok:
            return False
    return True


def _describe(selector: dict) -> str:
    return json.dumps(selector, sort_keys=True, separators=(", ", ": "))


def _helm_namespaces(objects: list[RenderedObject]) -> set[str | None]:
    """Namespaces where a Helm chart (Flux HelmRelease, Argo CD chart source) creates pods this build cannot see."""
    found = set()
    for obj in objects:
        data = obj.data
        api, spec = str(data.get("apiVersion", "")), data.get("spec") or {}
        if data.get("kind") == "HelmRelease" and api.startswith("helm.toolkit.fluxcd.io/"):
            found.add(spec.get("targetNamespace") or _namespace(data))
        elif data.get("kind") == "Application" and api.startswith("argoproj.io/"):
            if any(s.get("chart") for s in argocd_sources(spec)):
                found.add((spec.get("destination") or {}).get("namespace"))
    return found


def _same_build(objects: list[RenderedObject]) -> Iterator[tuple[RenderedObject, Violation]]:
    pods = _pod_templates(objects)
    opaque = _helm_namespaces(objects)
    workloads = {(o.data.get("kind"), _namespace(o.data), (o.data.get("metadata") or {}).get("name")) for o in objects}

    def selects(namespace: str | None, selector: dict) -> bool:
        return namespace in opaque or any(ns == namespace and _matches(selector, labels) for ns, labels in pods)

    for obj in objects:
        data, kind = obj.data, obj.data.get("kind")
        api, spec, ns = str(data.get("apiVersion", "")), data.get("spec") or {}, _namespace(data)
        skipped = skipped_checks(data)
        if kind == "Service" and api == "v1" and SERVICE.id not in skipped:
            selector = spec.get("selector") or {}
            if selector and spec.get("type") != "ExternalName" and not selects(ns, selector):
                yield obj, Violation(SERVICE, f"selector {_describe(selector)} matches no pod template")
        elif kind == "PodDisruptionBudget" and api.startswith("policy/") and PDB.id not in skipped:
            selector = spec.get("selector")
            if selector is None:
                yield obj, Violation(PDB, "spec.selector is not set, so it selects nothing")
            elif not selects(ns, selector):
                yield obj, Violation(PDB, f"selector {_describe(selector)} matches no pod template")
        elif kind == "HorizontalPodAutoscaler" and api.startswith("autoscaling/") and HPA.id not in skipped:
            ref = spec.get("scaleTargetRef") or {}
            target = (ref.get("kind"), ns, ref.get("name"))
            if target not in workloads and ns not in opaque:
                yield obj, Violation(HPA, f"{ref.get('kind')} {ref.get('name')!r} is not in this build")
        elif kind == "NetworkPolicy" and api.startswith("networking.k8s.io/") and NETWORK_POLICY.id not in skipped:
            selector = spec.get("podSelector") or {}
            if (selector.get("matchLabels") or selector.get("matchExpressions")) and not selects(ns, selector):
                yield obj, Violation(NETWORK_POLICY, f"podSelector {_describe(selector)} matches no pod template")


# --- same cluster ------------------------------------------------------------------------------------


def _keys(objects: list[RenderedObject]) -> set[Key]:
    keys: set[Key] = set()
    for obj in objects:
        data = obj.data
        kind, ns, name = str(data.get("kind")), _namespace(data), (data.get("metadata") or {}).get("name")
        keys.add((kind, ns, name))
        if kind == "ArtifactGenerator":  # source-watcher: each artifact becomes an ExternalArtifact
            for artifact in (data.get("spec") or {}).get("artifacts") or []:
                if isinstance(artifact, dict) and artifact.get("name"):
                    keys.add(("ExternalArtifact", ns, artifact["name"]))
    return keys


def _ref(check: Check, field: str, ref: dict, default_kind: str, ns: str | None) -> tuple[Check, Key, str]:
    kind = ref.get("kind") or default_kind
    target_ns = ref.get("namespace") or ns
    return check, (kind, target_ns, ref.get("name")), f"{field} {kind} {target_ns}/{ref.get('name')} not found"


def _gitops_references(data: dict) -> Iterator[tuple[Check, Key, str]]:
    """(check, target key, description) for each reference a Flux or Argo CD object makes."""
    api, kind = str(data.get("apiVersion", "")), data.get("kind")
    group = api.rpartition("/")[0]
    spec, ns = data.get("spec") or {}, _namespace(data)
    if not isinstance(spec, dict):
        return
    dicts = lambda items: [i for i in items or [] if isinstance(i, dict) and i.get("name")]  # noqa: E731
    if group == "kustomize.toolkit.fluxcd.io" and kind == "Kustomization":
        if isinstance(spec.get("sourceRef"), dict):
            yield _ref(SOURCE_REF, "sourceRef", spec["sourceRef"], "GitRepository", ns)
        for dep in dicts(spec.get("dependsOn")):
            yield _ref(DEPENDS_ON, "dependsOn", dep, "Kustomization", ns)
    elif group == "helm.toolkit.fluxcd.io" and kind == "HelmRelease":
        chart_ref = ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef")
        if isinstance(chart_ref, dict):
            yield _ref(SOURCE_REF, "chart.spec.sourceRef", chart_ref, "HelmRepository", ns)
        if isinstance(spec.get("chartRef"), dict):
            yield _ref(SOURCE_REF, "chartRef", spec["chartRef"], "OCIRepository", ns)
        for dep in dicts(spec.get("dependsOn")):
            yield _ref(DEPENDS_ON, "dependsOn", dep, "HelmRelease", ns)
    elif group == "source.toolkit.fluxcd.io" and kind == "HelmChart" and isinstance(spec.get("sourceRef"), dict):
        yield _ref(SOURCE_REF, "sourceRef", spec["sourceRef"], "HelmRepository", ns)
    elif group == "notification.toolkit.fluxcd.io" and kind == "Alert" and isinstance(spec.get("providerRef"), dict):
        yield _ref(SOURCE_REF, "providerRef", spec["providerRef"], "Provider", ns)
    elif group == "image.toolkit.fluxcd.io" and kind == "ImagePolicy" and isinstance(spec.get("imageRepositoryRef"), dict):
        yield _ref(SOURCE_REF, "imageRepositoryRef", spec["imageRepositoryRef"], "ImageRepository", ns)
    elif group == "image.toolkit.fluxcd.io" and kind == "ImageUpdateAutomation" and isinstance(spec.get("sourceRef"), dict):
        yield _ref(SOURCE_REF, "sourceRef", spec["sourceRef"], "GitRepository", ns)
    elif group == "argoproj.io" and kind in ("Application", "ApplicationSet"):
        app = ((spec.get("template") or {}).get("spec") or {}) if kind == "ApplicationSet" else spec
        project = app.get("project")
        if isinstance(project, str) and project not in ("", "default") and "{{" not in project:
            # AppProjects live in Argo CD's own namespace, which is where its Applications live too.
            yield PROJECT, ("AppProject", ns, project), f"AppProject {ns or ''}/{project} not found"


def _declares(data: dict, repo: Path) -> list[tuple[str, Path, dict]]:
    return [(mode, Path(os.path.normpath(repo / path)), spec) for mode, path, spec in _declared_paths(data)]


def _build_key(spec: dict) -> str:
    return json.dumps({k: spec.get(k) for k in _BUILD_KEYS}, sort_keys=True)


def _scopes(eps: list[Entrypoint], facts: list[BuildFacts], repo: Path) -> list[tuple[int, set[int]]]:
    """(root index, indices applied with it) for each root; entrypoints no root reaches get a scope of their own."""
    by_path: dict[tuple[Path, str], list[int]] = {}
    for i, ep in enumerate(eps):
        by_path.setdefault((ep.path, ep.mode), []).append(i)
    edges: dict[int, set[int]] = {i: set() for i in range(len(eps))}
    for i, fact in enumerate(facts):
        for _, data, _ in fact.gitops:
            for mode, path, spec in _declares(data, repo):
                candidates = by_path.get((path, mode), [])
                exact = [j for j in candidates if _build_key(eps[j].spec) == _build_key(spec)]
                edges[i].update(exact or candidates)
    declared = {j for i, targets in edges.items() for j in targets if j != i}
    roots = [i for i in range(len(eps)) if i not in declared]

    def closure(start: int) -> set[int]:
        seen, todo = {start}, [start]
        while todo:
            for j in edges[todo.pop()]:
                if j not in seen:
                    seen.add(j)
                    todo.append(j)
        return seen

    scopes = [(root, closure(root)) for root in roots]
    reached = set().union(*(members for _, members in scopes)) if scopes else set()
    for i in range(len(eps)):  # cycles no root leads into
        if i not in reached:
            members = closure(i)
            scopes.append((i, members))
            reached |= members
    return scopes


# --- paths -------------------------------------------------------------------------------------------


def _own_urls(gitops: list[dict], repo: Path) -> set[str]:
    """The URLs this repository is known by (render.repo_urls), with the GitRepository that `flux bootstrap`
    created read from the rendered objects."""
    bootstrap = [str((data.get("spec") or {}).get("url", "")) for data in gitops
                 if data.get("kind") == "GitRepository" and (data.get("metadata") or {}).get("name") == "flux-system"]
    return repo_urls(repo, bootstrap)


class _RefUrls(dict):
    """GitRepository URLs by (namespace, name), carrying their refs along."""

    def __init__(self, urls: dict, refs: dict):
        super().__init__(urls)
        self.refs = refs


def _is_external(data: dict, own_urls: set[str], git_urls: dict[tuple, str]) -> bool:
    """Whether a Flux Kustomization's or Argo CD Application's paths are in another repository (or artifact)."""
    spec, ns = data.get("spec") or {}, _namespace(data)
    if data.get("kind") == "Kustomization":
        ref = spec.get("sourceRef") or {}
        kind, name, ref_ns = ref.get("kind", "GitRepository"), ref.get("name"), ref.get("namespace") or ns
        if kind in ("ExternalArtifact", "Bucket", "OCIRepository") and (kind, ref_ns, name) not in BOOTSTRAP_OBJECTS:
            return True  # a path inside an artifact, not inside this repo
        if kind != "GitRepository":
            return False
        url = git_urls.get((ref_ns, name))
        if url is None:
            return False
        if own_urls and normal_url(url) not in own_urls:
            return True
        # This repository at another branch or tag (flux2-multi-tenancy's tenants) is another tree.
        return another_revision(getattr(git_urls, "refs", {}), (ref_ns, name))
    # Argo CD: a source names its repoURL.
    urls = {normal_url(str(s.get("repoURL", ""))) for s in argocd_sources(spec)}
    return bool(own_urls) and bool(urls) and urls.isdisjoint(own_urls)


def _paths(
    data: dict, repo: Path, own_urls: set[str], git_urls: dict[tuple, str], handled: set[Path]
) -> Iterator[Violation]:
    declared = _declares(data, repo)
    if not declared:
        return
    if _is_external(data, own_urls, git_urls):
        handled.update(path for _, path, _ in declared if not path.is_dir())
        return
    for _, path, _ in declared:
        if not path.is_dir():
            handled.add(path)
            rel = Path(os.path.relpath(path, repo)).as_posix()
            field = "spec.path" if data.get("kind") == "Kustomization" else "source path"
            yield Violation(PATH, f"{field} {rel!r}")
