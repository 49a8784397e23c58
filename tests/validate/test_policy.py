"""Each policy check fails on a violating object and passes on the fixed one."""

from __future__ import annotations

import pytest

from generator.validate.policy import SKIP_ANNOTATION, check_objects


def ids(*objects: dict) -> set[str]:
    return {v.check.id for _, v in check_objects(list(objects))}


def pod(d: dict) -> dict:
    return d["spec"]["template"]["spec"]


def container(d: dict) -> dict:
    return pod(d)["containers"][0]


MUTATIONS = {
    "GF001": lambda d: pod(d)["securityContext"].pop("runAsNonRoot"),
    "GF002": lambda d: container(d)["securityContext"].update(privileged=True),
    "GF003": lambda d: container(d)["securityContext"].pop("allowPrivilegeEscalation"),
    "GF004": lambda d: container(d)["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
    "GF005": lambda d: container(d)["securityContext"]["capabilities"].update(add=["NET_BIND_SERVICE", "SYS_ADMIN"]),
    "GF006": lambda d: pod(d)["securityContext"].pop("seccompProfile"),
    "GF007": lambda d: pod(d).update(hostNetwork=True),
    "GF008": lambda d: pod(d).update(volumes=[{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]),
    "GF009": lambda d: container(d)["ports"][0].update(hostPort=8080),
    "GF010": lambda d: container(d)["resources"].pop("limits"),
    "GF011": lambda d: container(d).pop("readinessProbe"),
    "GF012": lambda d: container(d).update(image="ghcr.io/acme/web:latest"),
}


def test_good_deployment_passes(good_deployment):
    assert ids(good_deployment()) == set()


@pytest.mark.parametrize("check_id", sorted(MUTATIONS))
def test_pod_check_fails(check_id, good_deployment):
    d = good_deployment()
    MUTATIONS[check_id](d)
    assert ids(d) == {check_id}


def test_root_user_and_container_override(good_deployment):
    d = good_deployment()
    container(d)["securityContext"]["runAsUser"] = 0
    assert ids(d) == {"GF001"}
    d = good_deployment()
    container(d)["securityContext"]["runAsNonRoot"] = False  # overrides the pod-level true
    assert ids(d) == {"GF001"}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/acme/web", {"GF012"}),
        ("localhost:5000/web", {"GF012"}),  # the colon belongs to the registry, not a tag
        ("ghcr.io/acme/web:latest@sha256:" + "0" * 64, set()),
        ("localhost:5000/web:1.0", set()),
    ],
)
def test_image_tags(image, expected, good_deployment):
    d = good_deployment()
    container(d)["image"] = image
    assert ids(d) == expected


def test_init_containers_and_cronjobs_are_checked(good_deployment):
    template = good_deployment()["spec"]["template"]
    template["spec"]["initContainers"] = [{**template["spec"]["containers"][0], "name": "init", "securityContext": {}}]
    for c in template["spec"]["containers"]:
        c.pop("livenessProbe"), c.pop("readinessProbe")  # not required of run-to-completion pods
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report"}, "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}}
    found = {v.message for _, v in check_objects([cron])}
    assert found == {
        "Privilege escalation must be disabled: init container 'init'",
        "Containers must drop all capabilities: init container 'init'",
    }


def secret(**extra) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, **extra}


def test_plaintext_secret():
    assert ids(secret(stringData={"password": "hunter2"})) == {"GF013"}
    assert ids(secret(data={"password": "aHVudGVyMg=="})) == {"GF013"}
    assert ids(secret(data={"password": "ENC[AES256_GCM,data:...]"}, sops={"version": "3.9"})) == set()
    assert ids(secret(type="kubernetes.io/service-account-token")) == set()


def role(kind: str, rules: list[dict]) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "r"}, "rules": rules}


def test_rbac_wildcards_and_escalation():
    assert ids(role("Role", [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}])) == {"GF014"}
    assert ids(role("ClusterRole", [{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["*"]}])) == {"GF014"}
    assert ids(role("ClusterRole", [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind", "escalate"]}])) == {"GF015"}
    assert ids(role("Role", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}])) == set()


def binding(kind: str, subject: dict) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [subject],
    }


