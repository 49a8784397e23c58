"""Cross-reference checks on small repos: scopes, defaults, what is taken as present, what is skipped."""

from __future__ import annotations

import pytest

from generator.validate import validate_repo


def flux_ks(name: str, path: str, **spec) -> dict:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": spec.pop("namespace", "flux-system")},
        "spec": {"interval": "10m", "path": path, "prune": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}, **spec},
    }


def found(report) -> set[tuple[str, str, str]]:
    assert report.render_errors == [], report.render_errors
    return {(f.check, f.kind, f.name) for f in report.findings}


CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": {"a": "b"}}


def test_bootstrap_source_is_taken_as_present_and_depends_on_defaults_to_own_namespace(make_repo, schema_locations):
    repo = make_repo({
        "clusters/prod/infra.yaml": flux_ks("infra", "./infra"),
        # dependsOn without namespace looks in the object's own namespace (team-a), where `infra` is not.
        "clusters/prod/apps.yaml": flux_ks("apps", "./apps", namespace="team-a", dependsOn=[{"name": "infra"}],
                                           sourceRef={"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}),
        "clusters/prod/ok.yaml": flux_ks("ok", "./apps", dependsOn=[{"name": "infra"}, {"name": "flux-system"}]),
        "infra/cm.yaml": CM,
        "apps/cm.yaml": CM,
    })
    report = validate_repo(repo, schema_locations=schema_locations)
    assert found(report) == {("GF202", "Kustomization", "apps")}
    [f] = report.findings
    assert "team-a/infra" in f.message


def test_sources_of_other_repositories_are_not_paths_here(make_repo, schema_locations):
    other = {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "team-repo", "namespace": "team-a"},
        "spec": {"interval": "1m", "url": "https://github.com/acme/team-a", "ref": {"branch": "main"}},
    }
    mine = {**other, "metadata": {"name": "flux-system", "namespace": "flux-system"},
            "spec": {**other["spec"], "url": "ssh://git@github.com/acme/platform.git"}}
    repo = make_repo({
        "clusters/prod/flux-system/gotk-sync.yaml": [mine, flux_ks("flux-system", "./clusters/prod")],
        "clusters/prod/flux-system/kustomization.yaml": "resources: [gotk-sync.yaml]\n",
        "clusters/prod/team-a.yaml": [other, flux_ks("team-a", "./deploy", namespace="team-a",
                                                     sourceRef={"kind": "GitRepository", "name": "team-repo"})],
        # Same repository as flux-system (another URL form): its path must exist.
        "clusters/prod/local.yaml": [
            {**other, "metadata": {"name": "platform", "namespace": "team-b"},
             "spec": {**other["spec"], "url": "https://github.com/acme/platform"}},
            flux_ks("local", "./nowhere", namespace="team-b", sourceRef={"kind": "GitRepository", "name": "platform"}),
        ],
    })
    report = validate_repo(repo, schema_locations=schema_locations)
    assert found(report) == {("GF203", "Kustomization", "local")}


def test_artifact_generator_provides_external_artifacts(make_repo, schema_locations):
    generator = {
        "apiVersion": "source.extensions.fluxcd.io/v1beta1", "kind": "ArtifactGenerator",
        "metadata": {"name": "monorepo", "namespace": "flux-system"},
        "spec": {"sources": [{"alias": "monorepo", "kind": "GitRepository", "name": "flux-system"}],
                 "artifacts": [{"name": "apps", "originRevision": "@monorepo", "copy": [{"from": "@monorepo/apps/**", "to": "@artifact/"}]}]},
    }
    repo = make_repo({
        "clusters/prod/artifacts.yaml": generator,
        "clusters/prod/apps.yaml": flux_ks("apps", "./prod", sourceRef={"kind": "ExternalArtifact", "name": "apps"}),
        "clusters/prod/infra.yaml": flux_ks("infra", "./infra", sourceRef={"kind": "ExternalArtifact", "name": "infrastructure"}),
    })
    report = validate_repo(repo, schema_locations=schema_locations)
    # Paths inside artifacts are not repo paths; the artifact that no generator makes is reported.
    assert found(report) == {("GF201", "Kustomization", "infra")}


def pod_workload(name: str, labels: dict, namespace: str = "shop") -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "busybox:1.36", "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}, "limits": {"cpu": "10m", "memory": "8Mi"}},
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}},
    }


def netpol(name: str, selector: dict, namespace: str = "shop") -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": selector, "policyTypes": ["Ingress"]}}


def pdb(name: str, selector: dict | None) -> dict:
    spec = {"maxUnavailable": 1} | ({"selector": selector} if selector is not None else {})
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def test_selectors(make_repo, schema_locations):
    objects = [
        pod_workload("job", {"app": "report", "tier": "batch"}),
        netpol("everything", {}),  # empty: selects every pod, nothing to check
        netpol("expr-ok", {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["batch", "web"]}]}),
        netpol("expr-bad", {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]}, {"key": "app", "operator": "Exists"}]}),
        netpol("other-namespace", {"matchLabels": {"app": "report"}}, namespace="billing"),
        pdb("ok", {"matchLabels": {"app": "report"}}),
        pdb("unset", None),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "external", "namespace": "shop"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "headless", "namespace": "shop"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}},
    ]
    repo = make_repo({"apps/kustomization.yaml": "resources: [all.yaml]\n", "apps/all.yaml": objects})
    report = validate_repo(repo, schema_locations=schema_locations)
    assert found(report) == {
        ("GF207", "NetworkPolicy", "expr-bad"),
        ("GF207", "NetworkPolicy", "other-namespace"),
        ("GF205", "PodDisruptionBudget", "unset"),
    }


