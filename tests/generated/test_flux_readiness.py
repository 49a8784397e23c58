"""Honest readiness on Flux (review M6, M14, m1): a Ready platform Kustomization means its charts run,
Grafana's Secret exists before the chart that needs it, a SealedSecret that cannot be unsealed makes its
Kustomization fail, and commit statuses name their cluster."""

from __future__ import annotations

import celpy
import pytest

from .test_flux_dependency_graph import FLUX_VARIANTS, cluster_graphs
from .test_generated_repos import VARIANTS
from .variants import generate

SEALED_SECRET_HEALTH = {
    "apiVersion": "bitnami.com/v1alpha1",
    "kind": "SealedSecret",
    "failed": "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')",
    "current": "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')",
}


def cel(expression: str, **variables) -> object:
    env = celpy.Environment()
    return env.program(env.compile(expression)).evaluate({k: celpy.json_to_cel(v) for k, v in variables.items()})


@pytest.fixture(scope="module", params=FLUX_VARIANTS)
def flux_repo(request, tmp_path_factory):
    generated = generate(tmp_path_factory, VARIANTS[request.param])
    return generated.answers, cluster_graphs(generated.repo)


def test_a_ready_platform_kustomization_means_its_charts_run(flux_repo):
    """"Ready only when every HelmRelease here has installed or upgraded its chart, Helm having waited for
    the chart's workloads" (clusters/<cluster>/infrastructure.yaml)."""
    answers, graphs = flux_repo
    for nodes in graphs.values():
        for node in nodes.values():
            if not node.releases or node.key == ("flux-system", "flux-system"):
                continue
            assert node.spec["wait"] is True, node.key
            for name, release in node.releases.items():
                spec = release["spec"]
                for action in ("install", "upgrade", "rollback"):
                    assert not (spec.get(action) or {}).get("disableWait"), (name, action)
        if answers["monitoring"]:
            release = nodes[("flux-system", "monitoring-controllers")].releases["kube-prometheus-stack"]["spec"]
            assert release["timeout"] == "10m"
            assert release["install"]["remediation"]["retries"] >= 1 and release["upgrade"]["remediation"]["retries"] >= 1
            assert "strategy" not in release["upgrade"]  # RetryOnFailure would turn the rollback off
            # The Kustomization waits longer than Helm, so Helm's verdict comes first.
            assert int(nodes[("flux-system", "monitoring-controllers")].spec["timeout"].removesuffix("m")) > 10


def test_grafanas_secret_is_applied_before_the_chart(flux_repo):
    answers, graphs = flux_repo
    if not answers["monitoring"]:
        return
    for cluster, nodes in graphs.items():
        (chart_key,) = [k for k, n in nodes.items() if "kube-prometheus-stack" in n.releases]
        release = nodes[chart_key].releases["kube-prometheus-stack"]["spec"]
        secret = (release["targetNamespace"], release["values"]["grafana"]["admin"]["existingSecret"])
        applying = [k for k, n in nodes.items() for o in n.applies
                    if o["kind"] in ("Secret", "SealedSecret") and (o["metadata"].get("namespace"), o["metadata"]["name"]) == secret]
        if answers["secrets"] == "sops":
            # The encrypted file is listed only once it holds a real value; the Kustomization that will
            # apply it is the one over the environment's secrets directory, where its stub waits.
            assert applying == []
            applying = [k for k, n in nodes.items() if n.spec.get("path") == "./infrastructure/configs/monitoring/secrets"]
        (secret_key,) = applying
        assert secret_key != chart_key

        def waits_for(key, target, seen=()):
            # Default readiness: the dependency must be Ready (its Secrets unsealed), not merely applied once.
            return any(dep == target or (dep not in seen and waits_for(dep, target, (*seen, dep)))
                       for dep, expr in nodes[key].deps() if expr is None)

        assert waits_for(chart_key, secret_key), cluster
        # And the namespace of the Secret exists before the Secret.
        (namespace_key,) = [k for k, n in nodes.items() for o in n.applies if o["kind"] == "Namespace" and o["metadata"]["name"] == secret[0]]
        assert waits_for(secret_key, namespace_key), cluster


def test_a_sealed_secret_that_cannot_be_unsealed_fails_its_kustomization(flux_repo):
    answers, graphs = flux_repo
    if answers["secrets"] != "sealed-secrets":
        for nodes in graphs.values():
            assert not [n for n in nodes.values() if n.spec.get("healthCheckExprs")]
        return
    checked = 0
    for nodes in graphs.values():
        for node in nodes.values():
            if any(o["kind"] == "SealedSecret" for o in node.applies) and node.key != ("flux-system", "flux-system"):
                assert node.spec["wait"] is True and SEALED_SECRET_HEALTH in node.spec["healthCheckExprs"], node.key
                checked += 1
    assert checked
    # What the controller writes (sealed-secrets pkg/controller: condition Synced) maps onto Flux's verdict.
    unsealed = {"conditions": [{"type": "Synced", "status": "True"}]}
    broken = {"conditions": [{"type": "Synced", "status": "False", "reason": "ErrUnsealFailed", "message": "no key could decrypt secret"}]}
    assert (cel(SEALED_SECRET_HEALTH["failed"], status=unsealed), cel(SEALED_SECRET_HEALTH["current"], status=unsealed)) == (False, True)
    assert bool(cel(SEALED_SECRET_HEALTH["failed"], status=broken)) and not bool(cel(SEALED_SECRET_HEALTH["current"], status=broken))


def test_commit_statuses_name_their_cluster(flux_repo):
    answers, graphs = flux_repo
    for cluster, nodes in graphs.items():
        providers = [o for n in nodes.values() for o in n.applies
                     if o["kind"] == "Provider" and o["metadata"]["name"] == "commit-status"]
        if not (answers["monitoring"] and answers["alerts_to"] != "none" and ("github" in answers["git_url"] or "gitlab" in answers["git_url"])):
            assert providers == []
            continue
        (provider,) = providers
        expression = provider["spec"]["commitStatusExpr"]
        # infra-configs substitutes ${cluster_name}; the rendered expression names this cluster.
        assert "${" not in expression
        event = {"involvedObject": {"kind": "Kustomization", "name": "apps", "namespace": "flux-system"}}
        assert cel(expression, event=event, provider={}, alert={}) == f"Kustomization/apps/{cluster}"
