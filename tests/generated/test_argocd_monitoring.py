"""Monitoring and notifications with the Argo CD engine (issue 6): Argo CD is scraped through the metrics
Services the argo-cd chart creates, its alerts pass promtool and behave as their unit tests say, the
dashboards read only metrics Argo CD and the stack export, notifications-values.yaml is consistent (triggers,
templates, services, secret keys) and matches `alerts_to`, the credentials have sealed stubs in every
environment, nothing of Flux's monitoring is left, and `monitoring: false` leaves none of it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from generator.answers import commit_status_type
from generator.validate import validate_repo

from .test_monitoring import (
    BIN,
    SEVERITIES,
    STACK_METRICS,
    assert_no_file_mentions,
    assert_promtool_accepts,
    dashboard_queries,
    dashboards,
    expected_doc_url,
    generate_variant,
    github_anchor,
    metric_names,
    prometheus_rules,
    rules_of,
    run_promtool,
    unique,
)

UNIT_TESTS = Path(__file__).parent / "promtool" / "argocd"
LONG = "a" * 36  # DNS labels at the 40-character limit with a suffix


def app(index: int, team: str) -> dict:
    return {"name": f"app-{index}", "team": team, "image": f"registry.example.com/shop/app-{index}:1.{index}.0", "port": 8080 + index}


VARIANTS = {
    # The default answers with Argo CD: GitHub host, alerts as commit statuses (GitHub App). The promtool
    # unit tests use this repo.
    "defaults": {"engine": "argocd"},
    # Slack and GitHub commit statuses, two environments, two teams.
    "slack": {
        "engine": "argocd",
        "environments": ["staging", "production"],
        "clusters": [{"name": "stg", "environment": "staging"}, {"name": "prd", "environment": "production"}],
        "teams": [{"name": "web", "groups": ["web-devs"]}, {"name": "data", "groups": ["data-devs"]}],
        "apps": [app(1, "web"), {**app(2, "data"), "health_path": "/livez"}],
        "alerts_to": "slack",
    },
    # Teams and GitLab commit statuses (a webhook to GitLab's API), on an SSH URL with a port.
    "msteams-gitlab": {
        "engine": "argocd",
        "git_url": "ssh://git@gitlab.example.com:2222/platform/acme-platform.git",
        "default_branch": "release/1.x",
        "alerts_to": "msteams",
    },
    # Commit statuses only, on GitHub Enterprise Server.
    "github-enterprise": {
        "engine": "argocd",
        "git_url": "https://github.example.com/platform/acme-platform.git",
        "alerts_to": "github-status",
    },
    "no-alerts": {"engine": "argocd", "alerts_to": "none"},
    # Names at the length limit (line lengths), Slack on a git host without commit statuses.
    "long-names-other-host": {
        "engine": "argocd",
        "project_name": f"{LONG}-prj",
        "git_url": f"https://git.example.com/platform/{LONG}-prj.git",
        "environments": [f"{LONG}-env"],
        "clusters": [{"name": f"{LONG}-cls", "environment": f"{LONG}-env"}],
        "teams": [{"name": f"{LONG}-tea", "groups": ["devs"]}],
        "apps": [{**app(1, f"{LONG}-tea"), "name": f"{LONG}-app"}],
        "alerts_to": "slack",
    },
    "off": {"engine": "argocd", "monitoring": False, "apps": [app(1, "dev-team")]},
}

# What Argo CD 3.4 exports (the argo-cd chart 10.1.1 runs v3.4.4). Application controller:
# controller/metrics/metrics.go and clustercollector.go, plus controller-runtime's work queues; repo server:
# reposerver/metrics/metrics.go; API server: server/metrics/metrics.go; notifications controller:
# notifications-engine pkg/controller/metrics.go (prefix argocd). Histograms are listed by their series.
ARGOCD_METRICS = {
    "argocd_app_info",
    "argocd_app_sync_total",
    "argocd_app_reconcile_bucket",
    "argocd_app_reconcile_count",
    "argocd_app_reconcile_sum",
    "argocd_app_k8s_request_total",
    "argocd_cluster_connection_status",
    "argocd_git_request_total",
    "argocd_git_request_duration_seconds_bucket",
    "argocd_git_fetch_fail_total",
    "argocd_git_lsremote_fail_total",
    "argocd_repo_pending_request_total",
    "argocd_redis_request_total",
    "argocd_info",
    "argocd_notifications_deliveries_total",
    "argocd_notifications_trigger_eval_total",
    # kube-state-metrics default collector: the application controller is a StatefulSet
    "kube_statefulset_status_replicas_ready",
    # cAdvisor through the kubelet (kept by the chart's metric relabelings)
    "container_cpu_usage_seconds_total",
}

# The metrics Services of the argo-cd chart 10.1.1 with release name `argocd` (nameOverride `argocd`, so
# app.kubernetes.io/name is "argocd-<name>"), as its templates define them when <component>.metrics.enabled:
#   templates/argocd-application-controller/metrics.yaml   name "metrics", component application-controller
#   templates/argocd-server/metrics.yaml                    name "server-metrics", component server
#   templates/argocd-repo-server/metrics.yaml               name "repo-server-metrics", component repo-server
#   templates/argocd-applicationset/metrics.yaml            name "metrics", component applicationset-controller
#   templates/argocd-notifications/metrics.yaml             name "metrics", component notifications-controller
# Labels from templates/_common.tpl ("argo-cd.labels" / "argo-cd.selectorLabels"); every port is named by
# <component>.metrics.service.portName, default http-metrics (values.yaml).
CHART_METRICS_SERVICES = {
    "argocd-application-controller-metrics": {
        "app.kubernetes.io/name": "argocd-metrics",
        "app.kubernetes.io/component": "application-controller",
    },
    "argocd-server-metrics": {
        "app.kubernetes.io/name": "argocd-server-metrics",
        "app.kubernetes.io/component": "server",
    },
    "argocd-repo-server-metrics": {
        "app.kubernetes.io/name": "argocd-repo-server-metrics",
        "app.kubernetes.io/component": "repo-server",
    },
    "argocd-applicationset-controller-metrics": {
        "app.kubernetes.io/name": "argocd-metrics",
        "app.kubernetes.io/component": "applicationset-controller",
    },
    "argocd-notifications-controller-metrics": {
        "app.kubernetes.io/name": "argocd-metrics",
        "app.kubernetes.io/component": "notifications-controller",
    },
}
CHART_COMMON_LABELS = {"app.kubernetes.io/instance": "argocd", "app.kubernetes.io/part-of": "argocd", "app.kubernetes.io/managed-by": "Helm"}
CHART_METRICS_PORT = "http-metrics"
# values.yaml key of each component whose metrics Service the chart creates.
VALUES_KEYS = {
    "argocd-application-controller-metrics": "controller",
    "argocd-server-metrics": "server",
    "argocd-repo-server-metrics": "repoServer",
    "argocd-applicationset-controller-metrics": "applicationSet",
    "argocd-notifications-controller-metrics": "notifications",
}

ALERTS = {"ArgoCdAppOutOfSync", "ArgoCdAppUnhealthy", "ArgoCdAppSyncFailed", "ArgoCdAppAutoSyncDisabled", "ArgoCdComponentDown"}
TRIGGERS = {"on-sync-failed", "on-health-degraded", "on-deployed", "on-sync-status-unknown"}
# Template sections a notifications service reads (notifications-engine pkg/services): the message is shared.
SECTIONS = {"slack": "slack", "teams-workflows": "teams-workflows", "github": "github", "webhook": "webhook"}
SECRET_REF = re.compile(r"\$([\w-]+)")


# --- rendering ----------------------------------------------------------------------------------------


def _generate(variant: str, tmp_path_factory) -> tuple[str, Path, dict, list[dict]]:
    return generate_variant(variant, tmp_path_factory, VARIANTS)


@pytest.fixture(params=sorted(VARIANTS))
def generated(request, tmp_path_factory) -> tuple[str, Path, dict, list[dict]]:
    return _generate(request.param, tmp_path_factory)


@pytest.fixture(params=sorted(v for v in VARIANTS if VARIANTS[v].get("monitoring", True)))
def monitored(request, tmp_path_factory) -> tuple[str, Path, dict, list[dict]]:
    return _generate(request.param, tmp_path_factory)


@pytest.fixture(params=sorted(v for v in VARIANTS if VARIANTS[v].get("monitoring", True) and VARIANTS[v].get("alerts_to") != "none"))
def notifying(request, tmp_path_factory) -> tuple[str, Path, dict, list[dict]]:
    return _generate(request.param, tmp_path_factory)


def notify(answers: dict) -> bool:
    return answers["monitoring"] and answers["alerts_to"] != "none"


def commit_status_provider(answers: dict) -> str:
    return commit_status_type(answers["git_url"]) or ""


def argocd_values(repo: Path) -> dict:
    return yaml.safe_load((repo / "infrastructure/controllers/argo-cd/values.yaml").read_text())


# --- alerts ---------------------------------------------------------------------------------------------


def test_the_variants_use_argocd(generated):
    _, _, answers, objects = generated
    assert answers["engine"] == "argocd"
    assert unique(objects, "Application", "argoproj.io/")


def test_every_prometheus_rule_passes_promtool_check(monitored, tmp_path):
    _, _, answers, objects = monitored
    rules = prometheus_rules(objects)
    expected = {("monitoring", "argocd")} | {(a["team"], f"{a['name']}-{suffix}") for a in answers["apps"] for suffix in ("sli", "alerts")}
    assert set(rules) == expected
    assert_promtool_accepts(rules, tmp_path)


def test_argocd_alerts_have_a_severity_and_a_runbook(monitored):
    _, _, answers, objects = monitored
    rule = prometheus_rules(objects)[("monitoring", "argocd")]
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r}
    assert set(alerts) == ALERTS | ({"ArgoCdNotificationDeliveryFailed"} if notify(answers) else set())
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in SEVERITIES, name
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name
        assert alert["annotations"]["runbook_url"] == f"{expected_doc_url(answers)}#{name.lower()}", name
    assert alerts["ArgoCdComponentDown"]["labels"]["severity"] == "critical"


def test_every_argocd_alert_has_a_runbook_section_in_docs(monitored):
    """docs/monitoring.md has a heading for every alert, which its runbook_url points at."""
    _, repo, _, objects = monitored
    docs = (repo / "docs/monitoring.md").read_text()
    anchors = {github_anchor(line.lstrip("#")) for line in docs.splitlines() if re.match(r"#{1,6} ", line)}
    missing = sorted(rule["alert"] for _, rule in rules_of(objects) if "alert" in rule and rule["alert"].lower() not in anchors)
    assert missing == []


def test_rules_and_dashboards_read_only_metrics_argocd_and_the_stack_export(generated):
    _, _, answers, objects = generated
    recorded = {rule["record"] for _, rule in rules_of(objects) if "record" in rule}
    queries = [(where, rule["expr"]) for where, rule in rules_of(objects)]
    for name, dashboard in dashboards(objects).items():
        queries += [(f"{name} {where}", expr) for where, expr in dashboard_queries(dashboard)]
    if answers["monitoring"]:
        assert len(queries) > 30
    flux_only = {m for m in STACK_METRICS if m.startswith(("gotk_", "controller_runtime_"))}
    known = (STACK_METRICS - flux_only) | ARGOCD_METRICS | recorded
    unknown = {(where, metric) for where, expr in queries for metric in metric_names(expr) - known}
    assert unknown == set()


def test_promtool_unit_tests_for_argocd_alerts(tmp_path, tmp_path_factory):
    _, _, _, objects = _generate("defaults", tmp_path_factory)
    (tmp_path / "argocd.rules.yaml").write_text(yaml.safe_dump(prometheus_rules(objects)[("monitoring", "argocd")]["spec"], sort_keys=False))
    tests = sorted(UNIT_TESTS.glob("*_test.yaml"))
    assert [t.name for t in tests] == ["argocd_test.yaml"]
    for test in tests:
        shutil.copy(test, tmp_path / test.name)
    text = (tmp_path / "argocd_test.yaml").read_text()
    assert "alertname: ArgoCdAppOutOfSync" in text and "alertname: ArgoCdAppSyncFailed" in text
    run = run_promtool("test", "rules", *[t.name for t in tests], cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


# --- scraping and dashboards ------------------------------------------------------------------------------


def test_servicemonitors_select_the_charts_metrics_services(generated):
    _, repo, answers, objects = generated
    # In argocd itself: Prometheus ignores namespace selectors, so a monitor searches its own namespace.
    monitors = {name: m for (namespace, name), m in unique(objects, "ServiceMonitor").items() if namespace == "argocd"}
    values = argocd_values(repo)
    if not answers["monitoring"]:
        assert monitors == {}
        for key in ("controller", "server", "repoServer", "applicationSet"):
            assert values[key]["metrics"]["enabled"] is False
        return
    expected_services = set(CHART_METRICS_SERVICES) - (set() if notify(answers) else {"argocd-notifications-controller-metrics"})
    # The chart creates exactly these metrics Services (values.yaml turns them on) ...
    for service in CHART_METRICS_SERVICES:
        metrics = values[VALUES_KEYS[service]].get("metrics", {})
        assert (metrics.get("enabled") is True) == (service in expected_services), service
        assert "serviceMonitor" not in metrics or not metrics["serviceMonitor"].get("enabled"), service
        assert metrics.get("service", {}).get("portName", CHART_METRICS_PORT) == CHART_METRICS_PORT, service
    # ... and each ServiceMonitor selects exactly one of them, on its metrics port.
    selected = {}
    for name, monitor in monitors.items():
        spec = monitor["spec"]
        assert "namespaceSelector" not in spec, name
        labels = spec["selector"]["matchLabels"]
        matches = [s for s, own in CHART_METRICS_SERVICES.items() if labels.items() <= {**CHART_COMMON_LABELS, **own}.items()]
        assert len(matches) == 1, (name, labels, matches)
        assert labels["app.kubernetes.io/instance"] == "argocd", name
        assert [e["port"] for e in spec["endpoints"]] == [CHART_METRICS_PORT], name
        assert spec["endpoints"][0]["interval"] == "30s"
        selected[matches[0]] = name
    assert set(selected) == expected_services
    assert len(selected) == len(monitors)


def test_dashboards_parse_and_load_into_grafana(generated):
    _, repo, answers, objects = generated
    found = dashboards(objects)
    if not answers["monitoring"]:
        assert found == {}
        return
    assert set(found) == {"argocd-applications.json", "argocd-components.json"}
    assert {d["uid"] for d in found.values()} == {"argocd-applications", "argocd-components"}
    for path in (repo / "infrastructure/configs/monitoring/dashboards").glob("*.json"):
        json.loads(path.read_text())
    assert sorted(p.name for p in (repo / "infrastructure/configs/monitoring/dashboards").iterdir()) == sorted(found)
    (configmap,) = [o for o in unique(objects, "ConfigMap").values() if o["metadata"]["name"] == "argocd-grafana-dashboards"]
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    # Argo CD substitutes nothing: Grafana's own variables arrive as written, with no Flux annotation needed.
    assert "${datasource}" in configmap["data"]["argocd-applications.json"]
    assert not any(k.startswith("kustomize.toolkit.fluxcd.io") for k in (configmap["metadata"].get("annotations") or {}))
    for name, dashboard in found.items():
        assert dashboard["templating"]["list"][0]["type"] == "datasource", name
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in dashboard["panels"]:
            assert panel["type"] == "text" or panel["targets"], (name, panel["title"])
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == "${datasource}", (name, panel["title"])


def test_no_flux_monitoring_is_left(generated):
    _, repo, answers, objects = generated
    assert unique(objects, "PodMonitor") == {}
    for obj in objects:
        assert not str(obj.get("apiVersion", "")).startswith("notification.toolkit.fluxcd.io/"), (obj["kind"], obj["metadata"]["name"])
    files = [p for p in (repo / "infrastructure").rglob("*") if p.is_file()]
    for path in files:
        text = path.read_text()
        assert "gotk_" not in text and "${cluster_name}" not in text and "kustomize.toolkit.fluxcd.io" not in text, path
        assert "flux" not in path.name, path


# --- notifications ----------------------------------------------------------------------------------------


def notifications_config(repo: Path) -> dict:
    """The notifications block of notifications-values.yaml, with the chart's string values parsed."""
    values = yaml.safe_load((repo / "infrastructure/controllers/argo-cd/notifications-values.yaml").read_text())
    assert set(values) == {"notifications"}
    block = values["notifications"]
    assert set(block) <= {"notifiers", "templates", "triggers", "subscriptions", "context"}
    services = {}
    for key, text in block["notifiers"].items():
        parts = key.split(".")
        assert parts[0] == "service" and len(parts) in (2, 3), key
        services[parts[-1]] = (parts[1], text, yaml.safe_load(text))
    triggers = {}
    for key, text in block["triggers"].items():
        assert key.startswith("trigger."), key
        triggers[key.removeprefix("trigger.")] = yaml.safe_load(text)
    templates = {}
    for key, text in block["templates"].items():
        assert key.startswith("template."), key
        templates[key.removeprefix("template.")] = yaml.safe_load(text)
    return {"services": services, "triggers": triggers, "templates": templates, "subscriptions": block["subscriptions"]}


