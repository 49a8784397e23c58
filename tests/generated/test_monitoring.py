"""Monitoring and alerting in generated repos (issue 5): every PrometheusRule passes promtool, the Flux and
app alerts behave as their unit tests say, dashboards and rules use only metrics the stack exposes, every
alert links to its runbook, notifications follow `alerts_to`, and `monitoring: false` leaves nothing behind."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from generator.validate import validate_repo

from .variants import generate

BIN = Path(sys.executable).parent
PROMTOOL = shutil.which("promtool")
UNIT_TESTS = Path(__file__).parent / "promtool"
LONG = "a" * 36  # DNS labels at the 40-character limit with a suffix


def app(index: int, team: str) -> dict:
    return {"name": f"app-{index}", "team": team, "image": f"registry.example.com/shop/app-{index}:1.{index}.0", "port": 8080 + index}


VARIANTS = {
    # The default answers: GitHub host, alerts to commit statuses. The promtool unit tests use this repo.
    "defaults": {},
    "slack": {
        "environments": ["staging", "production"],
        "clusters": [{"name": "stg", "environment": "staging"}, {"name": "prd", "environment": "production"}],
        "teams": [{"name": "web", "groups": ["web-devs"]}, {"name": "data", "groups": ["data-devs"]}],
        "apps": [app(1, "web"), {**app(2, "data"), "health_path": "/livez"}],
        "alerts_to": "slack",
    },
    "msteams-gitlab": {
        "git_url": "ssh://git@gitlab.example.com:2222/platform/acme-platform.git",
        "default_branch": "release/1.x",
        "alerts_to": "msteams",
        "secrets": "sops",
    },
    "no-alerts-no-apps": {"alerts_to": "none", "apps": []},
    # Names at the length limit (line lengths), on a git host without commit statuses.
    "long-names-other-host": {
        "project_name": f"{LONG}-prj",
        "git_url": f"https://git.example.com/platform/{LONG}-prj.git",
        "environments": [f"{LONG}-env"],
        "clusters": [{"name": f"{LONG}-cls", "environment": f"{LONG}-env"}],
        "teams": [{"name": f"{LONG}-tea", "groups": ["devs"]}],
        "apps": [{**app(1, f"{LONG}-tea"), "name": f"{LONG}-app"}],
        "alerts_to": "slack",
    },
    "off": {"monitoring": False, "apps": [app(1, "dev-team")]},
}

# Every metric the rules and dashboards may read, by where the generated stack gets it. Anything else must be
# recorded by a rule of the repo itself. A new metric in a rule or dashboard belongs here only once it is
# certain the stack exposes it.
STACK_METRICS = {
    # kube-state-metrics custom resource state for Flux (kube-state-metrics-values.yaml)
    "gotk_resource_info",
    # Flux controllers, scraped by the PodMonitor flux-system (fluxcd/pkg runtime/metrics, controller-runtime)
    "gotk_reconcile_duration_seconds_bucket",
    "gotk_reconcile_duration_seconds_sum",
    "gotk_reconcile_duration_seconds_count",
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "workqueue_depth",
    # the Sealed Secrets controller, scraped by the PodMonitor sealed-secrets (pkg/controller/metrics.go)
    "sealed_secrets_controller_unseal_errors_total",
    # Prometheus, for every scrape target
    "up",
    # kube-state-metrics default collectors (kept on)
    "kube_deployment_status_replicas_available",
    "kube_deployment_spec_replicas",
    "kube_deployment_metadata_generation",
    "kube_pod_container_resource_limits",
    # cAdvisor through the kubelet (kept by the chart's metric relabelings)
    "container_memory_working_set_bytes",
    "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total",
    # the apps: HTTP middleware conventions that docs/monitoring.md asks for (podinfo, client libraries)
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_request_duration_seconds_count",
}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool", "inf", "nan"}
SEVERITIES = {"critical", "warning", "info"}


# --- rendering ----------------------------------------------------------------------------------------


def generate_variant(variant: str, tmp_path_factory, variants: dict[str, dict] | None = None) -> tuple[str, Path, dict, list[dict]]:
    """(variant, repo, answers, rendered objects of every entrypoint, each with its `_entrypoint`), for a
    variant of this module's VARIANTS or of `variants`."""
    generated = generate(tmp_path_factory, (variants or VARIANTS)[variant])
    objects = [{**o.data, "_entrypoint": r.entrypoint.rel} for r in generated.rendered for o in r.objects]
    return variant, generated.repo, generated.answers, objects