def test_cluster_admin_bindings():
    assert ids(binding("RoleBinding", {"kind": "ServiceAccount", "name": "team-a", "namespace": "team-a"})) == {"GF016"}
    assert ids(binding("ClusterRoleBinding", {"kind": "Group", "name": "platform", "apiGroup": "rbac.authorization.k8s.io"})) == {"GF016"}
    assert ids(binding("ClusterRoleBinding", {"kind": "Group", "name": "system:masters", "apiGroup": "rbac.authorization.k8s.io"})) == set()


def test_replicas_conflict_with_hpa(good_deployment):
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 5},
    }
    d = good_deployment()
    d["spec"]["replicas"] = 3
    assert ids(d, hpa) == {"GF017"}
    assert ids(d) == set()
    assert ids(good_deployment(), hpa) == set()


def test_skip_annotation(good_deployment):
    d = good_deployment()
    container(d).pop("livenessProbe")
    container(d)["image"] = "ghcr.io/acme/web"
    d["metadata"]["annotations"] = {SKIP_ANNOTATION: "GF011, GF012"}
    assert ids(d) == set()


def argo_app(project, kind="Application") -> dict:
    spec = {"source": {"repoURL": "https://example.com/r.git", "path": "apps"}, "destination": {"server": "https://kubernetes.default.svc"}}
    if project is not None:
        spec["project"] = project
    if kind == "ApplicationSet":
        spec = {"generators": [], "template": {"metadata": {"name": "x"}, "spec": spec}}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "metadata": {"name": "a", "namespace": "argocd"}, "spec": spec}


def test_argo_default_project():
    assert ids(argo_app("default")) == {"GF018"}
    assert ids(argo_app(None)) == {"GF018"}
    assert ids(argo_app("default", kind="ApplicationSet")) == {"GF018"}
    assert ids(argo_app("shop")) == set()


@pytest.mark.parametrize(
    ("api_version", "kind", "replacement"),
    [
        ("kustomize.toolkit.fluxcd.io/v1beta2", "Kustomization", "kustomize.toolkit.fluxcd.io/v1"),
        ("source.toolkit.fluxcd.io/v1beta2", "HelmRepository", "source.toolkit.fluxcd.io/v1"),
        ("helm.toolkit.fluxcd.io/v2beta1", "HelmRelease", "helm.toolkit.fluxcd.io/v2"),
        ("notification.toolkit.fluxcd.io/v1beta2", "Alert", "notification.toolkit.fluxcd.io/v1beta3"),
        ("notification.toolkit.fluxcd.io/v1beta1", "Receiver", "notification.toolkit.fluxcd.io/v1"),
        ("image.toolkit.fluxcd.io/v1beta2", "ImagePolicy", "image.toolkit.fluxcd.io/v1"),
        ("policy/v1beta1", "PodDisruptionBudget", "policy/v1"),
        ("autoscaling/v2beta2", "HorizontalPodAutoscaler", "autoscaling/v2"),
        ("extensions/v1beta1", "Ingress", "networking.k8s.io/v1"),
        ("batch/v1beta1", "CronJob", "batch/v1"),
    ],
)
def test_removed_api_versions_name_their_replacement(api_version, kind, replacement):
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    [(_, v)] = check_objects([obj])
    assert v.check.id == "GF019" and v.message.endswith(f"use {replacement}")


def test_current_api_versions_pass():
    for api_version, kind in [("notification.toolkit.fluxcd.io/v1beta3", "Alert"), ("helm.toolkit.fluxcd.io/v2", "HelmRelease"), ("policy/v1", "PodDisruptionBudget")]:
        assert ids({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}) == set()


def test_removed_kind_says_it_is_gone():
    [(_, v)] = check_objects([{"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "x"}}])
    assert v.check.id == "GF019" and "no longer exists" in v.message


def test_container_without_image_is_reported_once(good_deployment):
    d = good_deployment()
    pod(d)["containers"].insert(0, {"name": "wbe", "resources": {"limits": {"memory": "256Mi"}}})
    found = [(v.check.id, v.detail) for _, v in check_objects([d])]
    assert [c for c, _ in found] == ["GF020"]
    assert found[0][1].startswith("container 'wbe'")
