"""Argo CD ordering on a cluster (issue 12, review M2 and m8), for every engine=argocd variant: a model of
Argo CD's sync waves run over the rendered objects of each cluster.

The model follows gitops-engine's sync (pkg/sync/sync_context.go): an Application applies its objects wave by
wave; after every wave but the last it waits until each object of that wave is Healthy, fails when one is
Degraded, and keeps waiting while one is Progressing; after the last wave it is done without waiting. The
health of an Application seen by its parent is argocd-cm's Lua health check, run in a Lua interpreter on the
status the model gives the child. Charts are slow: a chart Application stays pending until `root` has nothing
else to do but wait, then it syncs or fails. An object of a kind whose CRD comes from a chart can be applied
only once the chart has synced (or, on an existing cluster, before the test starts)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import yaml
from lupa import LuaRuntime

from .test_generated_repos import VARIANTS
from .variants import generate

ARGOCD = sorted(name for name, answers in VARIANTS.items() if answers.get("engine") == "argocd")
# The API groups whose CRDs the platform's charts install. Argo CD's own CRDs exist from the bootstrap
# (`helm install`), before `root`.
CHART_GROUPS = {"kube-prometheus-stack": {"monitoring.coreos.com"}, "sealed-secrets": {"bitnami.com"}}
HEALTH_ORDER = ["Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"]


def group(obj: dict) -> str:
    return obj["apiVersion"].rpartition("/")[0] if "/" in obj["apiVersion"] else ""


def wave(obj: dict) -> int:
    return int((obj["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave", "0"))


def is_application(obj: dict) -> bool:
    return obj["kind"] == "Application" and group(obj) == "argoproj.io"


def chart_of(application: dict) -> str | None:
    spec = application["spec"]
    for source in [spec["source"]] if "source" in spec else spec["sources"]:
        if "chart" in source:
            return source["chart"]
    return None


@pytest.fixture(scope="module", params=ARGOCD)
def repo(request, tmp_path_factory):
    generated = generate(tmp_path_factory, VARIANTS[request.param])
    return generated.repo, generated.answers, generated.rendered


@pytest.fixture(scope="module")
def health_check(repo):
    """argocd-cm's health check for Applications: status dict -> (status, message)."""
    path, _, _ = repo
    values = yaml.safe_load((path / "infrastructure/controllers/argo-cd/values.yaml").read_text())
    script = values["configs"]["cm"]["resource.customizations.health.argoproj.io_Application"]
    lua = LuaRuntime()

    def check(application: dict, status: dict) -> str:
        obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
               "metadata": {"name": application["metadata"]["name"], "labels": application["metadata"].get("labels") or {}},
               "status": status}
        lua.globals().obj = lua.table_from(obj, recursive=True)
        return lua.execute(script)["status"]

    return check


