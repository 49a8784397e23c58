"""A tenant cannot widen its own rights (issue 13): hostile objects, submitted as a team would submit them, are
refused by the fences of the generated repo, and the team's and the platform's legitimate objects still pass.

The fences are evaluated from the rendered repo, the way the API server and Argo CD evaluate them:
- RBAC: the RoleBindings and (Cluster)Roles of the render, ClusterRole aggregation included, plus the
  built-in roles `admin`, `edit` and `view` as Kubernetes defines them (only the rules that matter here);
- every ValidatingAdmissionPolicy with a binding, honouring matchConstraints, the binding's namespaceSelector
  against the rendered Namespace's labels, and its CEL (cel-python);
- Argo CD: the team's AppProject (sourceRepos, destinations, cluster and namespace resource lists);
- CODEOWNERS with the hosts' last-match rule (GitLab: per section), and the CI script for remote bases.

docs/security.md and docs/onboarding.md state, in a table, what a tenant can and cannot do and which fence
enforces it; the test parses that table and runs every attack it names, so a statement that stops being true
fails here. Runs for both engines, with one and with three teams.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import celpy
import pytest
import yaml

from .variants import generate

FOREIGN = "https://github.com/attacker/payload.git"

THREE_TEAMS = {
    "teams": [{"name": name, "groups": [f"{name}-devs"]} for name in ("alpha", "bravo", "charlie")],
    "apps": [{"name": f"{name}-web", "team": name, "image": f"ghcr.io/acme/{name}-web:1.0.0", "port": 8080}
             for name in ("alpha", "bravo", "charlie")],
}
REPOS = {
    "flux-1-team": {"engine": "flux"},
    "flux-3-teams": {"engine": "flux", **THREE_TEAMS},
    "argocd-1-team": {"engine": "argocd"},
    "argocd-3-teams": {"engine": "argocd", **THREE_TEAMS, "ci": "gitlab",
                       "git_url": "ssh://git@gitlab.example.com/acme/acme-platform.git"},
}

# Kind -> (API group, resource, namespaced), for the kinds the attacks and the generated repos use.
KINDS = {
    "ConfigMap": ("", "configmaps", True), "Secret": ("", "secrets", True), "Service": ("", "services", True),
    "ServiceAccount": ("", "serviceaccounts", True), "Pod": ("", "pods", True),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims", True), "ResourceQuota": ("", "resourcequotas", True),
    "LimitRange": ("", "limitranges", True), "Namespace": ("", "namespaces", False),
    "Deployment": ("apps", "deployments", True), "StatefulSet": ("apps", "statefulsets", True),
    "Job": ("batch", "jobs", True), "CronJob": ("batch", "cronjobs", True),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers", True),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets", True),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies", True), "Ingress": ("networking.k8s.io", "ingresses", True),
    "Role": ("rbac.authorization.k8s.io", "roles", True), "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "clusterrolebindings", False),
    "SealedSecret": ("bitnami.com", "sealedsecrets", True),
    "ServiceMonitor": ("monitoring.coreos.com", "servicemonitors", True),
    "PodMonitor": ("monitoring.coreos.com", "podmonitors", True),
    "PrometheusRule": ("monitoring.coreos.com", "prometheusrules", True),
    "GitRepository": ("source.toolkit.fluxcd.io", "gitrepositories", True),
    "OCIRepository": ("source.toolkit.fluxcd.io", "ocirepositories", True),
    "HelmRepository": ("source.toolkit.fluxcd.io", "helmrepositories", True),
    "Bucket": ("source.toolkit.fluxcd.io", "buckets", True),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "kustomizations", True),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "helmreleases", True),
    "Application": ("argoproj.io", "applications", True), "AppProject": ("argoproj.io", "appprojects", True),
    "ValidatingAdmissionPolicy": ("admissionregistration.k8s.io", "validatingadmissionpolicies", False),
    "ValidatingAdmissionPolicyBinding": ("admissionregistration.k8s.io", "validatingadmissionpolicybindings", False),
}

# The built-in roles, reduced to the rules that decide the attacks (kubernetes/plugin/pkg/auth/authorizer/rbac/
# bootstrappolicy/policy.go): `admin` and `edit` can exec and write Secrets and NetworkPolicies, only `admin` RBAC;
# `view` reads no Secrets. Each also aggregates every ClusterRole with its aggregate-to label, including those the
# controllers install and the render does not show: Flux's `flux-edit` (its kinds) and kube-prometheus-stack's.
RW = ["get", "list", "watch", "create", "update", "patch", "delete"]
_EDIT = [
    {"apiGroups": ["source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io"], "resources": [
        "gitrepositories", "ocirepositories", "helmrepositories", "helmcharts", "buckets", "kustomizations", "helmreleases"],
     "verbs": RW},
    {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "podmonitors", "prometheusrules"], "verbs": RW},
    {"apiGroups": [""], "resources": ["pods", "pods/exec", "pods/attach", "pods/portforward", "secrets", "configmaps",
                                      "services", "serviceaccounts", "persistentvolumeclaims"], "verbs": RW},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": RW},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": RW},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": RW},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": RW},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies", "ingresses"], "verbs": RW},
    {"apiGroups": [""], "resources": ["resourcequotas", "limitranges"], "verbs": ["get", "list", "watch"]},
]
BUILT_IN = {
    "view": ({"rbac.authorization.k8s.io/aggregate-to-view"}, [
        {"apiGroups": ["", "apps", "batch", "autoscaling", "policy", "networking.k8s.io"],
         "resources": ["pods", "configmaps", "services", "serviceaccounts", "persistentvolumeclaims", "resourcequotas",
                       "limitranges", "deployments", "statefulsets", "jobs", "cronjobs", "horizontalpodautoscalers",
                       "poddisruptionbudgets", "networkpolicies", "ingresses"], "verbs": ["get", "list", "watch"]}]),
    "edit": ({"rbac.authorization.k8s.io/aggregate-to-edit"}, _EDIT),
    "admin": ({"rbac.authorization.k8s.io/aggregate-to-admin"}, [
        *_EDIT, {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": RW}]),
}


@dataclass
class Request:
    """An API request: who, which verb, on what (object for create/update, subresource for RBAC only)."""
    user: tuple[str, set[str]]  # (user name, groups)
    verb: str
    kind: str
    namespace: str | None
    obj: dict | None = None
    subresource: str = ""


@dataclass
class Cluster:
    """The objects the platform renders for one cluster, and the fences they make."""
    objects: list[dict]
    answers: dict
    repo: Path
    rendered: list = field(default_factory=list, repr=False)  # every entrypoint's render, the apps' included
    namespaces: dict[str, dict] = field(init=False)

    def __post_init__(self):
        self.namespaces = {o["metadata"]["name"]: o for o in self.of_kind("Namespace")}

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o.get("kind") == kind]

    # --- RBAC ---------------------------------------------------------------------------------------

    def cluster_role_rules(self, name: str, seen: frozenset = frozenset()) -> list[dict]:
        roles = {r["metadata"]["name"]: r for r in self.of_kind("ClusterRole")}
        labels, rules = BUILT_IN.get(name, (set(), []))
        rules = list(rules)
        role = roles.get(name)
        if role is not None:
            rules += role.get("rules") or []
            selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        else:
            selectors = [{"matchLabels": {label: "true"}} for label in labels]
        for other in roles.values():
            other_name = other["metadata"]["name"]
            if other_name != name and other_name not in seen and any(
                    selector_matches(s, other["metadata"].get("labels") or {}) for s in selectors):
                rules += self.cluster_role_rules(other_name, seen | {name})
        return rules

    def rbac_allows(self, request: Request) -> bool:
        group, resource, namespaced = KINDS[request.kind]
        resource = f"{resource}/{request.subresource}" if request.subresource else resource
        user, groups = request.user
        bindings = self.of_kind("ClusterRoleBinding")
        if namespaced:
            bindings += [b for b in self.of_kind("RoleBinding") if b["metadata"].get("namespace") == request.namespace]
        for binding in bindings:
            if not any(subject_matches(s, user, groups, binding["metadata"].get("namespace")) for s in binding.get("subjects") or []):
                continue
            ref = binding["roleRef"]
            if ref["kind"] == "ClusterRole":
                rules = self.cluster_role_rules(ref["name"])
            else:
                rules = next((r.get("rules") or [] for r in self.of_kind("Role")
                              if r["metadata"]["name"] == ref["name"] and r["metadata"].get("namespace") == request.namespace), [])
            if any(rule_allows(rule, request.verb, group, resource) for rule in rules):
                return True
        return False

    # --- admission ----------------------------------------------------------------------------------

    def refusing_policies(self, request: Request) -> set[str]:
        """Names of the ValidatingAdmissionPolicies (bound with Deny) that refuse the request."""
        if request.obj is None or request.verb not in ("create", "update"):
            return set()
        group, resource, namespaced = KINDS[request.kind]
        version = request.obj["apiVersion"].split("/")[-1]
        namespace_object = self.namespaces.get(request.namespace) if namespaced else None
        refused = set()
        for policy in self.of_kind("ValidatingAdmissionPolicy"):
            name, spec = policy["metadata"]["name"], policy["spec"]
            constraints = spec.get("matchConstraints") or {}
            if not any(resource_rule_matches(r, request.verb.upper(), group, version, resource)
                       for r in constraints.get("resourceRules") or []):
                continue
            if not self.namespace_matches(constraints.get("namespaceSelector"), request, namespaced):
                continue
            for binding in self.of_kind("ValidatingAdmissionPolicyBinding"):
                bspec = binding["spec"]
                if bspec["policyName"] != name or "Deny" not in bspec["validationActions"]:
                    continue
                if not self.namespace_matches((bspec.get("matchResources") or {}).get("namespaceSelector"), request, namespaced):
                    continue
                if not validations_pass(spec, request, namespace_object):
                    refused.add(name)
        return refused

    def namespace_matches(self, selector: dict | None, request: Request, namespaced: bool) -> bool:
        if not selector:
            return True
        if not namespaced:  # a Namespace is matched on its own labels, other cluster-wide objects always
            return request.kind != "Namespace" or selector_matches(selector, request.obj["metadata"].get("labels") or {})
        namespace = self.namespaces.get(request.namespace)
        labels = (namespace or {}).get("metadata", {}).get("labels") or {"kubernetes.io/metadata.name": request.namespace}
        return selector_matches(selector, labels)


def selector_matches(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        ok = {"Exists": key in labels, "DoesNotExist": key not in labels,
              "In": labels.get(key) in values, "NotIn": labels.get(key) not in values}[operator]
        if not ok:
            return False
    return True


def subject_matches(subject: dict, user: str, groups: set[str], binding_namespace: str | None) -> bool:
    if subject["kind"] == "ServiceAccount":
        return user == f"system:serviceaccount:{subject.get('namespace', binding_namespace)}:{subject['name']}"
    if subject["kind"] == "Group":
        return subject["name"] in groups
    return subject["name"] == user


def rule_allows(rule: dict, verb: str, group: str, resource: str) -> bool:
    return (any(g in ("*", group) for g in rule.get("apiGroups") or [])
            and any(r in ("*", resource) for r in rule.get("resources") or [])
            and any(v in ("*", verb) for v in rule.get("verbs") or []))


def resource_rule_matches(rule: dict, operation: str, group: str, version: str, resource: str) -> bool:
    return (any(g in ("*", group) for g in rule.get("apiGroups") or [])
            and any(v in ("*", version) for v in rule.get("apiVersions") or [])
            and any(o in ("*", operation) for o in rule.get("operations") or [])
            and any(r in ("*", resource) for r in rule.get("resources") or []))


CEL = celpy.Environment()


def cel(expression: str, activation: dict):
    """Evaluate one CEL expression; an evaluation error is returned, not raised (failurePolicy decides)."""
    try:
        result = CEL.program(CEL.compile(expression)).evaluate(activation)
    except celpy.CELEvalError as error:
        return error
    return result


def validations_pass(spec: dict, request: Request, namespace_object: dict | None) -> bool:
    activation = {
        "object": celpy.json_to_cel(request.obj),
        "oldObject": celpy.json_to_cel(None),
        "namespaceObject": celpy.json_to_cel(namespace_object),
        "request": celpy.json_to_cel({"operation": request.verb.upper(), "namespace": request.namespace or "",
                                      "userInfo": {"username": request.user[0], "groups": sorted(request.user[1])}}),
    }
    # Variables are evaluated in order; each may use the ones before it.
    activation["variables"] = celpy.celtypes.MapType({})
    for variable in spec.get("variables") or []:
        value = cel(variable["expression"], activation)
        activation["variables"] = celpy.celtypes.MapType({**activation["variables"], celpy.celtypes.StringType(variable["name"]): value})
    fail_closed = spec.get("failurePolicy", "Fail") == "Fail"
    for validation in spec["validations"]:
        result = cel(validation["expression"], activation)
        if isinstance(result, celpy.CELEvalError) or not isinstance(result, celpy.celtypes.BoolType):
            if fail_closed:
                return False
            continue
        if not bool(result):
            return False
    return True


# --- the repos ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(REPOS))
def cluster(request, tmp_path_factory) -> Cluster:
    generated = generate(tmp_path_factory, REPOS[request.param])
    # One cluster of the last environment: everything its root applies (renders are deduplicated).
    answers = generated.answers
    env = answers["environments"][-1]
    roots = ("infrastructure/", "tenants/", f"apps/{env}", "clusters/")
    seen, objects = set(), []
    for result in generated.rendered:
        rel = result.entrypoint.rel
        if not rel.startswith(roots) or (rel.startswith("tenants/") and rel not in (f"tenants/{env}", "tenants/base")) \
                or (rel.startswith("apps/") and rel != f"apps/{env}"):
            continue
        for obj in result.objects:
            data = obj.data
            key = (data.get("kind"), (data.get("metadata") or {}).get("namespace"), (data.get("metadata") or {}).get("name"))
            if key not in seen:
                seen.add(key)
                objects.append(data)
    return Cluster(objects, answers, generated.repo, generated.rendered)


def team_apps(answers: dict, team: str) -> list[str]:
    return [a["name"] for a in answers["apps"] if a["team"] == team]


def other_namespace(answers: dict, team: str) -> str:
    others = [t["name"] for t in answers["teams"] if t["name"] != team]
    return others[0] if others else "flux-system" if answers["engine"] == "flux" else "argocd"


def app_objects(cluster: Cluster, team: str) -> list[dict]:
    """The team's own objects: what Flux or Argo CD applies from apps/<env>/<app>/ of its apps."""
    env = cluster.answers["environments"][-1]
    found = []
    for result in cluster.rendered:
        if result.entrypoint.rel in {f"apps/{env}/{app}" for app in team_apps(cluster.answers, team)}:
            found += [o.data for o in result.objects]
    found.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "fast"}})
    return found