def strings_of(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_of(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_of(v)]
    return [value] if isinstance(value, str) else []


def go_template_blocks_balance(text: str) -> bool:
    actions = re.findall(r"\{\{-?\s*(.*?)\s*-?\}\}", text, re.S)
    opened = sum(1 for a in actions if re.match(r"(if|with|range|define|block)\b", a))
    closed = sum(1 for a in actions if a == "end")
    return text.count("{{") == text.count("}}") == len(actions) and opened == closed


def as_json(text: str):
    """A JSON template section parsed with its Go template actions replaced by sample values."""
    text = re.sub(r'(:\s*)\{\{.*?\}\}', r'\1"sample"', text)  # an action that renders a whole JSON value
    return json.loads(re.sub(r"\{\{.*?\}\}", "sample", text))


def test_notifications_values_exist_only_with_a_channel(generated):
    _, repo, answers, _ = generated
    path = repo / "infrastructure/controllers/argo-cd/notifications-values.yaml"
    assert path.is_file() == notify(answers)
    application = yaml.safe_load((repo / "infrastructure/controllers/argo-cd/application.yaml").read_text())
    value_files = [f for s in application["spec"]["sources"] for f in s.get("helm", {}).get("valueFiles", [])]
    assert ("$values/infrastructure/controllers/argo-cd/notifications-values.yaml" in value_files) == notify(answers)
    values = argocd_values(repo)
    assert values["notifications"]["enabled"] is notify(answers)
    if notify(answers):
        # The Secret comes from the SealedSecret in the repo, not from the chart.
        assert values["notifications"]["secret"]["create"] is False
        assert values["notifications"]["metrics"]["enabled"] is True


def test_notifications_triggers_templates_and_subscriptions_fit_together(notifying):
    _, _, answers, _ = notifying
    config = notifications_config(notifying[1])
    triggers, templates, services = config["triggers"], config["templates"], config["services"]
    assert set(triggers) == TRIGGERS
    for name, conditions in triggers.items():
        assert conditions and all(c["when"] and c["send"] for c in conditions), name
        for condition in conditions:
            assert set(condition["send"]) <= set(templates), (name, condition["send"])
    # Sync failures and deployments are reported once per revision, not on every retry or refresh.
    assert all(c.get("oncePer") for t in ("on-sync-failed", "on-deployed") for c in triggers[t])
    used = {t for s in config["subscriptions"] for t in s["triggers"]}
    assert used <= set(triggers)
    for subscription in config["subscriptions"]:
        # Global subscriptions without a selector: every Application is subscribed.
        assert "selector" not in subscription
        for recipient in subscription["recipients"]:
            service = recipient.split(":")[0]
            assert service in services, recipient
            kind = services[service][0]
            for trigger in subscription["triggers"]:
                for condition in triggers[trigger]:
                    for template in condition["send"]:
                        body = templates[template]
                        assert body.get("message"), template
                        if kind in ("github", "webhook"):  # these services read only their own section
                            assert SECTIONS[kind] in body, (template, service)
                        if kind == "webhook":
                            assert service in body["webhook"], (template, service)
    # Each template only feeds services that exist.
    configured_kinds = {kind for kind, _, _ in services.values()}
    webhooks = {name for name, (kind, _, _) in services.items() if kind == "webhook"}
    for name, body in templates.items():
        assert set(body) <= {"message"} | {SECTIONS[k] for k in configured_kinds}, name
        assert set(body.get("webhook", {})) <= webhooks, name
        for text in strings_of(body):
            assert go_template_blocks_balance(text), (name, text)
    # Every Application reports its failures to the channel (AMON-04).
    chat = {"slack": "slack", "msteams": "teams-workflows"}.get(answers["alerts_to"])
    expected = {}
    if chat:
        expected[chat] = {"on-sync-failed", "on-health-degraded", "on-sync-status-unknown"}
    provider = commit_status_provider(answers)
    if provider:
        expected[provider] = {"on-deployed", "on-sync-failed", "on-health-degraded"}
    subscribed = {}
    for subscription in config["subscriptions"]:
        for recipient in subscription["recipients"]:
            subscribed.setdefault(recipient.split(":")[0], set()).update(subscription["triggers"])
    assert subscribed == expected


def test_notifications_services_match_the_channel(notifying):
    _, repo, answers, _ = notifying
    services = notifications_config(repo)["services"]
    templates = notifications_config(repo)["templates"]
    kinds = {name: kind for name, (kind, _, _) in services.items()}
    expected = {}
    if answers["alerts_to"] == "slack":
        expected["slack"] = "slack"
    if answers["alerts_to"] == "msteams":
        expected["teams-workflows"] = "teams-workflows"
    provider = commit_status_provider(answers)
    host = answers["git_url"].split("/")[2].split("@")[-1].split(":")[0]
    if answers["git_url"].startswith("https://"):
        host = answers["git_url"].split("/")[2]
    if provider == "github":
        expected["github"] = "github"
    if provider == "gitlab":
        expected["gitlab"] = "webhook"
    assert kinds == expected
    for name, (kind, text, options) in services.items():
        # Credentials only ever come from the Secret.
        if kind == "slack":
            assert options == {"token": "$slack-token"}
        if kind == "teams-workflows":
            assert list(options) == ["recipientUrls"] and all(v.startswith("$") for v in options["recipientUrls"].values())
        if kind == "github":
            assert {options["appID"], options["installationID"], options["privateKey"]} == {"$github-app-id", "$github-installation-id", "$github-private-key"}
            assert options.get("enterpriseBaseURL") == (None if host == "github.com" else f"https://{host}/api/v3")
        if kind == "webhook":
            assert options["url"] == f"https://{host}/api/v4"
            assert {"name": "PRIVATE-TOKEN", "value": "$gitlab-token"} in options["headers"]
    for name, body in templates.items():
        if "slack" in body:
            (attachment,) = as_json(body["slack"]["attachments"])
            assert attachment["title_link"].startswith("sample/applications/"), name
        if "teams-workflows" in body:
            assert as_json(body["teams-workflows"]["facts"]) and as_json(body["teams-workflows"]["potentialAction"]), name
        if "github" in body:
            github = body["github"]
            assert github["repoURLPath"] == answers["git_url"] and "{{" in github["revisionPath"], name
            assert github["status"]["state"] in ("success", "failure", "error", "pending"), name
            assert github["status"]["label"].startswith("argocd"), name
        if "webhook" in body:
            call = body["webhook"]["gitlab"]
            project = answers["git_url"].split("/", 3)[3].removesuffix(".git").replace("/", "%2F")
            assert call["method"] == "POST" and re.match(rf"/projects/{re.escape(project)}/statuses/ ?\{{\{{-", call["path"]), name
            status = as_json(call["body"])
            assert status["state"] in ("pending", "running", "success", "failed", "canceled") and status["name"], name
    # The failure notices report what failed and where to look.
    assert "operationState.message" in templates["app-sync-failed"]["message"]


def test_notification_secret_keys_are_in_the_sealed_stub_of_every_environment(notifying):
    _, repo, answers, objects = notifying
    services = notifications_config(repo)["services"]
    referenced = {key for _, text, _ in services.values() for key in SECRET_REF.findall(text)}
    assert referenced
    for env in answers["environments"]:
        directory = repo / "infrastructure/configs/monitoring/secrets" / env
        stub = yaml.safe_load((directory / "argocd-notifications-secret.yaml").read_text())
        assert stub["kind"] == "SealedSecret"
        assert (stub["metadata"]["name"], stub["metadata"]["namespace"]) == ("argocd-notifications-secret", "argocd")
        assert stub["spec"]["template"]["metadata"] == {"name": "argocd-notifications-secret", "namespace": "argocd"}
        assert set(stub["spec"]["encryptedData"]) == referenced, env
        assert all(v.startswith("PLACEHOLDER-") for v in stub["spec"]["encryptedData"].values())
        # The sealing command in the comments creates exactly these keys.
        comments = (directory / "argocd-notifications-secret.yaml").read_text()
        assert set(re.findall(r"--from-(?:file|literal)=([\w-]+)=", comments)) == referenced, env
        assert "--namespace argocd --name argocd-notifications-secret" in comments
        assert "argocd-notifications-secret.yaml" in yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
    rendered = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in unique(objects, "SealedSecret").values()}
    assert ("argocd", "argocd-notifications-secret") in rendered


