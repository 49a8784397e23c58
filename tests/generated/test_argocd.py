"""The Argo CD engine (issue 6), for every engine=argocd variant of test_generated_repos: the app of apps
and its paths, projects that fence every team in, a neutered `default` project, Argo CD managing itself
from the repo, and argocd-cm / argocd-rbac-cm locked down."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml
from lupa import LuaRuntime

from .test_generated_repos import VARIANTS
from .variants import generate

IN_CLUSTER = "https://kubernetes.default.svc"
ARGOCD = sorted(name for name, answers in VARIANTS.items() if answers.get("engine") == "argocd")
# Applications whose deletion must not cascade: the root (it would take the whole cluster with it), Argo CD
# itself, Sealed Secrets (its CRD's deletion deletes every SealedSecret and the Secrets they own) and
# kube-prometheus-stack (its CRDs' deletion deletes every team's ServiceMonitor and PrometheusRule), and
# metrics-server like every platform chart (removing it from Git must not uninstall it by surprise).
NO_FINALIZER = {"root", "argo-cd", "sealed-secrets", "kube-prometheus-stack", "metrics-server"}


@pytest.fixture(scope="module", params=ARGOCD)
def repo(request, tmp_path_factory) -> tuple[Path, dict, list]:
    generated = generate(tmp_path_factory, VARIANTS[request.param])
    return generated.repo, generated.answers, generated.rendered


def test_the_matrix_has_argocd_variants():
    assert len(ARGOCD) >= 2


def rendered_objects(rendered, kind: str) -> dict[str, dict]:
    """name -> object, for an argoproj.io kind (all live in the namespace argocd)."""
    found = {}
    for result in rendered:
        for obj in result.objects:
            data = obj.data
            if data.get("kind") == kind and data["apiVersion"].startswith("argoproj.io/"):
                assert data["metadata"]["namespace"] == "argocd", data["metadata"]
                found[data["metadata"]["name"]] = data
    return found


def sources(application: dict) -> list[dict]:
    spec = application["spec"]
    return [spec["source"]] if "source" in spec else spec["sources"]


def test_every_application_path_exists_and_renders(repo):
    path, answers, rendered = repo
    built = {(r.entrypoint.rel, r.entrypoint.mode) for r in rendered if not r.error}
    applications = rendered_objects(rendered, "Application")
    assert not rendered_objects(rendered, "ApplicationSet")  # generated Applications, one file each
    for name, application in applications.items():
        for source in sources(application):
            if "chart" in source:
                # A chart from its Helm repository; its values files come from this repository.
                for value_file in source["helm"]["valueFiles"]:
                    assert (path / value_file.removeprefix("$values/")).is_file(), (name, value_file)
                assert re.fullmatch(r"\d+\.\d+\.\d+", source["targetRevision"]), (name, "pin an exact chart version")
            elif "ref" in source:
                assert source["repoURL"] == answers["git_url"] and source["ref"] == "values"
            else:
                assert source["repoURL"] == answers["git_url"] and source["targetRevision"] == answers["default_branch"]
                assert (path / source["path"]).is_dir() and (source["path"], "argocd") in built, (name, source["path"])
    names = {"root", "infra-controllers", "infra-configs", "tenants", "apps", "argo-cd", "metrics-server"}
    names |= {"sealed-secrets"} if answers["secrets"] == "sealed-secrets" else set()
    names |= {"kube-prometheus-stack"} if answers["monitoring"] else set()
    assert set(applications) == names | {a["name"] for a in answers["apps"]}


def test_every_application_syncs_itself_and_cleans_up(repo):
    _, answers, rendered = repo
    for name, application in rendered_objects(rendered, "Application").items():
        policy = application["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}, name
        assert policy["retry"]["limit"] > 0 and policy["retry"]["backoff"]["factor"] > 1, name
        finalizers = application["metadata"].get("finalizers", [])
        assert finalizers == ([] if name in NO_FINALIZER else ["resources-finalizer.argocd.argoproj.io"]), name
        assert application["spec"]["destination"]["server"] == IN_CLUSTER
    for cluster in answers["clusters"]:
        root = yaml.safe_load((Path(repo[0]) / "clusters" / cluster["name"] / "root.yaml").read_text())
        # The root app manages clusters/<cluster>/, itself included.
        assert root["spec"]["source"]["path"] == f"clusters/{cluster['name']}"
        listed = yaml.safe_load((Path(repo[0]) / "clusters" / cluster["name"] / "kustomization.yaml").read_text())["resources"]
        assert "root.yaml" in listed and "appproject-default.yaml" in listed


def test_projects_exist_and_none_is_default(repo):
    _, answers, rendered = repo
    projects = rendered_objects(rendered, "AppProject")
    assert set(projects) == {"default", "platform", "platform-charts"} | {t["name"] for t in answers["teams"]}
    for name, application in rendered_objects(rendered, "Application").items():
        assert application["spec"]["project"] in projects and application["spec"]["project"] != "default", name
    default = projects["default"]["spec"]
    assert default["sourceRepos"] == [] and default["destinations"] == [] and default["clusterResourceWhitelist"] == []
    assert default["namespaceResourceBlacklist"] == [{"group": "*", "kind": "*"}]


def test_team_projects_fence_each_team_in(repo):
    _, answers, rendered = repo
    projects = rendered_objects(rendered, "AppProject")
    for team in answers["teams"]:
        name, project = team["name"], projects[team["name"]]
        spec = project["spec"]
        assert spec["sourceRepos"] == [answers["git_url"]]
        assert spec["destinations"] == [{"server": IN_CLUSTER, "namespace": name}]
        assert spec["clusterResourceWhitelist"] == [] and "clusterResourceBlacklist" not in spec
        # A whitelist of the kinds an app is made of: the namespace's guard rails and RBAC are not among them.
        assert "namespaceResourceBlacklist" not in spec
        whitelisted = {(k["group"], k["kind"]) for k in spec["namespaceResourceWhitelist"]}
        assert {("apps", "Deployment"), ("", "Service"), ("", "ServiceAccount"), ("autoscaling", "HorizontalPodAutoscaler"),
                ("policy", "PodDisruptionBudget"), ("bitnami.com", "SealedSecret")} <= whitelisted
        assert not {g for g, _ in whitelisted} & {"rbac.authorization.k8s.io", "networking.k8s.io", "argoproj.io", "*"}
        assert not {k for _, k in whitelisted} & {"ResourceQuota", "LimitRange", "Secret", "*"}
        assert spec["orphanedResources"] == {"warn": True}
        assert project["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
        for role in spec["roles"]:
            assert role["groups"] == team["groups"]
            for policy in role["policies"]:
                subject, resource, action, scope, effect = [p.strip() for p in policy.split(",")[1:]]
                assert subject == f"proj:{name}:{role['name']}" and scope == f"{name}/*" and effect == "allow", policy
                assert resource == "applications" and action in ("sync", "action/apps/Deployment/restart"), policy
        # Every app of the team is an Application of this project, deploying into the team's namespace only.
        for application in rendered_objects(rendered, "Application").values():
            if application["spec"]["project"] == name:
                assert application["spec"]["destination"]["namespace"] == name


def test_signed_commits_are_required_by_every_project(repo):
    _, answers, rendered = repo
    projects = rendered_objects(rendered, "AppProject")
    for name, project in projects.items():
        keys = project["spec"].get("signatureKeys")
        if answers["verify"] == "none" or name in ("default", "platform-charts"):
            assert keys is None and "sourceIntegrity" not in project["spec"], name
            continue
        # Argo CD 3.4 (chart 10.1.1) has signatureKeys; sourceIntegrity is Argo CD 3.5 and would be pruned.
        assert "sourceIntegrity" not in project["spec"], name
        # A key ID that is no OpenPGP key ID (16 or 40 hex digits) matches no signature: nothing syncs.
        assert keys == [{"keyID": "REPLACE-WITH-SIGNING-KEY-ID"}], name


def is_chart_application(application: dict) -> bool:
    return any("chart" in source for source in sources(application))


def test_charts_sync_in_a_project_without_signature_keys(repo):
    """Argo CD 3.4 verifies signatures of Git sources only: in a project with signatureKeys an Application with
    a chart from a Helm repository (or a `$values` ref source) gets "Target revision ... in Git is not signed"
    and never syncs (controller/state.go, verifyGnuPGSignature). So every chart Application is in a project
    without signature requirement, and every Application that syncs only directories of this repository is
    in a project with signature keys when the answers ask for signed commits."""
    _, answers, rendered = repo
    projects = rendered_objects(rendered, "AppProject")
    applications = rendered_objects(rendered, "Application")
    charts = {name for name, application in applications.items() if is_chart_application(application)}
    assert charts >= {"argo-cd", "metrics-server"}
    for name, application in applications.items():
        spec = projects[application["spec"]["project"]]["spec"]
        if name in charts:
            assert "signatureKeys" not in spec and "sourceIntegrity" not in spec, (name, application["spec"]["project"])
            continue
        assert all(source["repoURL"] == answers["git_url"] and "path" in source for source in sources(application)), name
        if answers["verify"] == "gpg":
            assert spec["signatureKeys"], (name, application["spec"]["project"])
    # The charts' project is theirs alone, and no Git-only Application is left without verification.
    for name, application in applications.items():
        assert (application["spec"]["project"] == "platform-charts") == (name in charts), name


def permits(patterns: list[str], value: str) -> bool:
    """Argo CD's glob match of a project's sourceRepos or destination namespaces."""
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def test_every_project_permits_its_applications_and_no_more(repo):
    """Each Application's project exists and lists every source repository and the destination of the
    Application; `platform-charts` lists exactly the charts' repositories (and this one, for `$values`), the
    namespaces they install into, and the cluster-wide kinds they ship, never a wildcard."""
    _, answers, rendered = repo
    projects = rendered_objects(rendered, "AppProject")
    applications = rendered_objects(rendered, "Application")
    for name, application in applications.items():
        spec = projects[application["spec"]["project"]]["spec"]
        for source in sources(application):
            assert permits(spec["sourceRepos"], source["repoURL"]), (name, source["repoURL"])
        destination = application["spec"]["destination"]
        assert any(d["server"] == destination["server"] and permits([d["namespace"]], destination["namespace"])
                   for d in spec["destinations"]), (name, destination)
    charts = [a for a in applications.values() if a["spec"]["project"] == "platform-charts"]
    spec = projects["platform-charts"]["spec"]
    repos = {source["repoURL"] for application in charts for source in sources(application)}
    assert sorted(spec["sourceRepos"]) == sorted(repos) and answers["git_url"] in repos
    # kube-prometheus-stack also puts Services for the control plane's metrics into kube-system.
    namespaces = {a["spec"]["destination"]["namespace"] for a in charts} | ({"kube-system"} if answers["monitoring"] else set())
    assert spec["destinations"] == [{"server": IN_CLUSTER, "namespace": n} for n in sorted(namespaces)]
    kinds = {(k["group"], k["kind"]) for k in spec["clusterResourceWhitelist"]}
    assert kinds == {("apiextensions.k8s.io", "CustomResourceDefinition"), ("rbac.authorization.k8s.io", "ClusterRole"),
                     ("rbac.authorization.k8s.io", "ClusterRoleBinding"), ("apiregistration.k8s.io", "APIService")} | (
        {("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
         ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration")} if answers["monitoring"] else set())
    # `platform` no longer fetches from Helm repositories: everything it syncs is this repository's.
    assert projects["platform"]["spec"]["sourceRepos"] == [answers["git_url"]]


def test_argocd_is_configured_from_this_repository(repo):
    path, answers, _ = repo
    directory = path / "infrastructure/controllers/argo-cd"
    values = yaml.safe_load((directory / "values.yaml").read_text())
    cm, rbac = values["configs"]["cm"], values["configs"]["rbac"]
    assert cm["users.anonymous.enabled"] == "false" and cm["exec.enabled"] == "false"
    # Local admin stays until SSO works; the comment next to it says when to turn it off.
    comments = " ".join(line.strip(" #") for line in (directory / "values.yaml").read_text().splitlines())
    assert cm["admin.enabled"] == "true" and "once oidc.config below is set" in comments.lower()
    assert "resource.customizations.health.argoproj.io_Application" in cm
    # Every authenticated user gets policy.default and a deny cannot take it away: it grants nothing.
    assert rbac["policy.default"] == "" and rbac["scopes"] == "[groups]"
    lines = [line.strip() for line in rbac["policy.csv"].splitlines() if line.strip() and not line.strip().startswith("#")]
    grants = {tuple(p.strip() for p in line.split(",")[1:]) for line in lines if line.startswith("g,")}
    policies = [tuple(p.strip() for p in line.split(",")[1:]) for line in lines if line.startswith("p,")]
    assert ("platform-admins", "role:admin") in grants
    for team in answers["teams"]:
        for group in team["groups"]:
            assert {(group, "role:viewer"), (group, f"role:team-{team['name']}")} <= grants
        mine = [p for p in policies if p[0] == f"role:team-{team['name']}"]
        assert mine and all(p[3] == f"{team['name']}/*" and p[2] == "get" for p in mine), mine
    # Nobody but the admins may change anything through the global policy.
    assert all(p[2] == "get" for p in policies)
    # The Prometheus CRDs do not exist at the first `helm install`: no chart-made ServiceMonitors.
    for component in ("controller", "server", "repoServer", "applicationSet"):
        assert values[component]["metrics"]["enabled"] is answers["monitoring"]
        assert "serviceMonitor" not in values[component]["metrics"]
    application = yaml.safe_load((directory / "application.yaml").read_text())
    chart, own = application["spec"]["sources"]
    assert (chart["chart"], chart["helm"]["releaseName"], application["spec"]["destination"]["namespace"]) == ("argo-cd", "argocd", "argocd")
    notifications = answers["monitoring"] and answers["alerts_to"] != "none"
    assert values["notifications"]["enabled"] is notifications
    assert (directory / "notifications-values.yaml").is_file() == notifications
    assert own["ref"] == "values" and not list(path.rglob("*.sops.yaml"))


def test_each_cluster_names_itself_in_alerts_and_notifications(repo):
    _, answers, rendered = repo
    builds = [r for r in rendered if r.entrypoint.rel.startswith("infrastructure/environments/")]
    named = set()
    for result in builds:
        apps = {o.data["metadata"]["name"]: o.data["spec"]["sources"][0]["helm"].get("valuesObject") for o in result.objects
                if o.data["kind"] == "Application"}
        # Argo CD's own URL, argocd.<cluster>.<argocd_domain>, names the cluster on every build.
        prefix, cluster, domain = apps["argo-cd"]["global"]["domain"].split(".", 2)
        assert (prefix, domain) == ("argocd", answers["argocd_domain"])
        named.add(cluster)
        if answers["monitoring"]:
            assert apps["kube-prometheus-stack"]["prometheus"]["prometheusSpec"]["externalLabels"]["cluster"] == cluster
        if answers["monitoring"] and answers["alerts_to"] != "none":
            assert apps["argo-cd"]["notifications"]["context"]["cluster"] == cluster
        else:
            assert "notifications" not in apps["argo-cd"]
    assert named == {c["name"] for c in answers["clusters"]}


@pytest.mark.parametrize(("status", "expected", "label"), [
    (None, "Progressing", None),  # not reconciled yet: the next wave waits
    ({"sync": {"status": "OutOfSync"}, "health": {"status": "Healthy"}}, "Progressing", None),
    ({"sync": {"status": "Synced"}, "health": {"status": "Degraded"}}, "Healthy", None),  # placeholders do not block
    ({"sync": {"status": "Synced"}, "health": {"status": "Progressing"}}, "Healthy", None),
    ({"sync": {"status": "OutOfSync"}, "operationState": {"phase": "Failed", "message": "CRD missing"}}, "Degraded", None),
    ({"sync": {"status": "Synced"}, "operationState": {"phase": "Error"}}, "Degraded", None),
    ({"sync": {"status": "Synced"}, "operationState": {"phase": "Succeeded"}}, "Healthy", None),
    # infra-controllers: synced is not enough, the chart Applications it created must count as healthy too.
    ({"sync": {"status": "Synced"}, "health": {"status": "Progressing"}}, "Progressing", "children"),
    ({"sync": {"status": "Synced"}, "health": {"status": "Degraded"}}, "Degraded", "children"),
    ({"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}, "Healthy", "children"),
    ({"sync": {"status": "OutOfSync"}, "health": {"status": "Healthy"}}, "Progressing", "children"),
])
def test_application_health_check_lets_the_waves_wait_for_syncs(repo, status, expected, label):
    """argocd-cm's Lua health check, run in a Lua interpreter the way Argo CD runs it (the object as `obj`)."""
    path, _, _ = repo
    values = yaml.safe_load((path / "infrastructure/controllers/argo-cd/values.yaml").read_text())
    script = values["configs"]["cm"]["resource.customizations.health.argoproj.io_Application"]
    lua = LuaRuntime()
    application = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **({"status": status} if status else {})}
    if label:
        application["metadata"] = {"name": "infra-controllers", "labels": {"gitops-forge.io/health": label}}
    lua.globals().obj = lua.table_from(application, recursive=True)
    result = lua.execute(script)
    assert result["status"] == expected
    assert isinstance(result["message"], str)


def test_comments_name_argocd_objects_and_what_teams_may_do(repo):
    """Review m10: no Flux object is named in an Argo CD repo's files, and teams are not told to annotate
    Applications they cannot change."""
    path, answers, _ = repo
    for file in (p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts and p.suffix in (".yaml", ".md")):
        text = file.read_text()
        assert "HelmRelease" not in text and "Kustomization `tenants`" not in text, file.relative_to(path)
    notifications = path / "infrastructure/controllers/argo-cd/notifications-values.yaml"
    if notifications.exists():
        comments = " ".join(line.strip(" #") for line in notifications.read_text().splitlines() if line.strip().startswith("#"))
        assert "A team can subscribe" not in comments
        assert "Teams cannot change their Applications" in comments and "asks for them in a pull request" in comments
