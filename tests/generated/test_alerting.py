"""Alerting that reaches a person and a shared Prometheus that does not trust tenants (issue 13, items 4-7),
for both engines:

- the kube-prometheus-stack values: no aggregated roles, namespace selectors ignored, the namespace label
  enforced on the teams' objects and not on the platform's, control-plane scraping by cluster flavour;
- the one role a team gets for monitoring (Flux) or its AppProject (Argo CD): three kinds, nothing else;
- every monitor and rule still finds its targets and series under that enforcement;
- the admission policy that keeps monitors away from Prometheus' own token, evaluated with cel-python;
- Alertmanager's routing tree, resolved the way Alertmanager does: critical pages, warnings go to chat,
  Watchdog feeds the dead-man's switch, InfoInhibitor goes nowhere;
- with SOPS, `.sops.yaml` walked the way sops walks it: no environment's key opens another's file.
"""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path

import celpy
import pytest
import yaml

from .variants import generate


def app(index: int, team: str) -> dict:
    return {"name": f"app-{index}", "team": team, "image": f"registry.example.com/shop/app-{index}:1.{index}.0", "port": 8080 + index}


TWO_TEAMS = {
    "teams": [{"name": "web", "groups": ["web-devs"]}, {"name": "data", "groups": ["data-devs"]}],
    "apps": [app(1, "web"), app(2, "data")],
}
VARIANTS = {
    "flux-defaults": {},
    "flux-slack-opsgenie-self-managed": {**TWO_TEAMS, "alerts_to": "slack", "pager": "opsgenie", "cluster_flavor": "self-managed"},
    "flux-no-chat-gitlab": {"git_url": "https://gitlab.example.com/platform/acme-platform.git", "alerts_to": "none"},
    "argocd-defaults": {"engine": "argocd"},
    "argocd-msteams-opsgenie": {**TWO_TEAMS, "engine": "argocd", "alerts_to": "msteams", "pager": "opsgenie"},
}
SOPS_VARIANTS = {
    "sops-defaults": {"secrets": "sops"},
    # Two clusters in one environment share its keys, and only its keys.
    "sops-two-clusters-in-prod": {
        "secrets": "sops",
        "alerts_to": "slack",
        "clusters": [
            {"name": "dev", "environment": "dev"},
            {"name": "stg", "environment": "staging"},
            {"name": "prod-eu", "environment": "prod"},
            {"name": "prod-us", "environment": "prod"},
        ],
    },
    # Three environments whose names prefix each other, two teams, signed commits, Microsoft Teams.
    "sops-three-envs": {
        **TWO_TEAMS,
        "secrets": "sops",
        "verify": "ssh",
        "alerts_to": "msteams",
        "environments": ["qa", "qa2", "live"],
        "clusters": [{"name": "qa-1", "environment": "qa"}, {"name": "qa2-1", "environment": "qa2"}, {"name": "live-1", "environment": "live"}],
    },
    # An environment without a cluster has no key: its files must match no rule rather than a shared one.
    "sops-env-without-cluster": {"secrets": "sops", "clusters": [{"name": "dev", "environment": "dev"}, {"name": "prod", "environment": "prod"}]},
}
# Where each platform component runs (its monitors sit there): the GitOps engine, and the Sealed Secrets controller.
PLATFORM_TARGETS = {"flux": "flux-system", "argocd": "argocd", "sealed-secrets": "kube-system"}
# The chart places its own monitors next to their targets when namespace selectors are ignored.
CHART_NAMESPACES = {"monitoring", "monitoring-node-exporter", "kube-system", "default"}
MONITOR_KINDS = ("ServiceMonitor", "PodMonitor")
TEAM_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
CLUSTER_WIDE_KINDS = {"Prometheus", "PrometheusAgent", "Alertmanager", "AlertmanagerConfig", "Probe", "ScrapeConfig", "ThanosRuler"}


# --- rendering ----------------------------------------------------------------------------------------------


