"""One broken platform chart never freezes app deploys and rollbacks (review M1), proved on the Flux
dependency graph of every Flux variant.

The graph is built per cluster from the rendered objects: each Flux Kustomization, what it applies (its
path and components, rendered), its dependsOn edges and health checks, and the HelmReleases inside it.
A Kustomization is Ready only when its own health checks pass (`wait: true` checks every object it
applies, HelmReleases included) and every dependency passes its readiness check, which by default is the
dependency's own Ready, recursively. `readyExpr: has(dep.status.lastAppliedRevision)` replaces that check
with "applied once": kustomize-controller sets lastAppliedRevision only after an apply whose health checks
passed, and keeps it when a later revision fails. So an edge with it needs the CRDs and namespaces the
dependency created, which stay, and not the dependency's health now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from generator import scaffold, template_source
from generator.render import render_repo

from .test_generated_repos import VARIANTS
from .variants import generate

FLUX_VARIANTS = sorted(name for name, answers in VARIANTS.items() if answers.get("engine", "flux") == "flux")
APPLIED_ONCE = "has(dep.status.lastAppliedRevision)"
# The API groups whose CRDs each platform chart installs; any other chart provides none.
CRDS_OF_CHART = {
    "sealed-secrets": {"bitnami.com"},
    "kube-prometheus-stack": {"monitoring.coreos.com"},
    "flux-operator": {"fluxcd.controlplane.io"},
}
FLUX_GROUPS = ("kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io", "source.toolkit.fluxcd.io", "notification.toolkit.fluxcd.io")


@dataclass
class Node:
    key: tuple[str, str]  # (namespace, name) of the Flux Kustomization
    spec: dict
    applies: list[dict] = field(default_factory=list)
    parent: tuple[str, str] | None = None  # the Kustomization that applies this one

    @property
    def releases(self) -> dict[str, dict]:
        return {o["metadata"]["name"]: o for o in self.applies if o["kind"] == "HelmRelease"}

    def groups_used(self) -> set[str]:
        return {o["apiVersion"].split("/")[0] for o in self.applies if "/" in o["apiVersion"]}

    def deps(self) -> list[tuple[tuple[str, str], str | None]]:
        return [((d.get("namespace", self.key[0]), d["name"]), d.get("readyExpr")) for d in self.spec.get("dependsOn") or []]


def cluster_graphs(repo: Path) -> dict[str, dict[tuple[str, str], Node]]:
    """Per cluster: every Flux Kustomization reachable from clusters/<cluster>/, with what it applies."""
    results = render_repo(repo)
    assert [r.error for r in results if r.error] == []

    def rendered(spec: dict, declared_by: str | None = None) -> list[dict]:
        path = spec["path"].removeprefix("./").rstrip("/")
        candidates = [r for r in results if r.entrypoint.rel == path
                      and (r.entrypoint.spec or {}).get("components") == spec.get("components")]
        # Several clusters may apply the same path with other substitutions: take the render of this spec.
        candidates = [r for r in candidates if r.entrypoint.spec == spec] or candidates
        if declared_by:
            candidates = [r for r in candidates if declared_by in r.entrypoint.declared_by] or candidates
        assert candidates, f"no render for {path}"
        return [o.data for o in candidates[0].objects]

    graphs = {}
    for root in (r for r in results if r.entrypoint.rel.startswith("clusters/") and not r.entrypoint.declared_by):
        cluster = root.entrypoint.rel.split("/")[1]
        nodes: dict[tuple[str, str], Node] = {}
        # The root Kustomization flux-system (written by flux bootstrap or the Flux Operator) applies
        # clusters/<cluster>/, without health checks; nothing depends on it.
        root_node = Node(("flux-system", "flux-system"), {"path": root.entrypoint.rel}, [o.data for o in root.objects])
        nodes[root_node.key] = root_node
        queue = [root_node]
        while queue:
            parent = queue.pop()
            for obj in parent.applies:
                if obj["kind"] != "Kustomization" or not obj["apiVersion"].startswith("kustomize.toolkit.fluxcd.io/"):
                    continue
                key = (obj["metadata"].get("namespace") or parent.key[0], obj["metadata"]["name"])
                assert key not in nodes, f"{cluster}: Kustomization {key} is applied twice"
                node = Node(key, obj["spec"], rendered(obj["spec"], f"Kustomization {key[0]}/{key[1]}"), parent.key)
                nodes[key] = node
                queue.append(node)
        graphs[cluster] = nodes
    return graphs


def required_health(nodes: dict[tuple[str, str], Node], key: tuple[str, str], seen=None) -> set[str]:
    """The HelmReleases whose health *now* Kustomization `key` needs to be Ready and to apply new revisions."""
    seen = seen if seen is not None else set()
    if key in seen:
        return set()
    seen.add(key)
    node = nodes[key]
    releases = node.releases
    if node.spec.get("wait"):
        health = set(releases)
    else:
        health = {c["name"] for c in node.spec.get("healthChecks") or [] if c.get("kind") == "HelmRelease"}
    for name in list(health):  # a HelmRelease is not Ready while one it depends on is not
        health |= {d["name"] for d in releases[name]["spec"].get("dependsOn") or []} if name in releases else set()
    for dep, ready_expr in node.deps():
        if ready_expr != APPLIED_ONCE:
            health |= required_health(nodes, dep, seen)
    return health


def ancestors(nodes: dict[tuple[str, str], Node], key: tuple[str, str]) -> set[tuple[str, str]]:
    """Everything that must have applied before `key` applies: its dependencies and the Kustomization
    that creates it, transitively."""
    out: set[tuple[str, str]] = set()
    stack = [key]
    while stack:
        node = nodes[stack.pop()]
        for nxt in [dep for dep, _ in node.deps()] + ([node.parent] if node.parent else []):
            if nxt not in out:
                out.add(nxt)
                stack.append(nxt)
    return out


def app_and_tenant_kustomizations(nodes: dict[tuple[str, str], Node]) -> list[tuple[str, str]]:
    return [key for key in nodes if key[0] != "flux-system" or key[1] in ("tenants", "apps")]


def violations(repo: Path) -> list[str]:
    """Every way the graph of `repo` breaks the rules of this module; empty when it keeps them."""
    problems = []
    for cluster, nodes in cluster_graphs(repo).items():
        for key, node in nodes.items():
            for dep, _ in node.deps():
                if dep not in nodes:
                    problems.append(f"{cluster}: {key} depends on {dep}, which no Kustomization defines")
        # No cycles: a cycle never becomes Ready.
        state: dict[tuple[str, str], int] = {}

        def visit(key, path):
            state[key] = 1
            for dep, _ in nodes[key].deps():
                if dep in nodes and state.get(dep) == 1:
                    problems.append(f"{cluster}: dependency cycle {' -> '.join(map(str, path + [dep]))}")
                elif dep in nodes and dep not in state:
                    visit(dep, path + [dep])
            state[key] = 2

        for key in nodes:
            if key not in state:
                visit(key, [key])
        providers = {name: (key, CRDS_OF_CHART.get(name, set())) for key, node in nodes.items() for name in node.releases}
        for key in app_and_tenant_kustomizations(nodes):
            node = nodes[key]
            needed_charts = {name for name, (_, groups) in providers.items() if groups & node.groups_used()}
            health = required_health(nodes, key)
            if health - needed_charts:
                problems.append(f"{cluster}: {key} needs the health of HelmRelease(s) {sorted(health - needed_charts)}, which it does not use")
            if "kube-prometheus-stack" in health:
                problems.append(f"{cluster}: {key} waits for kube-prometheus-stack to be healthy")
            # It still waits for what it needs: the charts whose CRDs it uses, and its namespace.
            before = ancestors(nodes, key)
            for name in needed_charts:
                if providers[name][0] not in before:
                    problems.append(f"{cluster}: {key} uses CRDs of {name} without waiting for {providers[name][0]}")
            namespace = node.spec.get("targetNamespace")
            if namespace and not any(o["kind"] == "Namespace" and o["metadata"]["name"] == namespace
                                     for k in before for o in nodes[k].applies):
                problems.append(f"{cluster}: {key} applies into namespace {namespace} before it exists")
    return problems


@pytest.mark.parametrize("variant", FLUX_VARIANTS)
def test_apps_and_tenants_wait_only_for_what_they_need(variant, tmp_path_factory):
    generated = generate(tmp_path_factory, VARIANTS[variant])
    assert violations(generated.repo) == []
    graphs = cluster_graphs(generated.repo)
    assert set(graphs) == {c["name"] for c in generated.answers["clusters"]}
    for nodes in graphs.values():
        # The check is not vacuous: every cluster has tenants, the apps, and a health-checked platform.
        assert {("flux-system", "tenants"), ("flux-system", "apps"), ("flux-system", "infra-configs")} <= set(nodes)
        assert len([key for key in nodes if key[0] != "flux-system"]) == len(generated.answers["apps"])
        assert required_health(nodes, ("flux-system", "infra-configs")) >= (
            {"kube-prometheus-stack"} if generated.answers["monitoring"] else set())


def test_the_check_rejects_the_0_3_0_layout(tmp_path):
    """0.3.0: every app and tenant Kustomization waited, through infra-configs, for every chart's health."""
    repo = tmp_path / "old"
    scaffold.new(repo, {"project_name": "old"}, template_source.builtin(), version="v0.3.0")
    found = violations(repo)
    assert any("('flux-system', 'tenants') needs the health of HelmRelease(s) ['kube-prometheus-stack', 'sealed-secrets']" in p for p in found), found
    assert any("('dev-team', 'podinfo') waits for kube-prometheus-stack to be healthy" in p for p in found), found