@dataclass
class Cluster:
    """One cluster's rendered Applications and the state of its charts."""

    name: str
    rendered: list
    check: object
    outcomes: dict[str, str]  # chart -> "synced" | "failed", what it does once it has had time
    installed: set[str] = field(default_factory=set)  # API groups whose CRDs exist before the test
    charts: dict[str, str] = field(default_factory=dict)  # chart -> "pending" | "synced" | "failed"
    created: list[dict] = field(default_factory=list)

    def children(self, application: dict, parent_dir: str) -> list[dict]:
        """The objects an Application with a Git path source syncs: its rendered entrypoint."""
        path = application["spec"]["source"]["path"]
        name = application["metadata"]["name"]
        matches = [r for r in self.rendered if r.entrypoint.rel == path and r.entrypoint.mode == "argocd"
                   and r.entrypoint.declared_by.endswith(f"Application argocd/{name}")]
        # The build of this cluster's Application; clusters of one environment share one when it is the same.
        mine = [r for r in matches if r.entrypoint.declared_by.split(":")[0].rpartition("/")[0] == parent_dir]
        assert matches, (name, path, parent_dir)
        return [o.data for o in (mine or matches)[0].objects]

    def group_state(self, api_group: str) -> str:
        """"ready" when objects of the group can be applied, "failed" when they never can, else "retry"."""
        owners = [chart for chart, groups in CHART_GROUPS.items() if api_group in groups]
        if not owners or api_group in self.installed or any(self.charts.get(c) == "synced" for c in owners):
            return "ready"
        return "failed" if any(self.charts.get(c) == "failed" for c in owners) else "retry"

    def status(self, application: dict, parent_dir: str) -> dict:
        """The status Argo CD reports for an Application at this moment, creating what its sync creates."""
        chart = chart_of(application)
        if chart:
            state = self.charts.setdefault(chart, "pending")
            return {"pending": {"sync": {"status": "OutOfSync"}, "operationState": {"phase": "Running"}},
                    "synced": {"sync": {"status": "Synced"}, "operationState": {"phase": "Succeeded"}, "health": {"status": "Healthy"}},
                    "failed": {"sync": {"status": "OutOfSync"}, "operationState": {"phase": "Failed", "message": "chart failed"},
                               "health": {"status": "Degraded"}}}[state]
        return self.sync(self.children(application, parent_dir), application["spec"]["source"]["path"])

    def sync(self, objects: list[dict], directory: str, upto: int | None = None, gate: bool = True) -> dict:
        waves = sorted({wave(o) for o in objects if upto is None or wave(o) <= upto})
        phase, complete, healths = "Succeeded", False, []
        for index, number in enumerate(waves):
            in_wave = [o for o in objects if wave(o) == number]
            self.created.extend(in_wave)
            states = {self.group_state(group(o)) for o in in_wave}
            wave_health = [self.health(o, directory) for o in in_wave]
            healths += wave_health
            if "failed" in states:
                phase = "Failed"
                break
            if "retry" in states:
                phase = "Running"
                break
            if index == len(waves) - 1:
                complete = True
                break
            if gate and any(h == "Degraded" for h in wave_health):
                phase = "Failed"
                break
            if gate and any(h != "Healthy" for h in wave_health):
                phase = "Running"
                break
        worst = max(healths, key=HEALTH_ORDER.index) if healths else "Healthy"
        return {"sync": {"status": "Synced" if complete else "OutOfSync"}, "operationState": {"phase": phase}, "health": {"status": worst}}

    def health(self, obj: dict, directory: str) -> str:
        if is_application(obj) and obj["spec"].get("source", {}).get("path") == directory:
            return "Healthy"  # root managing itself
        if is_application(obj):
            return self.check(obj, self.status(obj, directory))
        return "Healthy"


@dataclass
class RootRun:
    reached: list[int]  # the waves root applied
    stopped: str | None  # why root stopped before its last wave, if it did
    before: dict[int, list[dict]]  # wave -> every object that existed when root applied it


def run_root(cluster: Cluster) -> RootRun:
    """`root`'s first sync on a new cluster: wave after wave, waiting as Argo CD does."""
    directory = f"clusters/{cluster.name}"
    [root_render] = [r for r in cluster.rendered if r.entrypoint.rel == directory and r.entrypoint.mode == "argocd"]
    objects = [o.data for o in root_render.objects]
    waves = sorted({wave(o) for o in objects})
    run = RootRun([], None, {})
    for index, number in enumerate(waves):
        cluster.created = []
        if index:
            cluster.sync(objects, directory, upto=waves[index - 1], gate=False)
        run.before[number] = list(cluster.created)
        run.reached.append(number)
        if index == len(waves) - 1:
            cluster.created = []
            cluster.sync(objects, directory, gate=False)
            return run
        while True:
            cluster.created = []
            cluster.sync(objects, directory, upto=number, gate=False)
            healths = [cluster.health(o, directory) for o in objects if wave(o) == number]
            if all(h == "Healthy" for h in healths):
                break
            if "Degraded" in healths:
                run.stopped = f"wave {number} failed"
                return run
            pending = [chart for chart, state in cluster.charts.items() if state == "pending"]
            if not pending:
                run.stopped = f"wave {number} waits for ever"
                return run
            for chart in pending:  # time passes: the charts finish
                cluster.charts[chart] = cluster.outcomes.get(chart, "synced")
    return run


def clusters(answers) -> list[str]:
    return [c["name"] for c in answers["clusters"]]