def _generate(tmp_path_factory, answers: dict) -> tuple[Path, dict, list[dict]]:
    generated = generate(tmp_path_factory, answers)
    objects = [o.data for r in generated.rendered for o in r.objects]
    return generated.repo, generated.answers, objects


@pytest.fixture(params=sorted(VARIANTS))
def generated(request, tmp_path_factory) -> tuple[Path, dict, list[dict]]:
    return _generate(tmp_path_factory, VARIANTS[request.param])


@pytest.fixture(params=sorted(SOPS_VARIANTS))
def sops_repo(request, tmp_path_factory) -> tuple[Path, dict]:
    repo, answers, _ = _generate(tmp_path_factory, SOPS_VARIANTS[request.param])
    return repo, answers


def unique(objects: list[dict], kind: str) -> dict[tuple[str, str], dict]:
    """Objects of a kind by (namespace, name): every cluster renders the shared directories again."""
    found = {}
    for obj in objects:
        if obj.get("kind") == kind:
            found.setdefault((obj["metadata"].get("namespace", ""), obj["metadata"]["name"]), obj)
    return found


def chart_values(repo: Path, answers: dict, objects: list[dict]) -> dict:
    """The kube-prometheus-stack values: the HelmRelease's (Flux) or values.yaml (Argo CD)."""
    if answers["engine"] == "flux":
        return unique(objects, "HelmRelease")[("flux-system", "kube-prometheus-stack")]["spec"]["values"]
    return yaml.safe_load((repo / "infrastructure/controllers/kube-prometheus-stack/values.yaml").read_text())


def team_namespaces(answers: dict) -> set[str]:
    return {team["name"] for team in answers["teams"]}


# --- item 4: the shared Prometheus does not trust tenants --------------------------------------------------


def test_prometheus_ignores_namespace_selectors_and_enforces_the_namespace_label(generated):
    repo, answers, objects = generated
    values = chart_values(repo, answers, objects)
    assert values["global"]["rbac"]["createAggregateClusterRoles"] is False
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["ignoreNamespaceSelectors"] is True
    assert spec["enforcedNamespaceLabel"] == "namespace"
    excluded = {(ref["resource"], ref["namespace"]) for ref in spec["excludedFromEnforcement"]}
    assert all(set(ref) == {"resource", "namespace"} for ref in spec["excludedFromEnforcement"])  # whole namespaces
    # No team namespace is excluded: whatever a team ships carries its namespace.
    assert {namespace for _, namespace in excluded} & team_namespaces(answers) == set()
    assert {namespace for _, namespace in excluded} == CHART_NAMESPACES | {PLATFORM_TARGETS[answers["engine"]]}
    # Denying file access in monitors would drop the chart's own kubelet and API-server monitors; the
    # admission policy below refuses such monitors outside the chart's namespaces instead.
    assert "arbitraryFSAccessThroughSMs" not in spec


def test_control_plane_scraping_follows_the_cluster_flavor(generated):
    repo, answers, objects = generated
    values = chart_values(repo, answers, objects)
    components = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")
    if answers["cluster_flavor"] == "managed":
        # enabled: false removes both the chart's ServiceMonitor and the component's alert rules.
        assert {c: values[c] for c in components} == dict.fromkeys(components, {"enabled": False})
    else:
        assert [c for c in components if c in values] == []  # the chart's defaults: scraped and alerted on