@pytest.fixture(params=sorted(VARIANTS))
def generated(request, tmp_path_factory) -> tuple[str, Path, dict, list[dict]]:
    return generate_variant(request.param, tmp_path_factory)


@pytest.fixture
def defaults_repo(tmp_path_factory):
    """The promtool unit tests are written against the default answers."""
    return generate_variant("defaults", tmp_path_factory)


@pytest.fixture
def monitoring_off(tmp_path_factory):
    return generate_variant("off", tmp_path_factory)


def unique(objects: list[dict], kind: str, api_prefix: str = "") -> dict[tuple[str, str], dict]:
    """Objects of a kind by (namespace, name): every cluster renders infrastructure/ once, so names repeat."""
    found = {}
    for obj in objects:
        if obj.get("kind") == kind and str(obj.get("apiVersion", "")).startswith(api_prefix):
            meta = obj.get("metadata") or {}
            found.setdefault((meta.get("namespace", ""), meta["name"]), obj)
    return found


def prometheus_rules(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return unique(objects, "PrometheusRule", "monitoring.coreos.com/")


def rules_of(objects: list[dict]):
    for (namespace, name), obj in prometheus_rules(objects).items():
        for group in obj["spec"]["groups"]:
            for rule in group["rules"]:
                yield f"{namespace}/{name}", rule


def github_anchor(heading: str) -> str:
    """GitHub's (and GitLab's) anchor for a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def expected_doc_url(answers: dict) -> str:
    host = answers["git_url"].split("/")[2].split("@")[-1]
    path = answers["git_url"].split("/", 3)[3].removesuffix(".git")
    web = f"https://{host if answers['git_url'].startswith('https://') else host.split(':')[0]}/{path}"
    if "github" in host:
        return f"{web}/blob/{answers['default_branch']}/docs/monitoring.md"
    if "gitlab" in host:
        return f"{web}/-/blob/{answers['default_branch']}/docs/monitoring.md"
    return "docs/monitoring.md"


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (Grafana's $variables allowed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        followed_by = text[match.end():].lstrip()[:1]
        if followed_by != "(" and match.group(0) not in PROMQL_KEYWORDS:
            names.add(match.group(0))
    return names


def dashboard_queries(dashboard: dict):
    """(where, PromQL) of every panel target, variable query and annotation of a Grafana dashboard."""
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            yield f"variable {variable['name']!r}", match.group(1) if match else query
    for annotation in dashboard["annotations"]["list"]:
        if annotation.get("expr"):
            yield f"annotation {annotation['name']!r}", annotation["expr"]


def dashboards(objects: list[dict]) -> dict[str, dict]:
    found = {}
    for obj in unique(objects, "ConfigMap").values():
        if (obj["metadata"].get("labels") or {}).get("grafana_dashboard") == "1":
            for key, text in obj["data"].items():
                found[key] = json.loads(text)
    return found


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool is required: install the Debian package `prometheus` (.ci/run does)"
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, cwd=cwd)

def assert_promtool_accepts(rules: dict[tuple[str, str], dict], tmp_path: Path) -> None:
    """`promtool check rules` on every PrometheusRule, one file each."""
    files = []
    for (namespace, name), obj in rules.items():
        files.append(tmp_path / f"{namespace}-{name}.rules.yaml")
        files[-1].write_text(yaml.safe_dump(obj["spec"], sort_keys=False))
    run = run_promtool("check", "rules", *files)
    assert run.returncode == 0, run.stdout + run.stderr


def assert_no_file_mentions(repo: Path, markers: tuple[str, ...], path_parts: tuple[str, ...]) -> None:
    """No file of the repo contains a marker (YAML comments aside) or has one of path_parts in its path."""
    for path in repo.rglob("*"):
        rel = path.relative_to(repo).as_posix()
        if not path.is_file() or rel.startswith(".git/") or rel in (".copier-answers.yml", "scripts/check-alert-rules.py"):
            continue
        text = path.read_text(errors="replace")
        if path.suffix in (".yaml", ".yml"):  # YAML comments may explain what is absent
            text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        found = [marker for marker in markers if marker in text]
        assert found == [], rel
        assert not [part for part in path_parts if part in rel], rel



# --- every variant ------------------------------------------------------------------------------------


def test_every_prometheus_rule_passes_promtool_check(generated, tmp_path):
    variant, _, answers, objects = generated
    rules = prometheus_rules(objects)
    if not answers["monitoring"]:
        assert rules == {}
        return
    expected = {("monitoring", "flux")} | {(a["team"], f"{a['name']}-{suffix}") for a in answers["apps"] for suffix in ("sli", "alerts")}
    if answers["secrets"] == "sealed-secrets":
        expected.add(("monitoring", "sealed-secrets"))
    assert set(rules) == expected
    assert_promtool_accepts(rules, tmp_path)


def test_every_alert_has_a_severity_and_a_runbook_in_docs(generated):
    _, repo, answers, objects = generated
    if not answers["monitoring"]:
        assert not (repo / "docs/monitoring.md").exists()
        return
    docs = (repo / "docs/monitoring.md").read_text()
    anchors = {github_anchor(line.lstrip("#")) for line in docs.splitlines() if re.match(r"#{1,6} ", line)}
    alerts = [(where, rule) for where, rule in rules_of(objects) if "alert" in rule]
    assert alerts
    for where, rule in alerts:
        assert rule["labels"]["severity"] in SEVERITIES, (where, rule["alert"])
        url, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert url == expected_doc_url(answers), (where, rule["alert"])
        assert anchor == rule["alert"].lower() and anchor in anchors, (where, rule["alert"])
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_rules_and_dashboards_read_only_metrics_the_stack_exposes(generated):
    _, _, answers, objects = generated
    recorded = {rule["record"] for _, rule in rules_of(objects) if "record" in rule}
    queries = [(where, rule["expr"]) for where, rule in rules_of(objects)]
    for name, dashboard in dashboards(objects).items():
        queries += [(f"{name} {where}", expr) for where, expr in dashboard_queries(dashboard)]
    if answers["monitoring"]:
        assert len(queries) > 20
    unknown = {(where, metric) for where, expr in queries for metric in metric_names(expr) - STACK_METRICS - recorded}
    assert unknown == set()


def test_dashboards_parse_and_load_into_grafana_untouched_by_flux(generated):
    _, repo, answers, objects = generated
    found = dashboards(objects)
    if not answers["monitoring"]:
        assert found == {}
        return
    assert set(found) == {"flux-reconciliation.json", "flux-deployment-history.json"}
    assert {d["uid"] for d in found.values()} == {"flux-reconciliation", "flux-deployment-history"}
    for path in (repo / "infrastructure/configs/monitoring/dashboards").glob("*.json"):
        json.loads(path.read_text())
    (configmap,) = [o for o in unique(objects, "ConfigMap").values() if o["metadata"]["name"] == "flux-grafana-dashboards"]
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/substitute"] == "disabled"
    # Flux substitutes variables in infra-configs; Grafana's own must survive the render.
    assert "${datasource}" in configmap["data"]["flux-reconciliation.json"]
    for dashboard in found.values():
        for panel in dashboard["panels"]:
            assert panel["type"] == "text" or panel["targets"], panel["title"]


def monitoring_files(repo: Path) -> list[Path]:
    """The files the monitoring part of the template writes."""
    patterns = (
        "infrastructure/controllers/kube-prometheus-stack/*",
        "infrastructure/configs/monitoring/*.yaml",
        "infrastructure/configs/flux-notifications/*",
        "apps/base/*/servicemonitor.yaml",
        "apps/base/*/prometheusrule.yaml",
        "apps/*/*/alerts.yaml",
    )
    return sorted(path for pattern in patterns for path in repo.glob(pattern))


def test_generated_repo_validates_strictly_and_monitoring_files_lint(generated, schema_locations):
    _, repo, answers, _ = generated
    report = validate_repo(repo, schema_locations=schema_locations)
    problems = [f"{f.entrypoint} {f.kind}/{f.name} {f.check}: {f.message}" for f in report.findings]
    problems += [f"no schema: {m.api_version} {m.kind}/{m.name}" for m in report.missing_schemas]
    assert problems == []
    files = monitoring_files(repo)
    assert bool(files) == answers["monitoring"]
    if files:  # the whole repo is linted by test_generated_repos.py; here also at the name-length limit
        run = subprocess.run([str(BIN / "yamllint"), "--strict", "-c", str(repo / ".yamllint"), *map(str, files)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr


# --- monitoring on --------------------------------------------------------------------------------------


def test_kube_prometheus_stack_release(generated):
    _, repo, answers, objects = generated
    releases = unique(objects, "HelmRelease")
    if not answers["monitoring"]:
        assert ("flux-system", "kube-prometheus-stack") not in releases
        return
    release = releases[("flux-system", "kube-prometheus-stack")]["spec"]
    # The chart as an OCI artifact (review m6), pinned.
    assert release["chartRef"] == {"kind": "OCIRepository", "name": "kube-prometheus-stack"}
    chart = unique(objects, "OCIRepository")[("flux-system", "kube-prometheus-stack")]["spec"]
    assert chart["url"] == "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["ref"]["tag"]), "pin an exact chart version"
    assert ("flux-system", "prometheus-community") not in unique(objects, "HelmRepository")
    assert (release["install"]["crds"], release["upgrade"]["crds"]) == ("Create", "CreateReplace")
    values = release["values"]
    assert values["alertmanager"]["enabled"] is True
    assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert "adminPassword" not in values["grafana"]
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] and spec["storageSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False, kind
    # kube-state-metrics: Flux custom resource state added, default collectors kept.
    (configmap,) = [o for o in unique(objects, "ConfigMap").values() if o["metadata"]["name"] == release["valuesFrom"][0]["name"]]
    ksm = yaml.safe_load(configmap["data"][release["valuesFrom"][0]["valuesKey"]])["kube-state-metrics"]
    assert "collectors" not in ksm and "--custom-resource-state-only=true" not in str(ksm.get("extraArgs", ""))
    resources = ksm["customResourceState"]["config"]["spec"]["resources"]
    kinds = {r["groupVersionKind"]["kind"] for r in resources}
    assert {"Kustomization", "HelmRelease", "GitRepository", "HelmRepository", "OCIRepository"} <= kinds
    for resource in resources:
        assert resource["metricNamePrefix"] == "gotk" and resource["metrics"][0]["name"] == "resource_info"
        assert {"exported_namespace", "ready", "suspended"} <= set(resource["metrics"][0]["labelsFromPath"])
    # kube-state-metrics may list and watch exactly the kinds it exports.
    granted = {(group, r) for rule in ksm["rbac"]["extraRules"] for group in rule["apiGroups"] for r in rule["resources"]}
    for resource in resources:
        kind, group = resource["groupVersionKind"]["kind"].lower(), resource["groupVersionKind"]["group"]
        assert (group, kind[:-1] + "ies" if kind.endswith("y") else kind + "s") in granted, kind
    assert {verb for rule in ksm["rbac"]["extraRules"] for verb in rule["verbs"]} == {"list", "watch"}
    # Pod Security: restricted for the stack, privileged only where node-exporter runs.
    namespaces = unique(objects, "Namespace")
    assert namespaces[("", "monitoring")]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespaces[("", "monitoring-node-exporter")]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert values["prometheus-node-exporter"]["namespaceOverride"] == "monitoring-node-exporter"
    assert "monitoring-node-exporter" in (repo / "docs/monitoring.md").read_text()


def test_flux_is_scraped_and_apps_are_monitored(generated):
    _, _, answers, objects = generated
    monitors = unique(objects, "ServiceMonitor")
    if not answers["monitoring"]:
        assert monitors == {} and unique(objects, "PodMonitor") == {}
        return
    podmonitors = unique(objects, "PodMonitor")
    podmonitor = podmonitors.pop(("flux-system", "flux-system"))
    # Prometheus ignores namespace selectors: each monitor lives where its pods run.
    assert "namespaceSelector" not in podmonitor["spec"]
    assert podmonitor["spec"]["podMetricsEndpoints"][0]["port"] == "http-prom"
    # The Sealed Secrets controller's metrics port (chart: containerPorts.metrics, named `metrics`; the
    # chart's NetworkPolicy admits it), in its namespace, with the chart's name label.
    if answers["secrets"] == "sealed-secrets":
        release = unique(objects, "HelmRelease")[("flux-system", "sealed-secrets")]["spec"]
        sealed = podmonitors.pop((release["targetNamespace"], "sealed-secrets"))["spec"]
        assert "namespaceSelector" not in sealed
        assert sealed["selector"]["matchLabels"] == {"app.kubernetes.io/name": "sealed-secrets"}
        assert sealed["podMetricsEndpoints"][0]["port"] == "metrics"
        assert release["values"]["networkPolicy"]["enabled"] is True
    assert podmonitors == {}
    services = unique(objects, "Service")
    policies = unique(objects, "NetworkPolicy")
    assert set(monitors) == {(a["team"], a["name"]) for a in answers["apps"]}
    for app_answer in answers["apps"]:
        key = (app_answer["team"], app_answer["name"])
        monitor, service = monitors[key]["spec"], services[key]
        assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert monitor["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
        scrape = [
            rule for rule in policies[key]["spec"]["ingress"]
            for peer in rule["from"]
            if (peer.get("namespaceSelector") or {}).get("matchLabels") == {"kubernetes.io/metadata.name": "monitoring"}
        ]
        assert scrape and {"port": monitor["endpoints"][0]["port"], "protocol": "TCP"} in scrape[0]["ports"]
        # Thresholds per environment: production pages, the environments before it do not.
        severities = {}
        for obj in objects:
            if obj.get("kind") == "PrometheusRule" and obj["metadata"]["name"] == f"{app_answer['name']}-alerts":
                env = obj["_entrypoint"].split("/")[1]
                rules = {r["alert"]: r for g in obj["spec"]["groups"] for r in g["rules"]}
                severities[env] = rules["AppErrorBudgetBurnFast"]["labels"]["severity"]
                assert rules["AppErrorBudgetBurnFast"]["labels"]["team"] == app_answer["team"]
        environments = answers["environments"]
        assert set(severities) == {c["environment"] for c in answers["clusters"]}
        assert severities[environments[-1]] == "critical"
        assert all(severities[env] == "warning" for env in severities if env != environments[-1])


def test_notifications_follow_alerts_to(generated):
    _, _, answers, objects = generated
    providers = unique(objects, "Provider", "notification.toolkit.fluxcd.io/v1beta3")
    alerts = unique(objects, "Alert", "notification.toolkit.fluxcd.io/v1beta3")
    routes = unique(objects, "AlertmanagerConfig", "monitoring.coreos.com/")
    channel = answers["alerts_to"] if answers["monitoring"] else "none"
    host = answers["git_url"].split("/")[2].split("@")[-1].split(":")[0]
    commit_status = "github" if "github" in host else "gitlab" if "gitlab" in host else None
    expected = {}
    if channel in ("slack", "msteams"):
        expected[channel] = channel
    if channel != "none" and commit_status:
        expected["commit-status"] = commit_status
    assert {name: p["spec"]["type"] for (_, name), p in providers.items()} == expected
    assert {name for _, name in alerts} == set(expected)
    pager = {"alerts-to-pager", "watchdog-heartbeat"} if answers["pager"] != "none" else set()
    assert {name for _, name in routes} == ({f"alerts-to-{channel}"} if channel in ("slack", "msteams") else set()) | pager
    for (namespace, name), alert in alerts.items():
        assert (namespace, alert["spec"]["providerRef"]["name"]) in providers
        assert alert["spec"]["eventSeverity"] in ("info", "error") and "summary" not in alert["spec"]
        # postBuild substitution named the cluster.
        assert alert["spec"]["eventMetadata"]["cluster"] in {c["name"] for c in answers["clusters"]}
    if "commit-status" in expected:
        provider = providers[("flux-system", "commit-status")]["spec"]
        assert provider["address"] == expected_doc_url(answers).split("/-/blob/")[0].split("/blob/")[0]
        assert {s["kind"] for s in alerts[("flux-system", "commit-status")]["spec"]["eventSources"]} == {"Kustomization"}
    for provider in providers.values():
        assert provider["spec"]["secretRef"]["name"]  # credentials only ever come from a Secret


def secret_references(objects: list[dict]) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret the monitoring objects read."""
    refs = set()
    for (namespace, _), provider in unique(objects, "Provider", "notification.toolkit.fluxcd.io/").items():
        refs.add((namespace, provider["spec"]["secretRef"]["name"]))
    for (namespace, _), route in unique(objects, "AlertmanagerConfig", "monitoring.coreos.com/").items():
        for receiver in route["spec"]["receivers"]:
            for config in receiver.get("slackConfigs", []):
                refs.add((namespace, config["apiURL"]["name"]))
            for config in receiver.get("msteamsv2Configs", []):
                refs.add((namespace, config["webhookURL"]["name"]))
            for config in receiver.get("pagerdutyConfigs", []):
                refs.add((namespace, config["routingKey"]["name"]))
            for config in receiver.get("opsgenieConfigs", []):
                refs.add((namespace, config["apiKey"]["name"]))
            for config in receiver.get("webhookConfigs", []):
                refs.add((namespace, config["urlSecret"]["name"]))
    for (namespace, name), release in unique(objects, "HelmRelease").items():
        if name == "kube-prometheus-stack":
            refs.add((release["spec"]["targetNamespace"], release["spec"]["values"]["grafana"]["admin"]["existingSecret"]))
    return refs


def test_every_secret_they_read_has_a_stub_in_every_environment(generated):
    _, repo, answers, objects = generated
    refs = secret_references(objects)
    if not answers["monitoring"]:
        assert refs == set() and not (repo / "infrastructure/configs/monitoring").exists()
        return
    assert ("monitoring", "grafana-admin") in refs
    sealed = answers["secrets"] == "sealed-secrets"
    for env in answers["environments"]:
        directory = repo / "infrastructure/configs/monitoring/secrets" / env
        stubs = {}
        for path in directory.glob("*.yaml"):
            doc = yaml.safe_load(path.read_text())
            if doc["kind"] != "Component":
                stubs[(doc["metadata"]["namespace"], doc["metadata"]["name"])] = (path.name, doc)
        assert set(stubs) == refs, env
        component = yaml.safe_load((directory / "kustomization.yaml").read_text())
        for (path_name, doc) in stubs.values():
            if sealed:  # a placeholder SealedSecret is applied and simply not unsealed
                assert doc["kind"] == "SealedSecret" and path_name in component["resources"]
                assert set(doc["spec"]["encryptedData"]) and doc["spec"]["template"]["metadata"]["name"] == doc["metadata"]["name"]
            else:  # a placeholder SOPS file would stop Flux: it stays unlisted until encrypted
                assert doc["kind"] == "Secret" and "sops" in doc and path_name.endswith(".sops.yaml")
                assert path_name not in component["resources"]
    # Each cluster adds its own environment's Secrets, before the chart that reads them.
    for cluster in answers["clusters"]:
        docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all((repo / "clusters" / cluster["name"] / "infrastructure.yaml").read_text())}
        assert "components" not in docs["infra-configs"]["spec"]
        assert docs["monitoring-secrets"]["spec"]["path"] == "./infrastructure/configs/monitoring/secrets"
        assert docs["monitoring-secrets"]["spec"]["components"] == [f"./{cluster['environment']}"]
        assert {"name": "monitoring-secrets"} in docs["monitoring-controllers"]["spec"]["dependsOn"]
    if sealed:
        rendered = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in unique(objects, "SealedSecret").values()}
        assert refs <= rendered


