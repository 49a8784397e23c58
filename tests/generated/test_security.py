"""Security hardening of generated repos (issue 4), for every answer variant of test_generated_repos:
no plaintext Secret in the repository or its render, Pod Security "restricted" for every pod template, a
fenced-in namespace per tenant, least-privilege RBAC, Flux locked down with every tenant reconciliation
impersonating its team, secrets stubs that are obviously placeholders, and code owners per path."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from generator.render import find_tool

from ..test_docs import REPO_FILE, Markdown, broken_links
from .test_generated_repos import VARIANTS
from .test_tenant_attacks import required_owner_sets
from .variants import generate

POD_SPEC = {"Deployment": ("spec", "template", "spec"), "StatefulSet": ("spec", "template", "spec"),
            "DaemonSet": ("spec", "template", "spec"), "Job": ("spec", "template", "spec"),
            "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"), "Pod": ("spec",)}
RESTRICTED_VOLUMES = {"configMap", "downwardAPI", "emptyDir", "projected", "secret", "csi", "persistentVolumeClaim", "ephemeral", "image"}
LOCKDOWN = {
    "--no-cross-namespace-refs=true": {"kustomize-controller", "helm-controller", "notification-controller",
                                       "image-reflector-controller", "image-automation-controller"},
    "--no-remote-bases=true": {"kustomize-controller"},
    "--default-service-account=default": {"kustomize-controller", "helm-controller"},
}
FLUX_CONTROLLERS = ["source-controller", *sorted(set().union(*LOCKDOWN.values()))]


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def repo(request, tmp_path_factory) -> tuple[Path, dict, list]:
    generated = generate(tmp_path_factory, VARIANTS[request.param])
    return generated.repo, generated.answers, generated.rendered


def objects(rendered, kind: str | None = None) -> list[dict]:
    """Every rendered object once (several entrypoints may render the same object)."""
    seen, out = set(), []
    for result in rendered:
        for obj in result.objects:
            data = obj.data
            meta = data.get("metadata") or {}
            key = (result.entrypoint.rel, data.get("kind"), meta.get("namespace"), meta.get("name"))
            if (kind is None or data.get("kind") == kind) and key not in seen:
                seen.add(key)
                out.append(data)
    return out


def repo_documents(repo: Path) -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(repo.rglob("*.y*ml")):
        if ".git" in path.relative_to(repo).parts:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):
                docs.append((path.relative_to(repo).as_posix(), doc))
    return docs


def dig(node, path):
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def tenants(answers) -> set[str]:
    return {team["name"] for team in answers["teams"]}


# --- secrets ---------------------------------------------------------------------------------------


def plaintext(doc: dict) -> bool:
    return doc.get("kind") == "Secret" and "sops" not in doc and bool(doc.get("data") or doc.get("stringData"))


def test_no_plaintext_secret_in_the_repository_or_its_render(repo):
    path, _, rendered = repo
    in_files = [name for name, doc in repo_documents(path) if plaintext(doc)]
    in_render = [f"{d['metadata'].get('namespace')}/{d['metadata']['name']}" for d in objects(rendered, "Secret") if plaintext(d)]
    assert in_files == [] and in_render == []


def test_secret_stubs_are_obvious_placeholders_with_strict_scope(repo):
    path, answers, rendered = repo
    sealed = answers["secrets"] == "sealed-secrets"
    for env in answers["environments"]:
        for app in answers["apps"]:
            stub = path / "apps" / env / app["name"] / ("sealedsecret.yaml" if sealed else "secret.sops.yaml")
            doc = yaml.safe_load(stub.read_text())
            assert doc["metadata"] == {**doc["metadata"], "name": app["name"], "namespace": app["team"]}
            values = doc["spec"]["encryptedData"] if sealed else doc["stringData"]
            assert values and all("PLACEHOLDER" in value for value in values.values()), stub
            assert "scripts/seal-secret.sh" in stub.read_text() if sealed else "scripts/encrypt-secret.sh" in stub.read_text()
            if sealed:
                assert not set(doc["metadata"].get("annotations") or {}) & {
                    "sealedsecrets.bitnami.com/namespace-wide", "sealedsecrets.bitnami.com/cluster-wide"}
            else:
                assert {"mac", "lastmodified", "version"} <= set(doc["sops"]) and doc["sops"]["age"]
    stubs = [d for d in objects(rendered, "SealedSecret")]
    # No placeholder is applied: a SealedSecret that cannot be unsealed would make the app Degraded, and Flux
    # would stop the whole Kustomization at a SOPS file it cannot decrypt. The seal script lists the file.
    assert not {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in stubs} & {(a["team"], a["name"]) for a in answers["apps"]}
    kustomization = (path / "apps" / answers["environments"][0] / "kustomization.yaml").read_text()
    if not sealed and answers["apps"]:
        assert "# - git-auth-" in kustomization and not re.search(r"^  - \S+\.sops\.yaml", kustomization, re.M)


def test_kustomizations_holding_sealed_secrets_wait_for_the_controller(repo):
    _, answers, rendered = repo
    flux = {(k["metadata"]["namespace"], k["metadata"]["name"]): k["spec"] for k in objects(rendered, "Kustomization")
            if k.get("apiVersion", "").startswith("kustomize.toolkit.fluxcd.io/")}

    def after_controllers(key, seen=()) -> bool:
        if key == ("flux-system", "infra-controllers"):
            return True
        return any(after_controllers((d.get("namespace", key[0]), d["name"]), (*seen, key))
                   for d in flux[key].get("dependsOn", []) if (d.get("namespace", key[0]), d["name"]) not in seen)

    holders = {r.entrypoint.spec.get("path", "").lstrip("./") for r in rendered
               if r.entrypoint.mode == "flux" and any(o.data.get("kind") in ("SealedSecret", "Secret") for o in r.objects)}
    for key, spec in flux.items():
        if spec["path"].lstrip("./") in holders:
            assert after_controllers(key), key
            if answers["secrets"] == "sops":
                assert spec.get("decryption") == {"provider": "sops", "secretRef": {"name": "sops-age"}}, key
    if answers["secrets"] == "sops":
        assert not any(h.get("kind") == "HelmRelease" and h["metadata"]["name"] == "sealed-secrets" for h in objects(rendered))
        for key, spec in flux.items():
            if key[0] in tenants(answers) or key[1] in ("infra-configs", "apps") or (key[1] == "monitoring-secrets" and answers["monitoring"]):
                assert spec.get("decryption", {}).get("provider") == "sops", key


def test_sops_rules_cover_every_secret_file(repo):
    path, answers, _ = repo
    if answers["secrets"] != "sops":
        assert not (path / ".sops.yaml").exists() and not list(path.rglob("*.sops.yaml"))
        return
    rules = yaml.safe_load((path / ".sops.yaml").read_text())["creation_rules"]
    for file in sorted(f for f in path.rglob("*.sops.yaml") if f.name != ".sops.yaml"):
        relative = file.relative_to(path).as_posix()
        rule = next((r for r in rules if re.search(r["path_regex"], relative)), None)
        assert rule and rule["encrypted_regex"] == "^(data|stringData)$", relative
        keys = rule["key_groups"][0]["age"]
        parts = relative.split("/")
        if parts[0] == "apps" and len(parts) == 4:  # apps/<env>/<app>/secret.sops.yaml: the team's keys only
            team = next(a["team"] for a in answers["apps"] if a["name"] == parts[2])
            env_clusters = [c["name"] for c in answers["clusters"] if c["environment"] == parts[1]]
            assert keys == [f"REPLACE-with-the-age-key-of-team-{team}-on-cluster-{c}" for c in env_clusters], relative


def test_gitignore_blocks_plaintext_and_keys_but_not_the_certificate(repo, tmp_path):
    path, _, _ = repo
    probe = tmp_path / "probe"
    subprocess.run(["git", "init", "-q", str(probe)], check=True)
    (probe / ".gitignore").write_text((path / ".gitignore").read_text())
    names = ["db.unsealed.yaml", "age.agekey", "main.key", "sealed-secrets-keys-prod.yaml", "x.dec.yaml",
             "clusters/prod/pub-sealed-secrets.pem", "pub-sealed-secrets-prod.pem"]
    run = subprocess.run(["git", "-C", str(probe), "check-ignore", "--no-index", *names], capture_output=True, text=True)
    assert set(run.stdout.split()) == set(names[:5])


def test_sealed_secrets_controller_passes_restricted_and_matches_kubeseal(repo):
    path, answers, _ = repo
    if answers["secrets"] != "sealed-secrets":
        assert not (path / "infrastructure/controllers/sealed-secrets").exists()
        return
    directory = path / "infrastructure/controllers/sealed-secrets"
    if answers["engine"] == "flux":
        spec = yaml.safe_load((directory / "helmrelease.yaml").read_text())["spec"]
        values, namespace, release = spec["values"], spec["targetNamespace"], spec["releaseName"]
        assert spec["serviceAccountName"] == "helm-controller"
        assert spec["install"]["crds"] == "Create" and spec["upgrade"]["crds"] == "CreateReplace"
    else:
        application = yaml.safe_load((directory / "application.yaml").read_text())
        spec, values = application["spec"], yaml.safe_load((directory / "values.yaml").read_text())
        chart, own = spec["sources"]
        namespace, release = spec["destination"]["namespace"], chart["helm"]["releaseName"]
        assert chart["helm"]["valueFiles"] == ["$values/infrastructure/controllers/sealed-secrets/values.yaml"]
        assert own == {"repoURL": answers["git_url"], "targetRevision": answers["default_branch"], "ref": "values"}
        # Uninstalling the chart would delete the CRD and with it every SealedSecret and its Secret.
        assert "finalizers" not in application["metadata"] and "ServerSideApply=true" in spec["syncPolicy"]["syncOptions"]
    assert (namespace, release, values["fullnameOverride"]) == ("kube-system", "sealed-secrets-controller", "sealed-secrets-controller")
    assert values["keyrenewperiod"] == "0"  # renewed only by the rotation runbook (docs/secrets.md)
    pod, container = values["podSecurityContext"], values["containerSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["allowPrivilegeEscalation"] is False and container["capabilities"]["drop"] == ["ALL"]
    assert container["runAsNonRoot"] is True and container["runAsUser"] != 0 and container["readOnlyRootFilesystem"] is True


# --- pods ------------------------------------------------------------------------------------------


def test_every_pod_template_meets_pod_security_restricted(repo):
    _, _, rendered = repo
    pods = [(o["kind"], o["metadata"]["name"], dig(o, POD_SPEC[o["kind"]])) for o in objects(rendered) if o.get("kind") in POD_SPEC]
    for kind, name, pod in pods:
        where = f"{kind}/{name}"
        psc = pod.get("securityContext") or {}
        assert psc.get("runAsNonRoot") is True and (psc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost"), where
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), where
        assert all(set(v) - {"name"} <= RESTRICTED_VOLUMES for v in pod.get("volumes") or []), where
        for container in [*(pod.get("initContainers") or []), *pod["containers"]]:
            sc = container.get("securityContext") or {}
            assert sc.get("allowPrivilegeEscalation") is False and "ALL" in sc["capabilities"]["drop"], where
            assert set(sc["capabilities"].get("add") or []) <= {"NET_BIND_SERVICE"} and not sc.get("privileged"), where
            assert sc.get("runAsUser", psc.get("runAsUser")) != 0, where
            assert not any(p.get("hostPort") for p in container.get("ports") or []), where


# --- tenants ---------------------------------------------------------------------------------------


def test_every_tenant_namespace_is_fenced_in(repo):
    _, answers, rendered = repo
    for result in rendered:
        if not result.entrypoint.rel.startswith("tenants/"):
            continue
        found = [o.data for o in result.objects]
        by = lambda kind, ns: [o for o in found if o["kind"] == kind and o["metadata"].get("namespace") == ns]  # noqa: E731
        namespaces = [o for o in found if o["kind"] == "Namespace"]
        assert {n["metadata"]["name"] for n in namespaces} == tenants(answers)
        for namespace in namespaces:
            name, labels = namespace["metadata"]["name"], namespace["metadata"]["labels"]
            for mode in ("enforce", "audit", "warn"):
                assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
                assert re.fullmatch(r"v1\.\d+", labels[f"pod-security.kubernetes.io/{mode}-version"])
            assert labels.get("toolkit.fluxcd.io/tenant") == (name if answers["engine"] == "flux" else None)
            quota = by("ResourceQuota", name)[0]["spec"]["hard"]
            assert {"requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "pods"} <= set(quota)
            assert quota["services.loadbalancers"] == "0" and quota["services.nodeports"] == "0"
            limits = by("LimitRange", name)[0]["spec"]["limits"][0]
            assert limits["type"] == "Container" and {"default", "defaultRequest", "max"} <= set(limits)
            policies = {p["metadata"]["name"]: p["spec"] for p in by("NetworkPolicy", name)}
            deny = policies["default-deny-all"]
            assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
            assert not deny.get("ingress") and not deny.get("egress")
            dns = policies["allow-dns-egress"]["egress"][0]
            assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
            sa = {s["metadata"]["name"]: s for s in by("ServiceAccount", name)}
            assert sa["default"]["automountServiceAccountToken"] is False
            # Flux reconciles a tenant as its own ServiceAccount; Argo CD applies with its controller's.
            assert (name in sa) == (answers["engine"] == "flux")
    # Sizes differ between the first and the last environment when there are several.
    first, last = answers["environments"][0], answers["environments"][-1]
    if first != last:
        quota = {r.entrypoint.rel: next(o.data for o in r.objects if o.data["kind"] == "ResourceQuota")
                 for r in rendered if r.entrypoint.rel in (f"tenants/{first}", f"tenants/{last}")}
        assert quota[f"tenants/{first}"]["spec"] != quota[f"tenants/{last}"]["spec"]


def test_app_network_policies_match_their_pods(repo):
    _, answers, rendered = repo
    # An app's policy is the platform's (tenants/), not the app's: no team may change NetworkPolicies. So
    # look in every build of the cluster: (namespace, policy) pairs.
    every_policy = [(o["metadata"].get("namespace"), o) for o in objects(rendered, "NetworkPolicy")]
    for result in rendered:
        found = [o.data for o in result.objects]
        for deployment in (o for o in found if o["kind"] == "Deployment"):
            labels, namespace = deployment["spec"]["template"]["metadata"]["labels"], deployment["metadata"].get("namespace")
            policies = [p["spec"] for ns, p in every_policy if ns == namespace
                        and p["spec"]["podSelector"].get("matchLabels")
                        and p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
            assert policies, deployment["metadata"]["name"]
            in_build = any(p["kind"] == "NetworkPolicy" and p["spec"] in policies for p in found)
            assert not in_build, deployment["metadata"]["name"]
            policy = policies[0]
            assert policy["ingress"] and policy["egress"]
            sources = [s for rule in policy["ingress"] for s in rule["from"]]
            assert {"namespaceSelector": {"matchLabels": {"gitops-forge.io/ingress-gateway": "true"}}} in sources
            assert all(port["port"] == "http" for rule in policy["ingress"] for port in rule["ports"])
            if answers["monitoring"]:
                assert any((s.get("namespaceSelector") or {}).get("matchLabels") == {"kubernetes.io/metadata.name": "monitoring"}
                           for s in sources)


# --- RBAC ------------------------------------------------------------------------------------------


def test_rbac_is_least_privilege(repo):
    _, answers, rendered = repo
    for role in objects(rendered, "Role") + objects(rendered, "ClusterRole"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), role["metadata"]["name"]
            assert not {"pods/exec", "pods/attach", "nodes/proxy"} & set(rule["resources"]), role["metadata"]["name"]
    bindings = objects(rendered, "RoleBinding") + objects(rendered, "ClusterRoleBinding")
    assert all(b["roleRef"]["name"] != "cluster-admin" for b in bindings)
    for team in answers["teams"]:
        mine = [b for b in bindings if b["metadata"].get("namespace") == team["name"]]
        subjects = [(s["kind"], s["name"], b["roleRef"]["kind"], b["roleRef"]["name"]) for b in mine for s in b["subjects"]]
        assert (("ServiceAccount", team["name"], "ClusterRole", "gitops-forge:tenant-reconciler") in subjects) == (answers["engine"] == "flux")
        assert not any(role in ("admin", "edit", "cluster-admin") for *_, role in subjects)
        for group in team["groups"]:
            assert {("Group", group, "ClusterRole", "view"), ("Group", group, "Role", "deployer")} <= set(subjects)
        assert not any(kind == "ServiceAccount" and name == "default" for kind, name, _, _ in subjects)
        assert {kind for kind, *_ in subjects} <= {"ServiceAccount", "Group"}


# --- Flux ------------------------------------------------------------------------------------------


def test_every_reconciliation_has_an_explicit_identity(repo):
    _, answers, rendered = repo
    if answers["engine"] == "argocd":
        # Argo CD's identity is the project: platform objects in `platform`, the platform's Helm charts in
        # `platform-charts`, each app in its team's.
        applications = objects(rendered, "Application")
        assert applications and not objects(rendered, "HelmRelease")
        for application in applications:
            meta, spec = application["metadata"], application["spec"]
            chart = any("chart" in source for source in spec.get("sources", [spec.get("source", {})]))
            platform = "platform-charts" if chart else "platform"
            expected = next((a["team"] for a in answers["apps"] if a["name"] == meta["name"]), platform)
            assert (meta["namespace"], spec["project"]) == ("argocd", expected), meta["name"]
            if expected != platform:
                assert spec["destination"] == {"server": "https://kubernetes.default.svc", "namespace": expected}
        return
    flux = [k for k in objects(rendered, "Kustomization") if k.get("apiVersion", "").startswith("kustomize.toolkit.fluxcd.io/")]
    assert flux
    for ks in flux:
        namespace, spec = ks["metadata"]["namespace"], ks["spec"]
        if namespace == "flux-system":
            assert spec["serviceAccountName"] == "kustomize-controller", ks["metadata"]["name"]
        else:
            assert namespace in tenants(answers) and spec["serviceAccountName"] == namespace, ks["metadata"]
            assert spec["sourceRef"].get("namespace", namespace) == namespace and spec["targetNamespace"] == namespace
    for release in objects(rendered, "HelmRelease"):
        expected = "helm-controller" if release["metadata"]["namespace"] == "flux-system" else release["metadata"]["namespace"]
        assert release["spec"]["serviceAccountName"] == expected, release["metadata"]["name"]
    # Each app is reconciled by exactly one Kustomization in its team's namespace, from the team's own source.
    tenant_ks = {(k["metadata"]["namespace"], k["spec"]["path"]) for k in flux if k["metadata"]["namespace"] != "flux-system"}
    assert tenant_ks == {(a["team"], f"./apps/{env}/{a['name']}") for env in answers["environments"] for a in answers["apps"]}
    for env in answers["environments"]:
        sources = {o.data["metadata"]["namespace"]: o.data for r in rendered if r.entrypoint.rel == f"apps/{env}"
                   for o in r.objects if o.data["kind"] == "GitRepository"}
        assert set(sources) == {a["team"] for a in answers["apps"]}
        for team, source in sources.items():
            source = source["spec"]
            assert source["secretRef"] == {"name": "git-auth"} and source["url"] == answers["git_url"]
            # Only the team's own apps are checked out.
            assert sorted(source["sparseCheckout"]) == sorted(
                f"apps/{kind}/{a['name']}" for a in answers["apps"] if a["team"] == team for kind in ("base", env))
            assert source.get("verify") == (None if answers["verify"] == "none" else {"mode": "HEAD", "secretRef": {"name": "git-signing-keys"}})


def test_flux_system_is_locked_down_and_builds_before_bootstrap(repo, tmp_path):
    path, answers, rendered = repo
    if answers["engine"] == "argocd":
        # Nothing of Flux; what a cluster's root Application renders is the app of apps and its projects.
        assert not list(path.glob("clusters/*/flux-system"))
        for cluster in answers["clusters"]:
            built = next(r for r in rendered if r.entrypoint.rel == f"clusters/{cluster['name']}")
            assert sorted((o.data["kind"], o.data["metadata"]["name"]) for o in built.objects) == sorted([
                ("AppProject", "default"), ("AppProject", "platform"), ("AppProject", "platform-charts"),
                *(("Application", name) for name in ("root", "infra-controllers", "infra-configs", "tenants", "apps")),
                *([("SealedSecret", "repo-acme-platform")] if answers["secrets"] == "sealed-secrets" else []),
            ])
        return
    if answers["flux_install"] == "operator":
        for cluster in answers["clusters"]:
            directory = path / "clusters" / cluster["name"] / "flux-system"
            built = subprocess.run([*find_tool(), str(directory)], capture_output=True, text=True, check=True)
            docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(built.stdout)}
            assert set(docs) == {("FluxInstance", "flux"), ("OCIRepository", "flux-operator"), ("HelmRelease", "flux-operator")}
            spec = docs[("FluxInstance", "flux")]["spec"]
            # The operator's multitenant profile adds exactly LOCKDOWN's flags and flux-system's own
            # serviceAccountName (flux-operator internal/builder/profiles.go); the default account is `default`.
            assert spec["cluster"] == {"type": "kubernetes", "multitenant": True, "tenantDefaultServiceAccount": "default",
                                       "networkPolicy": True, "domain": "cluster.local"}
            assert re.fullmatch(r"\d+\.\d+\.x", spec["distribution"]["version"])  # the minor is pinned
            assert spec["sync"] == {"kind": "GitRepository", "url": answers["git_url"], "ref": f"refs/heads/{answers['default_branch']}",
                                    "path": f"clusters/{cluster['name']}", "pullSecret": "flux-system"}
            patches = spec.get("kustomize", {}).get("patches", [])
            if answers["verify"] == "none":
                assert patches == []
            else:
                [patch] = patches
                assert patch["target"] == {"kind": "GitRepository", "name": "flux-system"}
                assert yaml.safe_load(patch["patch"]) == [{"op": "add", "path": "/spec/verify",
                                                           "value": {"mode": "HEAD", "secretRef": {"name": "git-signing-keys"}}}]
            release = docs[("HelmRelease", "flux-operator")]["spec"]
            assert release["chartRef"] == {"kind": "OCIRepository", "name": "flux-operator"}
            assert release["releaseName"] == "flux-operator" and release["serviceAccountName"] == "helm-controller"
            assert not list(directory.glob("gotk-*.yaml"))  # nothing of bootstrap
    else:
        for cluster in answers["clusters"]:
            directory = path / "clusters" / cluster["name"] / "flux-system"
            before = subprocess.run([*find_tool(), str(directory)], capture_output=True, text=True)
            assert before.returncode == 0 and before.stdout.strip() in ("", "{}"), before.stderr
            # After `flux bootstrap`: the same kustomization.yaml over real-looking controllers and sync objects.
            bootstrapped = tmp_path / cluster["name"]
            bootstrapped.mkdir()
            (bootstrapped / "kustomization.yaml").write_text((directory / "kustomization.yaml").read_text())
            (bootstrapped / "gotk-components.yaml").write_text(yaml.safe_dump_all([
                {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "flux-system"},
                 "spec": {"template": {"spec": {"containers": [{"name": "manager", "args": ["--log-level=info"]}]}}}}
                for name in FLUX_CONTROLLERS]))
            (bootstrapped / "gotk-sync.yaml").write_text(yaml.safe_dump_all([
                {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": "flux-system", "namespace": "flux-system"},
                 "spec": {"interval": "1m", "url": answers["git_url"], "secretRef": {"name": "flux-system"}}},
                {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "flux-system", "namespace": "flux-system"},
                 "spec": {"interval": "10m", "path": f"./clusters/{cluster['name']}", "prune": True,
                          "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}}]))
            built = subprocess.run([*find_tool(), str(bootstrapped)], capture_output=True, text=True, check=True)
            docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(built.stdout)}
            for flag, controllers in LOCKDOWN.items():
                for name in FLUX_CONTROLLERS:
                    args = docs[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]["args"]
                    assert (flag in args) == (name in controllers), (name, flag)
            assert docs[("Kustomization", "flux-system")]["spec"]["serviceAccountName"] == "kustomize-controller"
            verify = docs[("GitRepository", "flux-system")]["spec"].get("verify")
            assert verify == (None if answers["verify"] == "none" else {"mode": "HEAD", "secretRef": {"name": "git-signing-keys"}})
    # The placeholders add nothing to the cluster's render, which holds only the platform Kustomizations.
    cluster_objects = [o.data for r in rendered if r.entrypoint.rel.startswith("clusters/") for o in r.objects]
    operator = {("FluxInstance", "flux"), ("OCIRepository", "flux-operator"), ("HelmRelease", "flux-operator")}
    platform = ("infra-controllers", "infra-configs", "tenants", "apps",
                *(("monitoring-secrets", "monitoring-controllers") if answers["monitoring"] else ()))
    assert {(o["kind"], o["metadata"]["name"]) for o in cluster_objects} == {("Kustomization", name) for name in platform} | (
        operator if answers["flux_install"] == "operator" else set())


def test_reconciler_service_accounts_are_kept_out_of_pods(repo):
    _, answers, rendered = repo
    policies = {o["metadata"]["name"] for o in objects(rendered, "ValidatingAdmissionPolicy")}
    if answers["engine"] == "argocd":
        # No tenant reconciler identity exists to keep out: Argo CD applies with its controller's account.
        # (The monitoring policy of test_alerting.py is about ServiceMonitors, not about this identity.)
        assert policies - {"gitops-forge-monitors-no-file-credentials"} == {"gitops-forge-tenant-no-external-ips"}
        assert not [sa for sa in objects(rendered, "ServiceAccount") if sa["metadata"].get("namespace") in tenants(answers)
                    and sa["metadata"]["name"] != "default" and sa["metadata"]["name"] not in {a["name"] for a in answers["apps"]}]
        return
    name = "gitops-forge-tenant-reconciler-not-in-pods"
    assert name in policies
    policy = next(o for o in objects(rendered, "ValidatingAdmissionPolicy") if o["metadata"]["name"] == name)
    binding = next(o for o in objects(rendered, "ValidatingAdmissionPolicyBinding") if o["spec"]["policyName"] == name)
    assert binding["spec"]["policyName"] == policy["metadata"]["name"] and binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"] == [{"key": "toolkit.fluxcd.io/tenant", "operator": "Exists"}]
    assert "toolkit.fluxcd.io/tenant" in policy["spec"]["validations"][0]["expression"]


# --- governance ------------------------------------------------------------------------------------


def owners(codeowners: str, path: str) -> list[str]:
    """Everyone whose approval a path can need: the last matching line wins (per section on GitLab)."""
    return sorted(set().union(*required_owner_sets(codeowners, path)))


def test_codeowners_give_platform_paths_to_the_platform_and_apps_to_their_teams(repo):
    path, answers, _ = repo
    github = (path / ".github/CODEOWNERS").is_file()
    assert github != (path / "CODEOWNERS").is_file()
    assert github == ("gitlab" not in answers["git_url"])
    text = (path / ".github/CODEOWNERS" if github else path / "CODEOWNERS").read_text()
    org = answers["git_url"].split("/")[3]
    for platform_path in ("clusters/x/apps.yaml", "infrastructure/controllers/kustomization.yaml", "tenants/base/t/namespace.yaml",
                          ".github/workflows/validate.yaml", f"apps/{answers['environments'][0]}/kustomization.yaml"):
        assert owners(text, platform_path) == [f"@{org}/platform"], platform_path
    envs = answers["environments"]
    production = [e for e in envs if e in ("prod", "production") or e == envs[-1]]
    for app in answers["apps"]:
        team, platform = {f"@{org}/{app['team']}"}, {f"@{org}/platform"}
        for env in ("base", *envs):
            required = required_owner_sets(text, f"apps/{env}/{app['name']}/kustomization.yaml")
            # Production needs the platform: alone on GitHub (one approval from any listed owner would do), in a
            # section of its own beside the team's on GitLab (one approval per section).
            if env in production:
                assert required == ([platform] if github else [team, platform]), env
            else:
                assert required == [team], env
        assert owners(text, f"apps/{answers['environments'][0]}/deploy-{app['name']}.yaml") == [f"@{org}/platform"]


def test_security_and_secrets_docs_fit_the_variant(repo):
    path, answers, _ = repo
    pages = [path / "docs/security.md", path / "docs/secrets.md"]
    assert broken_links(pages, path) == []
    missing = [f"{page.name}: `{span}`" for page in pages for _, span in Markdown.read(page).inline_code()
               if REPO_FILE.match(span) and not (path / span.rstrip("/")).exists()]
    assert missing == []
    secrets_doc = (path / "docs/secrets.md").read_text()
    if answers["secrets"] == "sealed-secrets":
        assert 'keyrenewperiod: "0"' in secrets_doc and "## Rotate the sealing key" in secrets_doc and "30 days" not in secrets_doc
        assert "re-encrypt" in secrets_doc and "SOPS" in secrets_doc and "External Secrets" in secrets_doc
    else:
        assert "kubeseal" not in secrets_doc and "sops updatekeys" in secrets_doc and "Sealed Secrets" in secrets_doc
    security = (path / "docs/security.md").read_text()
    engine_headings = ("## Tenants, Flux and RBAC",) if answers["engine"] == "flux" else ("## Tenants, Argo CD and RBAC", "## Argo CD access")
    for heading in ("## Pod Security Standards", "## Network model", *engine_headings, "## Git access and credential rotation",
                    "## Signed commits", "## Break-glass access", "## Audit logging"):
        assert heading in security
    assert "CNI must enforce NetworkPolicy" in security and "read-only" in security