def test_secret_stubs_follow_the_answers(monitored):
    _, repo, answers, _ = monitored
    chat = answers["alerts_to"] if answers["alerts_to"] in ("slack", "msteams") else ""
    expected = {"grafana-admin.yaml"}
    expected |= {f"alertmanager-{chat}.yaml"} if chat else set()
    expected |= {"argocd-notifications-secret.yaml"} if notify(answers) else set()
    expected |= {"alertmanager-pager.yaml", "alertmanager-heartbeat.yaml"} if answers["pager"] != "none" else set()
    for env in answers["environments"]:
        directory = repo / "infrastructure/configs/monitoring/secrets" / env
        stubs = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
        assert stubs == expected, env
        assert set(yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]) == expected, env
    routes = unique(monitored[3], "AlertmanagerConfig", "monitoring.coreos.com/")
    pager = {"alerts-to-pager", "watchdog-heartbeat"} if answers["pager"] != "none" else set()
    assert {name for _, name in routes} == ({f"alerts-to-{chat}"} if chat else set()) | pager
    for route in routes.values():
        for receiver in route["spec"]["receivers"]:
            for config in receiver.get("slackConfigs", []) + receiver.get("msteamsv2Configs", []):
                assert "${" not in config["title"]  # no Flux substitution under Argo CD
            for config in receiver.get("pagerdutyConfigs", []) + receiver.get("opsgenieConfigs", []):
                assert "${" not in config.get("description", config.get("message", ""))