def root_objects(rendered, cluster: str) -> list[dict]:
    [result] = [r for r in rendered if r.entrypoint.rel == f"clusters/{cluster}" and r.entrypoint.mode == "argocd"]
    return [o.data for o in result.objects]


def key(obj: dict) -> tuple:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def test_every_chart_crd_exists_before_the_platform_objects_that_need_it(repo, health_check):
    """infra-configs (ServiceMonitors, PrometheusRules, SealedSecrets) and root's own SealedSecret are applied
    only after the chart that installs their CRD has synced, however slow the chart is."""
    _, answers, rendered = repo
    for name in clusters(answers):
        replay = Cluster(name, rendered, health_check, outcomes={})
        objects = root_objects(rendered, name)
        checked = 0
        for number in sorted({wave(o) for o in objects}):
            for obj in (o for o in objects if wave(o) == number):
                if obj["spec"].get("source", {}).get("path") == f"clusters/{name}":
                    continue  # root itself
                if is_application(obj) and obj["spec"]["project"] == "platform" and not chart_of(obj):
                    needed = {group(child) for child in replay.children(obj, f"clusters/{name}")}
                else:
                    needed = {group(obj)}
                for api_group in needed:
                    if any(api_group in groups for groups in CHART_GROUPS.values()):
                        checked += 1
                        assert replay.group_state(api_group) == "ready", (name, obj["metadata"]["name"], api_group, replay.charts)
            advance(replay, objects, number)
        assert checked, "some platform object needs a chart's CRD"


def advance(cluster: Cluster, objects: list[dict], number: int) -> None:
    """Let root pass wave `number` as Argo CD would: wait (charts finish) until its objects are Healthy."""
    directory = f"clusters/{cluster.name}"
    while True:
        cluster.sync(objects, directory, upto=number, gate=False)
        healths = [cluster.health(o, directory) for o in objects if wave(o) == number]
        if all(h == "Healthy" for h in healths):
            return
        pending = [chart for chart, state in cluster.charts.items() if state == "pending"]
        assert pending and "Degraded" not in healths, (number, healths, cluster.charts)
        for chart in pending:
            cluster.charts[chart] = cluster.outcomes.get(chart, "synced")


@pytest.mark.parametrize("existing", [False, True], ids=["new-cluster", "failed-upgrade"])
def test_a_failed_chart_does_not_hold_back_tenants_and_apps(repo, health_check, existing):
    """kube-prometheus-stack fails to install (or to upgrade, its CRDs already there): root still creates
    `tenants` and `apps`, both count as synced, and every app's Application exists."""
    _, answers, rendered = repo
    if not answers["monitoring"]:
        return  # no kube-prometheus-stack in this variant
    for name in clusters(answers):
        installed = {"monitoring.coreos.com", "bitnami.com"} if existing else set()
        cluster = Cluster(name, rendered, health_check, outcomes={"kube-prometheus-stack": "failed"}, installed=installed)
        run = run_root(cluster)
        waves = {o["metadata"]["name"]: wave(o) for o in root_objects(rendered, name) if is_application(o)}
        assert {waves["tenants"], waves["apps"]} <= set(run.reached), (run.reached, run.stopped)
        cluster.created = []
        root = root_objects(rendered, name)
        cluster.sync(root, f"clusters/{name}", upto=max(run.reached), gate=False)
        for application in (o for o in root if o["metadata"]["name"] in ("tenants", "apps")):
            assert cluster.health(application, f"clusters/{name}") == "Healthy", application["metadata"]["name"]
        created = {key(o) for o in cluster.created}
        env = next(c["environment"] for c in answers["clusters"] if c["name"] == name)
        for app in answers["apps"]:
            assert ("Application", "argocd", app["name"]) in created, (name, env, app["name"])