def test_a_team_gets_monitors_and_rules_and_nothing_cluster_wide(generated):
    repo, answers, objects = generated
    roles = unique(objects, "ClusterRole")
    monitoring_rules = [
        {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "podmonitors", "prometheusrules"], "verbs": verbs}
        for verbs in (["get", "list", "watch", "create", "update", "patch", "delete"], ["get", "list", "watch"])
    ]
    view = roles[("", "gitops-forge:monitoring-view")]
    assert view["metadata"]["labels"] == {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    assert view["rules"] == [monitoring_rules[1]]
    # No role of the repo aggregates a Prometheus Operator kind into admin or edit.
    for (_, name), role in roles.items():
        labels = role["metadata"].get("labels") or {}
        if any(f"rbac.authorization.k8s.io/aggregate-to-{r}" in labels for r in ("admin", "edit")):
            assert all("monitoring.coreos.com" not in rule.get("apiGroups", []) for rule in role.get("rules", [])), name
    if answers["engine"] == "flux":
        edit = roles[("", "gitops-forge:monitoring-edit")]
        # Aggregated into the tenant reconciler's ClusterRole only (tenancy: gitops-forge:tenant-reconciler).
        assert edit["metadata"]["labels"] == {"gitops-forge.io/aggregate-to-tenant-reconciler": "true"}
        assert edit["rules"] == [monitoring_rules[0]]
        return
    # Argo CD applies as its own account: the team's AppProject is what decides.
    for team in answers["teams"]:
        project = unique(objects, "AppProject")[("argocd", team["name"])]
        for kind in TEAM_KINDS:
            assert project_allows(project, "monitoring.coreos.com", kind), (team["name"], kind)
        for kind in CLUSTER_WIDE_KINDS:
            assert not project_allows(project, "monitoring.coreos.com", kind), (team["name"], kind)


def project_allows(project: dict, group: str, kind: str) -> bool:
    """Argo CD's namespaced-resource check: a whitelist, when set, must list the kind; a blacklist must not."""
    spec = project["spec"]

    def listed(entries):
        return any(fnmatch(group, e.get("group", "")) and fnmatch(kind, e.get("kind", "")) for e in entries or [])

    if "namespaceResourceWhitelist" in spec and not listed(spec["namespaceResourceWhitelist"]):
        return False
    return not listed(spec.get("namespaceResourceBlacklist"))


def test_every_monitor_and_rule_finds_its_targets_under_enforcement(generated):
    """With ignoreNamespaceSelectors a monitor sees its own namespace only, and with enforcedNamespaceLabel a
    team's rule reads only series of its namespace: each platform object must sit where its targets are and be
    excluded from the label, each team object must select its own namespace and not be excluded."""
    repo, answers, objects = generated
    spec = chart_values(repo, answers, objects)["prometheus"]["prometheusSpec"]
    excluded = {(ref["resource"], ref["namespace"]) for ref in spec["excludedFromEnforcement"]}
    teams = team_namespaces(answers)
    services = unique(objects, "Service")
    monitors = [(kind, key, obj) for kind in MONITOR_KINDS for key, obj in unique(objects, kind).items()]
    assert monitors
    for kind, (namespace, name), monitor in monitors:
        # Under ignoreNamespaceSelectors the selector is dropped: only its own namespace is searched.
        selector = monitor["spec"].get("namespaceSelector")
        assert selector in (None, {"matchNames": [namespace]}), (namespace, name)
        resource = kind.lower() + "s"
        if namespace in teams:
            assert (resource, namespace) not in excluded
            wanted = monitor["spec"]["selector"]["matchLabels"]
            found = [s for (ns, _), s in services.items() if ns == namespace and wanted.items() <= (s["metadata"].get("labels") or {}).items()]
            assert found, f"{kind} {namespace}/{name} selects no Service of its namespace"
        else:
            part_of = monitor["metadata"]["labels"]["app.kubernetes.io/part-of"]
            assert namespace == PLATFORM_TARGETS[part_of], f"{kind} {namespace}/{name} is not where {part_of} runs"
            assert (resource, namespace) in excluded, (namespace, name)
    for (namespace, name), rule in unique(objects, "PrometheusRule").items():
        if namespace in teams:
            assert ("prometheusrules", namespace) not in excluded
            exprs = [r.get("expr", "") for group in rule["spec"]["groups"] for r in group["rules"]]
            read = {m for expr in exprs for m in re.findall(r'namespace="([^"]*)"', expr)}
            assert read <= {namespace}, f"{namespace}/{name} reads series of {read - {namespace}}, empty under enforcement"
        else:
            assert ("prometheusrules", namespace) in excluded, (namespace, name)


def cel(expression: str, activation: dict) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    return bool(program.evaluate({name: celpy.json_to_cel(value) for name, value in activation.items()}))


def namespace_selected(selector: dict, namespace: str) -> bool:
    labels = {"kubernetes.io/metadata.name": namespace}
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def test_monitors_cannot_borrow_prometheus_credentials(generated):
    """A ServiceMonitor reading a file of the Prometheus container (its token, its CA) is refused by the API
    server in every team namespace; the apps' own monitors and Secret-based credentials are admitted."""
    _, answers, objects = generated
    policy = unique(objects, "ValidatingAdmissionPolicy")[("", "gitops-forge-monitors-no-file-credentials")]
    binding = unique(objects, "ValidatingAdmissionPolicyBinding")[("", "gitops-forge-monitors-no-file-credentials")]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"] and binding["spec"]["validationActions"] == ["Deny"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["resources"], set(rule["operations"])) == (["monitoring.coreos.com"], ["servicemonitors"], {"CREATE", "UPDATE"})
    selector = binding["spec"]["matchResources"]["namespaceSelector"]
    for namespace in team_namespaces(answers):
        assert namespace_selected(selector, namespace)
    for namespace in CHART_NAMESPACES:  # the chart's kubelet and API-server monitors read the token file
        assert not namespace_selected(selector, namespace)

    def admitted(monitor: dict) -> bool:
        return all(cel(v["expression"], {"object": monitor}) for v in policy["spec"]["validations"])

    endpoint = {"port": "http", "path": "/metrics"}
    hostile = [
        {**endpoint, "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"},
        {**endpoint, "tlsConfig": {"caFile": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"}},
        {**endpoint, "tlsConfig": {"certFile": "/etc/prometheus/certs/tls.crt", "keyFile": "/etc/prometheus/certs/tls.key"}},
    ]
    for bad in hostile:
        monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "spec": {"selector": {}, "endpoints": [endpoint, bad]}}
        assert not admitted(monitor), bad
    fine = {**endpoint, "authorization": {"credentials": {"name": "metrics-token", "key": "token"}}, "tlsConfig": {"ca": {"configMap": {"name": "kube-root-ca.crt", "key": "ca.crt"}}}}
    assert admitted({"kind": "ServiceMonitor", "spec": {"selector": {}, "endpoints": [fine]}})
    for (namespace, _), monitor in unique(objects, "ServiceMonitor").items():
        assert admitted(monitor), namespace


# --- item 6: someone is told ------------------------------------------------------------------------------


def _matches(labels: dict, matchers: list) -> bool:
    """Alertmanager matchers, either AlertmanagerConfig objects ({name, value, matchType}) or strings."""
    for matcher in matchers:
        if isinstance(matcher, str):
            name, op, value = re.fullmatch(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*', matcher).groups()
        else:
            name, op, value = matcher["name"], matcher.get("matchType", "="), matcher.get("value", "")
        actual = labels.get(name, "")
        ok = {
            "=": actual == value,
            "!=": actual != value,
            "=~": re.fullmatch(value, actual) is not None,
            "!~": re.fullmatch(value, actual) is None,
        }[op]
        if not ok:
            return False
    return True


def routing_tree(repo: Path, answers: dict, objects: list[dict]) -> dict:
    """Alertmanager's root route as the operator builds it: the chart values' root, with the routes of every
    AlertmanagerConfig of the namespace monitoring (alertmanagerConfigMatcherStrategy None: no namespace
    matcher) first, in name order, each top-level route with `continue: true` (prometheus-operator forces it
    so that one AlertmanagerConfig cannot hide the others)."""
    values = chart_values(repo, answers, objects)["alertmanager"]
    assert values["alertmanagerSpec"]["alertmanagerConfigMatcherStrategy"] == {"type": "None"}
    root = values["config"]["route"]
    routes = []
    for (namespace, name), config in sorted(unique(objects, "AlertmanagerConfig").items()):
        assert namespace == "monitoring"
        receivers = {r["name"]: r for r in config["spec"]["receivers"]}
        route = config["spec"]["route"]
        routes.append({"receiver": f"{name}/{route['receiver']}", "matchers": route.get("matchers", []), "continue": True, "config": receivers[route["receiver"]]})
    return {"receiver": root["receiver"], "routes": routes + root.get("routes", [])}


def receivers_for(node: dict, labels: dict) -> list[str]:
    """Alertmanager's routing: children in order, descend into each one that matches, stop after the first
    match unless it has `continue: true`; a node none of whose children match takes the alert itself."""
    found = []
    for child in node.get("routes", []):
        if _matches(labels, child.get("matchers", [])):
            found += receivers_for(child, labels)
            if not child.get("continue"):
                break
    return found or [node["receiver"]]


def test_alertmanager_pages_critical_alerts_and_feeds_the_dead_mans_switch(generated):
    repo, answers, objects = generated
    tree = routing_tree(repo, answers, objects)
    chat = f"alerts-to-{answers['alerts_to']}/{answers['alerts_to']}" if answers["alerts_to"] in ("slack", "msteams") else None
    pager = f"alerts-to-pager/{answers['pager']}"
    critical = {"alertname": "KubeAPIDown", "severity": "critical", "namespace": "kube-system"}
    app_page = {"alertname": "AppUnavailable", "severity": "critical", "namespace": answers["teams"][0]["name"], "team": answers["teams"][0]["name"]}
    warning = {"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "monitoring"}
    info = {"alertname": "CPUThrottlingHigh", "severity": "info", "namespace": "monitoring"}
    watchdog = {"alertname": "Watchdog", "severity": "none"}
    info_inhibitor = {"alertname": "InfoInhibitor", "severity": "none", "namespace": "monitoring"}
    for alert in (critical, app_page):
        assert sorted(receivers_for(tree, alert)) == sorted([pager] + ([chat] if chat else []))
    assert receivers_for(tree, warning) == ([chat] if chat else ["null"])
    assert receivers_for(tree, info) == ["null"]
    assert receivers_for(tree, watchdog)[0] == "watchdog-heartbeat/heartbeat"
    assert pager not in receivers_for(tree, watchdog) and chat not in receivers_for(tree, watchdog)
    assert receivers_for(tree, info_inhibitor) == ["null"]
    # The receivers are the pager the answers name and a heartbeat webhook, with their keys in Secrets.
    configs = {route["receiver"]: route["config"] for route in tree["routes"] if "config" in route}
    if answers["pager"] == "pagerduty":
        assert configs[pager]["pagerdutyConfigs"][0]["routingKey"] == {"name": "alertmanager-pager", "key": "routing-key"}
    else:
        assert configs[pager]["opsgenieConfigs"][0]["apiKey"] == {"name": "alertmanager-pager", "key": "api-key"}
    assert configs["watchdog-heartbeat/heartbeat"]["webhookConfigs"][0]["urlSecret"] == {"name": "alertmanager-heartbeat", "key": "url"}


def test_the_pager_secrets_have_a_placeholder_in_every_environment(generated):
    repo, answers, _ = generated
    assert answers["secrets"] == "sealed-secrets"  # the SOPS placeholders: test_no_environments_key_...
    key = "routing-key" if answers["pager"] == "pagerduty" else "api-key"
    for env in answers["environments"]:
        directory = repo / "infrastructure/configs/monitoring/secrets" / env
        component = yaml.safe_load((directory / "kustomization.yaml").read_text())
        for name, keys in (("alertmanager-pager", {key}), ("alertmanager-heartbeat", {"url"})):
            doc = yaml.safe_load((directory / f"{name}.yaml").read_text())
            assert (doc["metadata"]["namespace"], doc["metadata"]["name"]) == ("monitoring", name)
            assert set(doc["spec"]["encryptedData"]) == keys and f"{name}.yaml" in component["resources"]


# --- item 5: SOPS keys per environment ---------------------------------------------------------------------


def sops_rule_for(rules: list[dict], path: str) -> dict | None:
    """The creation rule sops picks for a path relative to .sops.yaml: the first whose path_regex matches
    anywhere in the path (Go's regexp.MatchString; these regexes mean the same in Python), or one without
    path_regex (getsops/sops config/config.go, parseCreationRuleForFile)."""
    for rule in rules:
        if not rule.get("path_regex") or re.search(rule["path_regex"], path):
            return rule
    return None


def rule_keys(rule: dict) -> set[str]:
    keys = set()
    for group in rule.get("key_groups", []):
        keys |= set(group.get("age", []))
    if isinstance(rule.get("age"), str):
        keys |= {key.strip() for key in rule["age"].split(",") if key.strip()}
    return keys


def key_environment(key: str, answers: dict) -> str:
    """The environment of a placeholder key: every key names the cluster it lives on."""
    cluster = re.fullmatch(r"REPLACE-with-the-(?:platform-age-key|age-key-of-team-.+-on)-(?:of-)?cluster-(.+)", key).group(1)
    return {c["name"]: c["environment"] for c in answers["clusters"]}[cluster]


def sops_files(repo: Path) -> set[str]:
    """The encrypted (or placeholder) Secrets of the repo, relative to it; .sops.yaml itself is the config."""
    return {p.relative_to(repo).as_posix() for p in repo.rglob("*.sops.yaml") if p.name != ".sops.yaml"}


def secret_paths(repo: Path, answers: dict) -> dict[str, str]:
    """Every secret file of the repo and every place one of an environment may be added, with its environment."""
    paths = {}
    for rel in sops_files(repo):
        parts = rel.split("/")
        if parts[0] in ("apps", "tenants"):
            env = parts[1]
        elif parts[0] == "clusters":
            env = {c["name"]: c["environment"] for c in answers["clusters"]}[parts[1]]
        else:
            assert rel.startswith("infrastructure/configs/monitoring/secrets/"), rel
            env = parts[4]
        paths[rel] = env
    for env in answers["environments"]:
        paths[f"apps/{env}/extra.sops.yaml"] = env
        paths[f"tenants/{env}/extra.sops.yaml"] = env
        paths[f"tenants/{env}/{answers['teams'][0]['name']}/extra.sops.yaml"] = env
        paths[f"infrastructure/configs/monitoring/secrets/{env}/extra.sops.yaml"] = env
        for app_ in answers["apps"]:
            paths[f"apps/{env}/{app_['name']}/extra.sops.yaml"] = env
    for cluster in answers["clusters"]:
        paths[f"clusters/{cluster['name']}/extra.sops.yaml"] = cluster["environment"]
    return paths


def test_no_environments_key_decrypts_another_environments_secrets(sops_repo):
    repo, answers = sops_repo
    rules = yaml.safe_load((repo / ".sops.yaml").read_text())["creation_rules"]
    env_clusters = {env: {c["name"] for c in answers["clusters"] if c["environment"] == env} for env in answers["environments"]}
    generated = sops_files(repo)
    paths = secret_paths(repo, answers)
    assert any(p.startswith("infrastructure/configs/monitoring/secrets/") for p in generated)
    for path, env in paths.items():
        for form in (path, f"/home/me/{repo.name}/{path}"):  # sops trims the config's directory only when it can
            rule = sops_rule_for(rules, form)
            if rule is None:
                # sops refuses to encrypt ("no matching creation rules found"): only where no key exists.
                assert not env_clusters[env], f"{path} matches no rule although {env} has clusters"
                continue
            keys = rule_keys(rule)
            assert keys, path
            assert {key_environment(key, answers) for key in keys} == {env}, f"{path} ({env}) is encrypted for {sorted(keys)}"
    # A deeper directory of infrastructure/ belongs to no environment: sops refuses rather than use every key.
    assert sops_rule_for(rules, "infrastructure/configs/monitoring/other/extra.sops.yaml") is None
    # The placeholders say the same as .sops.yaml: their recipients are the keys sops would use.
    for path in generated:
        doc = yaml.safe_load((repo / path).read_text())
        recipients = {entry["recipient"] for entry in (doc["sops"].get("age") or [])}
        if recipients and "each-" not in " ".join(recipients):
            assert recipients == rule_keys(sops_rule_for(rules, path)), path
    assert "every cluster" not in "\n".join((repo / p).read_text() for p in generated)