def test_promtool_unit_tests_for_flux_and_app_slo_alerts(defaults_repo, tmp_path):
    _, _, _, objects = defaults_repo
    rules = {}
    for obj in objects:
        if obj.get("kind") == "PrometheusRule" and obj["_entrypoint"].startswith(("infrastructure/configs", "apps/prod/")):
            rules[obj["metadata"]["name"]] = obj["spec"]
    for name, file in (("flux", "flux"), ("sealed-secrets", "sealed-secrets"), ("podinfo-sli", "podinfo-sli"), ("podinfo-alerts", "podinfo-alerts")):
        (tmp_path / f"{file}.rules.yaml").write_text(yaml.safe_dump(rules[name], sort_keys=False))
    tests = sorted(UNIT_TESTS.glob("*_test.yaml"))
    assert {t.name for t in tests} >= {"flux_test.yaml", "sealed_secrets_test.yaml", "app_slo_test.yaml"}
    for test in tests:
        shutil.copy(test, tmp_path / test.name)
    run = run_promtool("test", "rules", *[t.name for t in tests], cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


# --- monitoring off --------------------------------------------------------------------------------------

# Text that only the monitoring part of the template writes.
MONITORING_MARKERS = (
    "monitoring.coreos.com",
    "notification.toolkit.fluxcd.io",
    "kube-prometheus-stack",
    "gotk_",
    "docs/monitoring.md",
    "kubernetes.io/metadata.name: monitoring",
    "postBuild",
    "cluster_name",
)


def test_monitoring_off_leaves_nothing_behind(monitoring_off):
    _, repo, answers, objects = monitoring_off
    assert answers["monitoring"] is False and answers["alerts_to"] == "none"
    for obj in objects:
        api = str(obj.get("apiVersion", ""))
        assert not api.startswith(("monitoring.coreos.com/", "notification.toolkit.fluxcd.io/")), obj["kind"]
        assert (obj.get("metadata") or {}).get("namespace") not in ("monitoring", "monitoring-node-exporter")
        assert (obj["kind"], obj["metadata"]["name"]) not in {("Namespace", "monitoring"), ("HelmRelease", "kube-prometheus-stack")}
    # The CI's rule checker is generic and has nothing to check.
    run = subprocess.run([sys.executable, str(repo / "scripts/check-alert-rules.py"), str(repo)], capture_output=True, text=True)
    assert run.returncode == 0 and "No PrometheusRule found" in run.stdout, run.stdout + run.stderr
    assert_no_file_mentions(repo, MONITORING_MARKERS, ("monitoring", "flux-notifications", "servicemonitor"))
    # Flux ordering is untouched: nothing waits for monitoring.
    for cluster in answers["clusters"]:
        for name in ("infrastructure.yaml", "tenants.yaml", "apps.yaml"):
            for doc in yaml.safe_load_all((repo / "clusters" / cluster["name"] / name).read_text()):
                assert {d["name"] for d in doc["spec"].get("dependsOn", [])} <= {"infra-controllers", "infra-configs", "tenants"}