def test_a_team_application_never_comes_before_its_project_and_namespace(repo, health_check):
    """Every app's Application is created in a wave of root after its project and namespace exist. When
    `tenants` and `apps` sync in parallel (one commit adds a team and its app, outside root's waves), Argo CD
    does not sync an Application whose project does not exist (the controller's InvalidSpecError), and
    `tenants` creates a team's project in a wave after its namespace, quota, limits, policies and RBAC,
    waiting for them: once the project exists, so does everything the app's first sync needs."""
    _, answers, rendered = repo
    for name in clusters(answers):
        cluster = Cluster(name, rendered, health_check, outcomes={})
        run = run_root(cluster)
        assert run.stopped is None, run.stopped
        apps_wave = next(wave(o) for o in root_objects(rendered, name) if o["metadata"]["name"] == "apps")
        existing = {key(o) for o in run.before[apps_wave]}
        apps = [o for o in root_objects(rendered, name) if o["metadata"]["name"] == "apps"]
        for application in Cluster(name, rendered, health_check, {}).children(apps[0], f"clusters/{name}"):
            project, namespace = application["spec"]["project"], application["spec"]["destination"]["namespace"]
            assert ("AppProject", "argocd", project) in existing, (name, application["metadata"]["name"])
            assert ("Namespace", "", namespace) in existing, (name, application["metadata"]["name"])
            policy = application["spec"]["syncPolicy"]
            assert policy["retry"]["limit"] > 0 and "SkipDryRunOnMissingResource=true" in policy["syncOptions"]
        [tenants] = [o for o in root_objects(rendered, name) if o["metadata"]["name"] == "tenants"]
        children = cluster.children(tenants, f"clusters/{name}")
        projects = {o["metadata"]["name"]: o for o in children if o["kind"] == "AppProject"}
        for team in answers["teams"]:
            project = projects[team["name"]]
            mine = [o for o in children if o["kind"] != "AppProject"
                    and team["name"] in (o["metadata"].get("namespace"), o["metadata"]["name"] if o["kind"] == "Namespace" else None)]
            assert {"Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "RoleBinding"} <= {o["kind"] for o in mine}
            assert all(wave(o) < wave(project) for o in mine), (team["name"], [(o["kind"], wave(o)) for o in mine])


def test_every_application_comes_after_its_project(repo, health_check):
    """`root` creates each project before the wave whose Application creates Applications of that project:
    `platform-charts` before `infra-controllers` creates the charts, each team's before `apps` creates its
    apps. Argo CD does not sync an Application whose project does not exist. `root`'s own Applications are in
    `platform`, applied by hand before `root` (README.md, step 3)."""
    _, answers, rendered = repo
    for name in clusters(answers):
        cluster = Cluster(name, rendered, health_check, outcomes={})
        run = run_root(cluster)
        assert run.stopped is None, run.stopped
        objects = root_objects(rendered, name)
        assert {o["spec"]["project"] for o in objects if is_application(o)} == {"platform"}
        checked = set()
        for parent in (o for o in objects if is_application(o) and o["metadata"]["name"] != "root"):
            existing = {key(o) for o in run.before[wave(parent)]}
            for child in cluster.children(parent, f"clusters/{name}"):
                if is_application(child):
                    checked.add(child["spec"]["project"])
                    assert ("AppProject", "argocd", child["spec"]["project"]) in existing, (name, child["metadata"]["name"])
        assert "platform-charts" in checked and {t["name"] for t in answers["teams"] if any(a["team"] == t["name"] for a in answers["apps"])} <= checked


def test_configs_and_apps_skip_the_dry_run_of_missing_kinds(repo):
    _, answers, rendered = repo
    for result in rendered:
        for obj in (o.data for o in result.objects):
            if not is_application(obj):
                continue
            options = obj["spec"]["syncPolicy"].get("syncOptions", [])
            if obj["metadata"]["name"] == "infra-configs" or obj["spec"]["project"] not in ("platform", "platform-charts"):
                assert "SkipDryRunOnMissingResource=true" in options, obj["metadata"]["name"]


def test_chart_crds_are_not_cascade_deleted(repo):
    """Removing a chart's Application from Git must not uninstall the chart and its CRDs."""
    _, _, rendered = repo
    for result in rendered:
        for obj in (o.data for o in result.objects):
            if is_application(obj) and chart_of(obj):
                assert "resources-finalizer.argocd.argoproj.io" not in obj["metadata"].get("finalizers", []), obj["metadata"]["name"]