def hostile(kind: str, api: str, name: str, spec: dict | None = None, **extra) -> dict:
    obj = {"apiVersion": api, "kind": kind, "metadata": {"name": name}, **extra}
    if spec is not None:
        obj["spec"] = spec
    return obj


def attacks(cluster: Cluster, team: str) -> dict[str, list[tuple[dict, str | None]]]:
    """Attack id -> the objects the team merges into apps/<env>/<app>/, each with the namespace it targets
    (None: the team's own). Ids match the Test column of the docs' table."""
    answers = cluster.answers
    other = other_namespace(answers, team)
    group = next(t["groups"][0] for t in answers["teams"] if t["name"] == team)
    git_url = answers["git_url"]
    other_sa = next((t["name"] for t in answers["teams"] if t["name"] != team), "kustomize-controller")
    flux_ks = lambda name, spec: hostile("Kustomization", "kustomize.toolkit.fluxcd.io/v1", name, {  # noqa: E731
        "interval": "10m", "path": "./", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "payload"}, **spec})
    release = hostile("HelmRelease", "helm.toolkit.fluxcd.io/v2", "payload", {
        "interval": "10m", "chart": {"spec": {"chart": "payload", "sourceRef": {"kind": "HelmRepository", "name": "payload"}}}})
    return {
        "own-app": [(o, None) for o in app_objects(cluster, team)],
        "own-flux-objects": [
            (flux_ks("extra", {"serviceAccountName": team, "targetNamespace": team}), None),
            (hostile("HelmRelease", "helm.toolkit.fluxcd.io/v2", "extra", {**release["spec"], "serviceAccountName": team}), None),
            (hostile("GitRepository", "source.toolkit.fluxcd.io/v1", "extra", {"interval": "1m", "url": git_url, "ref": {"branch": "main"}}), None),
        ],
        "rolebinding-admin": [(hostile("RoleBinding", "rbac.authorization.k8s.io/v1", "own-admin", None,
                                       roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                                       subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]), None)],
        "role-read-secrets": [(hostile("Role", "rbac.authorization.k8s.io/v1", "read-secrets", None,
                                       rules=[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]), None)],
        "networkpolicy-allow-all": [(hostile("NetworkPolicy", "networking.k8s.io/v1", "allow-all", {
            "podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]}), None)],
        "resourcequota": [(hostile("ResourceQuota", "v1", "tenant-quota", {"hard": {"pods": "1000"}}), None)],
        "limitrange": [(hostile("LimitRange", "v1", "tenant-limits", {"limits": [{"type": "Container", "max": {"cpu": "64"}}]}), None)],
        "ingress": [(hostile("Ingress", "networking.k8s.io/v1", "claim-host", {"rules": [{"host": "login.example.com"}]}), None)],
        "service-external-ips": [(hostile("Service", "v1", "intercept", {
            "ports": [{"port": 443}], "selector": {"app": "x"}, "externalIPs": ["10.0.0.1"]}), None)],
        "other-namespace": [(hostile("Deployment", "apps/v1", "intruder", {"selector": {}, "template": {}}), other)],
        "namespace": [(hostile("Namespace", "v1", f"{team}-extra"), "")],
        "clusterrole": [(hostile("ClusterRole", "rbac.authorization.k8s.io/v1", "everything", None,
                                 rules=[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]), "")],
        "pod-as-reconciler": [(hostile("Pod", "v1", "steal-token", {"serviceAccountName": team, "containers": [{"name": "c", "image": "x"}]}), None)],
        "gitrepository-foreign-url": [(hostile("GitRepository", "source.toolkit.fluxcd.io/v1", "payload",
                                               {"interval": "1m", "url": FOREIGN, "ref": {"branch": "main"}}), None)],
        "ocirepository-foreign-url": [(hostile("OCIRepository", "source.toolkit.fluxcd.io/v1", "payload",
                                               {"interval": "1m", "url": "oci://ghcr.io/attacker/payload"}), None)],
        "helmrepository-foreign-url": [(hostile("HelmRepository", "source.toolkit.fluxcd.io/v1", "payload",
                                                {"interval": "1h", "url": "https://charts.attacker.example"}), None)],
        "bucket": [(hostile("Bucket", "source.toolkit.fluxcd.io/v1", "payload",
                            {"interval": "1m", "bucketName": "payload", "endpoint": "s3.attacker.example"}), None)],
        "kustomization-without-service-account": [(flux_ks("payload", {}), None)],
        "kustomization-other-service-account": [(flux_ks("payload", {"serviceAccountName": other_sa}), None)],
        "helmrelease-without-service-account": [(release, None)],
        "kustomization-kubeconfig": [(flux_ks("payload", {"serviceAccountName": team, "kubeConfig": {"secretRef": {"name": "other"}}}), None)],
    }


def fences_refusing(cluster: Cluster, team: str, obj: dict, namespace: str | None) -> set[str]:
    """The fences that refuse the team's object: 'RBAC', 'AppProject', 'vap:<name>'."""
    namespaced = KINDS[obj["kind"]][2]
    target = (namespace if namespace is not None else team) if namespaced else None
    obj = {**obj, "metadata": {**obj["metadata"], **({"namespace": target} if target else {})}}
    refused = set()
    if cluster.answers["engine"] == "flux":
        sa = (f"system:serviceaccount:{team}:{team}", {"system:serviceaccounts", f"system:serviceaccounts:{team}"})
        # Server-side apply: create, patch and read; the reconciler also prunes what leaves Git.
        for verb in ("get", "create", "patch", "delete"):
            if not cluster.rbac_allows(Request(sa, verb, obj["kind"], target)):
                refused.add("RBAC")
        user = sa
    else:
        project = next(p for p in cluster.of_kind("AppProject") if p["metadata"]["name"] == team)["spec"]
        if not project_allows(project, obj, target, cluster.answers["git_url"]):
            refused.add("AppProject")
        user = ("system:serviceaccount:argocd:argocd-application-controller", {"system:serviceaccounts"})
    refused |= {f"vap:{name}" for name in cluster.refusing_policies(Request(user, "create", obj["kind"], target, obj))}
    return refused


def project_allows(project: dict, obj: dict, namespace: str | None, repo_url: str) -> bool:
    """Argo CD's checks of an Application's resource against its AppProject (source: this repository)."""
    if not any(pattern_matches(r, repo_url) for r in project.get("sourceRepos") or []):
        return False
    group, _, namespaced = KINDS[obj["kind"]]
    entry = lambda items: any(pattern_matches(i["group"], group) and pattern_matches(i["kind"], obj["kind"]) for i in items or [])  # noqa: E731
    if not namespaced:
        return entry(project.get("clusterResourceWhitelist")) and not entry(project.get("clusterResourceBlacklist"))
    if not any(pattern_matches(d.get("namespace", "*"), namespace) and d.get("server") == "https://kubernetes.default.svc"
               for d in project.get("destinations") or []):
        return False
    if "namespaceResourceWhitelist" in project and not entry(project["namespaceResourceWhitelist"]):
        return False
    return not entry(project.get("namespaceResourceBlacklist"))


def pattern_matches(pattern: str, value: str) -> bool:
    return pattern == "*" or pattern == value or (pattern.endswith("*") and value.startswith(pattern[:-1]))


# --- CODEOWNERS and CI ------------------------------------------------------------------------------


def codeowners_pattern(pattern: str) -> re.Pattern:
    """GitHub/GitLab CODEOWNERS pattern (gitignore syntax) as a regex over repo-relative paths."""
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    regex = ""
    i = 0
    while i < len(body):
        if body.startswith("**", i):
            regex += ".*"
            i += 2
        elif body[i] == "*":
            regex += "[^/]*"
            i += 1
        elif body[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(body[i])
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    # A pattern matches the path itself or, as a directory, everything below it.
    return re.compile(f"^{prefix}{regex}(?:/.*)?$")


def required_owner_sets(codeowners: str, path: str) -> list[set[str]]:
    """Per section (GitHub has one), the owners of the last matching line: one approval from each set is needed."""
    sections: dict[str, list[str]] = {}
    current = ""
    for raw in codeowners.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if re.fullmatch(r"\^?\[[^\]]+\](\[\d+\])?( .*)?", line):
            current = line
            continue
        pattern, *who = line.split()
        if codeowners_pattern(pattern).match(path):
            sections[current] = who
    return [set(who) for who in sections.values() if who]


def test_the_codeowners_matcher_follows_last_match_wins():
    text = "* @o/platform\n/apps/*/web/ @o/team\n/apps/prod/ @o/platform\n\n[production]\n/apps/prod/ @o/platform\n"
    assert required_owner_sets(text, "apps/dev/web/kustomization.yaml") == [{"@o/team"}]
    assert required_owner_sets(text, "apps/prod/web/kustomization.yaml") == [{"@o/platform"}, {"@o/platform"}]
    assert required_owner_sets("docs/ @o/docs\n", "x/docs/a.md") == [{"@o/docs"}]
    assert required_owner_sets("/docs/ @o/docs\n", "x/docs/a.md") == []


def production_refusals(cluster: Cluster, team: str) -> set[str]:
    """'CODEOWNERS' if every production path of the team's apps needs an approval the team cannot give alone."""
    repo, answers = cluster.repo, cluster.answers
    text = next(p for p in (repo / ".github/CODEOWNERS", repo / "CODEOWNERS") if p.is_file()).read_text()
    org = answers["git_url"].split("/")[3]
    envs = answers["environments"]
    production = [e for e in envs if e in ("prod", "production") or e == envs[-1]]
    paths = [f"apps/{env}/{app}/kustomization.yaml" for env in production for app in team_apps(answers, team)]
    needs_platform = all(
        any(owners == {f"@{org}/platform"} for owners in required_owner_sets(text, path)) for path in paths)
    return {"CODEOWNERS"} if paths and needs_platform else set()


def remote_base_refusals(cluster: Cluster, team: str, tmp_path: Path) -> set[str]:
    """'CI' if scripts/check-remote-resources.py rejects a remote base in the team's overlay."""
    app = team_apps(cluster.answers, team)[0]
    env = cluster.answers["environments"][-1]
    copy = tmp_path / "repo"
    shutil.copytree(cluster.repo, copy, ignore=shutil.ignore_patterns(".git"))
    overlay = copy / "apps" / env / app / "kustomization.yaml"
    data = yaml.safe_load(overlay.read_text())
    data["resources"] = [*data.get("resources", []), "https://github.com/attacker/payload//deploy?ref=main"]
    overlay.write_text(yaml.safe_dump(data))
    run = subprocess.run([sys.executable, str(copy / "scripts/check-remote-resources.py"), str(copy)], capture_output=True, text=True)
    return {"CI"} if run.returncode == 1 and "attacker" in run.stdout else set()


def test_remote_resources_script_passes_the_generated_repo_and_catches_every_remote_form(cluster, tmp_path):
    script = cluster.repo / "scripts/check-remote-resources.py"
    clean = subprocess.run([sys.executable, str(script), str(cluster.repo)], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout
    # The validate job runs it on every change.
    ci = cluster.answers["ci"]
    if ci == "github":
        steps = yaml.safe_load((cluster.repo / ".github/workflows/validate.yaml").read_text())["jobs"]["validate"]["steps"]
        assert any("python scripts/check-remote-resources.py ." in step.get("run", "") for step in steps)
    elif ci == "gitlab":
        job = yaml.safe_load((cluster.repo / ".gitlab-ci.yml").read_text())["validate"]
        assert "python scripts/check-remote-resources.py ." in job["script"]
    if not cluster.answers["apps"]:
        return
    copy = tmp_path / "repo"
    shutil.copytree(cluster.repo, copy, ignore=shutil.ignore_patterns(".git"))
    overlay = copy / "apps" / cluster.answers["environments"][0] / cluster.answers["apps"][0]["name"] / "kustomization.yaml"
    original = yaml.safe_load(overlay.read_text())
    for entry in ("github.com/attacker/payload//deploy?ref=v1", "git@github.com:attacker/payload.git",
                  "ssh://git@example.com/attacker/payload.git", "https://example.com/payload.yaml", "../../../../etc"):
        overlay.write_text(yaml.safe_dump({**original, "resources": [*original["resources"], entry]}))
        run = subprocess.run([sys.executable, str(copy / "scripts/check-remote-resources.py"), str(copy)], capture_output=True, text=True)
        assert run.returncode == 1 and entry in run.stdout, entry


# --- the table in the docs ----------------------------------------------------------------------------


@dataclass
class Claim:
    change: str
    result: str
    fences: set[str]
    ids: list[str]


def claims(page: Path) -> list[Claim]:
    """Rows of the docs' tenant tables: the ones whose last column names attack ids."""
    found = []
    for line in page.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0].startswith(("A team", "---")):
            continue
        ids = re.findall(r"`([a-z0-9-]+)`", cells[4])
        if not ids:
            continue
        fences = set()
        for part in (p.strip() for p in cells[2].split(",")):
            if part == "none":
                continue
            vap = re.fullmatch(r"ValidatingAdmissionPolicy `([a-z0-9-]+)`", part)
            fences.add(f"vap:{vap.group(1)}" if vap else part)
        found.append(Claim(cells[0], cells[1], fences, ids))
    return found


def people_refusals(cluster: Cluster, team: str, attack: str) -> set[str]:
    group = next(t["groups"][0] for t in cluster.answers["teams"] if t["name"] == team)
    person = ("alice@example.com", {group, "system:authenticated"})
    requests = {
        "people-view-and-restart": [Request(person, "get", "Deployment", team), Request(person, "list", "ConfigMap", team),
                                    Request(person, "patch", "Deployment", team), Request(person, "delete", "Pod", team)],
        "people-read-secrets": [Request(person, "get", "Secret", team), Request(person, "list", "Secret", team)],
        "pods-exec": [Request(person, "create", "Pod", team, subresource="exec")],
    }[attack]
    if attack == "pods-exec" and cluster.answers["engine"] == "flux":
        sa = (f"system:serviceaccount:{team}:{team}", {"system:serviceaccounts"})
        requests.append(Request(sa, "create", "Pod", team, subresource="exec"))
    denied = [not cluster.rbac_allows(r) for r in requests]
    # Allowed only if every request is; refused only if every request (people's and reconciler's) is.
    return {"RBAC"} if (any(denied) if attack == "people-view-and-restart" else all(denied)) else set()


def evaluate(cluster: Cluster, team: str, attack: str, tmp_path: Path) -> set[str]:
    if attack.startswith("people-") or attack == "pods-exec":
        return people_refusals(cluster, team, attack)
    if attack == "production-without-platform":
        return production_refusals(cluster, team)
    if attack == "remote-base":
        return remote_base_refusals(cluster, team, tmp_path)
    objects = attacks(cluster, team)[attack]
    assert objects, attack
    if attack.startswith("own-"):
        # Every object must pass: report whatever refuses any of them.
        return set().union(*(fences_refusing(cluster, team, o, ns) for o, ns in objects))
    # An attack is refused when every object of it is refused; report the fences that refuse all of them.
    per_object = [fences_refusing(cluster, team, o, ns) for o, ns in objects]
    return set.intersection(*per_object)


def teams_with_apps(answers: dict) -> list[str]:
    return [t["name"] for t in answers["teams"] if team_apps(answers, t["name"])]


@pytest.mark.parametrize("page", ["security.md", "onboarding.md"])
def test_every_statement_of_the_tenant_table_holds(cluster, page, tmp_path):
    """Each row's attacks, run for every team with apps: refused by exactly the fences the row names, or
    admitted by every fence when the row says so."""
    rows = claims(cluster.repo / "docs" / page)
    ids = [i for row in rows for i in row.ids]
    assert len(ids) == len(set(ids))
    expected = {"own-app", "rolebinding-admin", "role-read-secrets", "networkpolicy-allow-all", "resourcequota", "limitrange",
                "ingress", "service-external-ips", "other-namespace", "namespace", "clusterrole", "remote-base",
                "production-without-platform", "people-view-and-restart", "people-read-secrets", "pods-exec"}
    if cluster.answers["engine"] == "flux":
        expected |= {"own-flux-objects", "pod-as-reconciler", "gitrepository-foreign-url", "ocirepository-foreign-url",
                     "helmrepository-foreign-url", "bucket", "kustomization-without-service-account",
                     "kustomization-other-service-account", "helmrelease-without-service-account", "kustomization-kubeconfig"}
    assert set(ids) == expected
    failures = []
    for team in teams_with_apps(cluster.answers):
        for row in rows:
            for attack in row.ids:
                got = evaluate(cluster, team, attack, tmp_path / f"{team}-{attack}")
                if row.result in ("applied", "allowed"):
                    ok = not got and not row.fences
                else:
                    ok = got == row.fences
                if not ok:
                    failures.append(f"{team}/{attack}: docs say {row.result} by {sorted(row.fences)}, fences refusing: {sorted(got)}")
    assert failures == []


def test_the_platforms_own_objects_pass_every_admission_policy(cluster):
    """No policy blocks the platform: every object the cluster's render puts into a tenant namespace (sources,
    Kustomizations, policies, quotas) and every object of the apps is admitted, whoever applies it."""
    tenants = {t["name"] for t in cluster.answers["teams"]}
    platform = ("system:serviceaccount:flux-system:kustomize-controller", {"system:serviceaccounts"})
    checked = 0
    for obj in cluster.objects:
        kind = obj.get("kind")
        if kind not in KINDS:
            continue
        namespace = (obj.get("metadata") or {}).get("namespace")
        if KINDS[kind][2] and namespace not in tenants:
            continue
        refused = cluster.refusing_policies(Request(platform, "create", kind, namespace, obj))
        assert refused == set(), (kind, namespace, obj["metadata"]["name"], refused)
        checked += 1
    assert checked
    # The policies exist and are bound where the Namespaces carry the label (a binding that selects nothing
    # would make every attack above pass for the wrong reason).
    for namespace in tenants:
        assert cluster.namespaces[namespace]["metadata"]["labels"]["gitops-forge.io/tenant"] == namespace
    bound = {b["spec"]["policyName"] for b in cluster.of_kind("ValidatingAdmissionPolicyBinding")}
    assert {p["metadata"]["name"] for p in cluster.of_kind("ValidatingAdmissionPolicy")} == bound


def test_the_tenant_reconciler_role_is_narrow_and_open_to_aggregation(cluster):
    if cluster.answers["engine"] != "flux":
        assert not [b for b in cluster.of_kind("RoleBinding") if b["roleRef"]["name"] in ("admin", "edit", "gitops-forge:tenant-reconciler")]
        return
    role = next(r for r in cluster.of_kind("ClusterRole") if r["metadata"]["name"] == "gitops-forge:tenant-reconciler")
    assert role["aggregationRule"]["clusterRoleSelectors"] == [{"matchLabels": {"gitops-forge.io/aggregate-to-tenant-reconciler": "true"}}]
    rules = cluster.cluster_role_rules("gitops-forge:tenant-reconciler")
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert not {g for g, _ in granted} & {"rbac.authorization.k8s.io", "networking.k8s.io", "admissionregistration.k8s.io"}
    assert not {r for _, r in granted} & {"pods/exec", "pods/attach", "pods/portforward", "resourcequotas", "limitranges", "buckets"}
    assert not {v for rule in rules for v in rule["verbs"]} & {"escalate", "bind", "impersonate", "*"}
    if cluster.answers["secrets"] == "sealed-secrets":
        assert ("bitnami.com", "sealedsecrets") in granted
    for team in cluster.answers["teams"]:
        binding = next(b for b in cluster.of_kind("RoleBinding")
                       if b["metadata"]["namespace"] == team["name"] and b["metadata"]["name"] == "gitops-forge-tenant-reconciler")
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "gitops-forge:tenant-reconciler"}


def test_each_team_has_its_own_git_credentials_and_rotation_touches_only_them(cluster):
    """m2: every team with apps has its own git-auth per environment; the rotation commands in docs/secrets.md
    and in each file's header write that team's files only, and create a new key instead of copying the cluster's."""
    answers, repo = cluster.answers, cluster.repo
    if answers["engine"] != "flux":
        return
    suffix = ".yaml" if answers["secrets"] == "sealed-secrets" else ".sops.yaml"
    docs = (repo / "docs/secrets.md").read_text()
    files_of = {}
    for team in teams_with_apps(answers):
        files = {f"apps/{env}/git-auth-{team}{suffix}" for env in answers["environments"]}
        files_of[team] = files
        for name in files:
            text = (repo / name).read_text()
            doc = next(d for d in yaml.safe_load_all(text) if d)
            assert doc["metadata"] == {**doc["metadata"], "name": "git-auth", "namespace": team}
            written = set(re.findall(r"--output (\S+)", text))
            assert written == {name}, name
            assert "ssh-keygen" in text and ".data.identity}" not in text, name
        if answers["git_url"].startswith("ssh://") and answers["secrets"] == "sealed-secrets":
            block = re.search(rf"Team `{re.escape(team)}` \(rotating .*?\n```sh\n(.*?)```", docs, re.S)
            assert block, team
            commands = block.group(1)
            assert set(re.findall(r"--output (\S+)", commands)) == files, team
            assert set(re.findall(r"--namespace (\S+)", commands)) == {team}
            assert "ssh-keygen" in commands and ".data.identity}" not in commands
    # Separate files: no two teams share one.
    every = [f for files in files_of.values() for f in files]
    assert len(every) == len(set(every))


def test_the_source_allowlist_admits_its_urls_and_prefixes_only(tmp_path_factory):
    generated = generate(tmp_path_factory, {"engine": "flux", "tenant_source_allowlist": [
        "https://charts.example.com/", "oci://ghcr.io/acme/charts/web"]})
    cluster = Cluster([o.data for r in generated.rendered for o in r.objects], generated.answers, generated.repo)
    team = generated.answers["teams"][0]["name"]
    sa = (f"system:serviceaccount:{team}:{team}", set())

    def refused(kind: str, url: str) -> set[str]:
        obj = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": kind, "metadata": {"name": "x", "namespace": team},
               "spec": {"interval": "1h", "url": url}}
        return cluster.refusing_policies(Request(sa, "create", kind, team, obj))

    assert refused("HelmRepository", "https://charts.example.com/stable") == set()
    assert refused("OCIRepository", "oci://ghcr.io/acme/charts/web") == set()
    assert refused("GitRepository", generated.answers["git_url"]) == set()
    for kind, url in (("HelmRepository", "https://charts.example.com.attacker.example/"),
                      ("OCIRepository", "oci://ghcr.io/acme/charts/web-evil"), ("GitRepository", FOREIGN)):
        assert refused(kind, url) == {"gitops-forge-tenant-sources"}, url