def test_helm_release_namespaces_are_not_second_guessed(make_repo, schema_locations):
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "redis", "namespace": "shop"},
        "spec": {"interval": "1h", "chartRef": {"kind": "OCIRepository", "name": "redis"}},
    }
    source = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository", "metadata": {"name": "redis", "namespace": "shop"},
              "spec": {"interval": "1h", "url": "oci://registry-1.docker.io/bitnamicharts/redis", "ref": {"tag": "20.1.0"}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "redis-proxy", "namespace": "shop"},
               "spec": {"selector": {"app.kubernetes.io/name": "redis"}, "ports": [{"port": 6379}]}}
    repo = make_repo({"apps/kustomization.yaml": "resources: [all.yaml]\n", "apps/all.yaml": [release, source, service, pdb("redis", {"matchLabels": {"app.kubernetes.io/name": "redis"}})]})
    assert found(validate_repo(repo, schema_locations=schema_locations)) == set()


def test_argo_projects(make_repo, schema_locations):
    def application(name: str, project: str) -> dict:
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name, "namespace": "argocd"},
                "spec": {"project": project, "source": {"repoURL": "https://charts.example.com", "chart": name, "targetRevision": "1.0.0"},
                         "destination": {"server": "https://kubernetes.default.svc", "namespace": name}}}

    project = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "shop", "namespace": "argocd"},
               "spec": {"sourceRepos": ["https://charts.example.com"], "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}]}}
    repo = make_repo({
        "argocd/projects.yaml": project,
        "argocd/apps.yaml": [application("cart", "shop"), application("pay", "payments"), application("old", "default")],
    })
    report = validate_repo(repo, schema_locations=schema_locations)
    assert found(report) == {("GF208", "Application", "pay"), ("GF018", "Application", "old")}


def argo_app(name: str, path: str, **source) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "platform", "source": {"repoURL": "https://example.com/r.git", "path": path, **source},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"}}}


def test_network_policies_may_guard_pods_another_build_of_the_cluster_deploys(make_repo, schema_locations):
    # Argo CD: the platform's policies (tenants/) guard the pods of an app synced from apps/.
    platform = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "platform", "namespace": "argocd"},
                "spec": {"sourceRepos": ["https://example.com/r.git"], "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}]}}
    repo = make_repo({
        "clusters/prod/apps.yaml": [platform, argo_app("tenants", "tenants"), argo_app("web", "apps/web")],
        "clusters/prod/kustomization.yaml": "resources: [apps.yaml]\n",
        "tenants/kustomization.yaml": "resources: [policies.yaml]\n",
        "tenants/policies.yaml": [netpol("web", {"matchLabels": {"app": "web"}}), netpol("gone", {"matchLabels": {"app": "gone"}})],
        "apps/web/kustomization.yaml": "resources: [job.yaml]\n",
        "apps/web/job.yaml": pod_workload("web", {"app": "web"}),
        # Not applied by the cluster: no pod of apps/web is in its reach.
        "elsewhere/kustomization.yaml": "resources: [policy.yaml]\n",
        "elsewhere/policy.yaml": netpol("lonely", {"matchLabels": {"app": "web"}}, namespace="billing"),
    })
    assert found(validate_repo(repo, schema_locations=schema_locations)) == {
        ("GF207", "NetworkPolicy", "gone"), ("GF207", "NetworkPolicy", "lonely")}


def test_skip_annotation_covers_reference_checks(make_repo, schema_locations):
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "legacy", "namespace": "shop", "annotations": {"gitops-forge.io/skip-checks": "GF204"}},
           "spec": {"selector": {"app": "gone"}, "ports": [{"port": 80}]}}
    repo = make_repo({"apps/kustomization.yaml": "resources: [svc.yaml]\n", "apps/svc.yaml": svc})
    assert found(validate_repo(repo, schema_locations=schema_locations)) == set()


@pytest.mark.parametrize("skip", [["GF204"], ["gf204"]])
def test_skip_option(make_repo, schema_locations, skip):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "legacy", "namespace": "shop"},
           "spec": {"selector": {"app": "gone"}, "ports": [{"port": 80}]}}
    repo = make_repo({"apps/kustomization.yaml": "resources: [svc.yaml]\n", "apps/svc.yaml": svc})
    assert found(validate_repo(repo, schema_locations=schema_locations)) == {("GF204", "Service", "legacy")}
    report = validate_repo(repo, schema_locations=schema_locations, skip=skip)
    assert found(report) == set() and report.skipped_checks == ["GF204"]


def test_unknown_skip_is_rejected(make_repo, schema_locations):
    with pytest.raises(ValueError, match="Unknown check id"):
        validate_repo(make_repo({"a/kustomization.yaml": "resources: []\n"}), schema_locations=schema_locations, skip=["GF999"])


def test_objects_no_cluster_applies_resolve_anywhere_in_the_repo(make_repo, schema_locations):
    """apps/staging is a kustomization no cluster applies yet: its references only need to exist somewhere."""
    repo = make_repo({
        "clusters/prod/infra.yaml": flux_ks("infra", "./infra"),
        "infra/cm.yaml": CM,
        "apps/staging/kustomization.yaml": "resources: [deploy.yaml]\n",
        "apps/staging/deploy.yaml": [
            flux_ks("ok", "./infra", dependsOn=[{"name": "infra"}]),
            flux_ks("bad", "./infra", dependsOn=[{"name": "nowhere"}]),
        ],
    })
    assert found(validate_repo(repo, schema_locations=schema_locations)) == {("GF202", "Kustomization", "bad")}