def test_generated_repo_validates_strictly_and_monitoring_files_lint(generated, schema_locations):
    _, repo, answers, _ = generated
    report = validate_repo(repo, schema_locations=schema_locations)
    problems = [f"{f.entrypoint} {f.kind}/{f.name} {f.check}: {f.message}" for f in report.findings]
    problems += [f"no schema: {m.api_version} {m.kind}/{m.name}" for m in report.missing_schemas]
    assert problems == []
    files = sorted(
        path
        for pattern in (
            "infrastructure/configs/monitoring/**/*.yaml",
            "infrastructure/controllers/argo-cd/*.yaml",
            "infrastructure/controllers/kube-prometheus-stack/*.yaml",
        )
        for path in repo.glob(pattern)
    )
    run = subprocess.run([str(BIN / "yamllint"), "--strict", "-c", str(repo / ".yamllint"), *map(str, files)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


# --- monitoring off --------------------------------------------------------------------------------------

# Text that only the monitoring and notifications parts of the template write.
MONITORING_MARKERS = (
    "monitoring.coreos.com",
    "kube-prometheus-stack",
    "argocd_app_",
    "docs/monitoring.md",
    "kubernetes.io/metadata.name: monitoring",
    "notifications-values.yaml",
    "argocd-notifications-secret",
)


def test_monitoring_off_leaves_nothing_behind(tmp_path_factory):
    _, repo, answers, objects = _generate("off", tmp_path_factory)
    assert answers["monitoring"] is False and answers["alerts_to"] == "none"
    for obj in objects:
        assert not str(obj.get("apiVersion", "")).startswith("monitoring.coreos.com/"), obj["kind"]
        assert (obj.get("metadata") or {}).get("namespace") not in ("monitoring", "monitoring-node-exporter")
        assert (obj["kind"], obj["metadata"]["name"]) not in {("SealedSecret", "argocd-notifications-secret"), ("Application", "kube-prometheus-stack")}
    values = argocd_values(repo)
    assert values["notifications"]["enabled"] is False
    assert all(values[key]["metrics"]["enabled"] is False for key in ("controller", "server", "repoServer", "applicationSet"))
    assert_no_file_mentions(repo, MONITORING_MARKERS, ("monitoring", "notifications", "servicemonitor"))
