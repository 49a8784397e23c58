"""Best-practice checks on rendered objects: Pod Security "restricted", resources, probes, images, secrets, RBAC,
Argo CD projects and API versions that were removed or are on their way out.

One table row per check: its id, severity, message and fix, and a function that yields one detail string per
violation in an object ("container 'web'"). A documented exception is an annotation on the object:
``gitops-forge.io/skip-checks: "GF010,GF011"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .checks import Check, Violation

__all__ = [
    "CHECKS", "Check", "SKIP_ANNOTATION", "Violation", "check_objects", "imageless_containers", "replacement_api",
    "skipped_checks",
]

SKIP_ANNOTATION = "gitops-forge.io/skip-checks"

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
RUN_TO_COMPLETION = {"Job", "CronJob", "Pod"}  # probes make no sense for these
DANGEROUS_VERBS = {"escalate", "bind", "impersonate"}


@dataclass(frozen=True)
class _Context:
    hpa_targets: frozenset[tuple[str | None, str, str]]  # (namespace, kind, name)


# --- helpers -----------------------------------------------------------------------------------------


def _pod_spec(obj: dict) -> dict | None:
    path = POD_SPEC_PATHS.get(obj.get("kind"))
    if path is None:
        return None
    node = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _containers(pod: dict, init: bool = True, imageless: bool = False) -> Iterator[tuple[str, dict]]:
    """(label, container) pairs. Containers without an image are left out unless asked for: they are the
    leftovers of a patch that named a container the base does not have (GF020 reports them once, instead of
    every container check reporting them again)."""
    groups = ("initContainers", "containers") if init else ("containers",)
    for group in groups:
        for c in pod.get(group) or []:
            if not isinstance(c, dict) or (not c.get("image") and not imageless):
                continue
            yield f"{'init container' if group == 'initContainers' else 'container'} {c.get('name')!r}", c


def _sc(node: dict) -> dict:
    return node.get("securityContext") or {}


def _pod_check(fn: Callable[[dict], Iterator[str]]) -> Callable[[dict, _Context], Iterator[str]]:
    """Lift a check on a pod spec to a check on any object (non-workloads pass)."""

    def run(obj: dict, _ctx: _Context) -> Iterator[str]:
        pod = _pod_spec(obj)
        return fn(pod) if pod is not None else iter(())

    return run


# --- pod checks --------------------------------------------------------------------------------------


def _non_root(pod: dict) -> Iterator[str]:
    psc = _sc(pod)
    for label, c in _containers(pod):
        sc = _sc(c)
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            yield f"{label} (runAsNonRoot is not true)"
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            yield f"{label} (runAsUser is 0)"


def _privileged(pod: dict) -> Iterator[str]:
    return (label for label, c in _containers(pod) if _sc(c).get("privileged") is True)


def _escalation(pod: dict) -> Iterator[str]:
    return (label for label, c in _containers(pod) if _sc(c).get("allowPrivilegeEscalation") is not False)


def _capabilities(c: dict, key: str) -> set[str]:
    return set((_sc(c).get("capabilities") or {}).get(key) or [])


def _drop_all(pod: dict) -> Iterator[str]:
    return (label for label, c in _containers(pod) if "ALL" not in _capabilities(c, "drop"))


def _added_caps(pod: dict) -> Iterator[str]:
    for label, c in _containers(pod):
        extra = _capabilities(c, "add") - {"NET_BIND_SERVICE"}
        if extra:
            yield f"{label} adds {', '.join(sorted(extra))}"


def _seccomp(pod: dict) -> Iterator[str]:
    pod_type = (_sc(pod).get("seccompProfile") or {}).get("type")
    for label, c in _containers(pod):
        if (_sc(c).get("seccompProfile") or {}).get("type", pod_type) not in ("RuntimeDefault", "Localhost"):
            yield label


def _host_namespaces(pod: dict) -> Iterator[str]:
    return (key for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key) is True)


def _host_path(pod: dict) -> Iterator[str]:
    return (f"volume {v.get('name')!r}" for v in pod.get("volumes") or [] if "hostPath" in v)


def _host_port(pod: dict) -> Iterator[str]:
    for label, c in _containers(pod):
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                yield f"{label} hostPort {p['hostPort']}"


def _resources(pod: dict) -> Iterator[str]:
    for label, c in _containers(pod):
        res = c.get("resources") or {}
        missing = [f"{k}.{r}" for k in ("requests", "limits") for r in ("cpu", "memory") if r not in (res.get(k) or {})]
        if missing:
            yield f"{label} has no {', '.join(missing)}"


def _image(pod: dict) -> Iterator[str]:
    for label, c in _containers(pod):
        image = str(c.get("image", ""))
        if "@" in image:  # a digest pins the content whatever the tag says
            continue
        name = image.rsplit("/", 1)[-1]
        if ":" not in name:
            yield f"{label} image {image!r} has no tag"
        elif name.rsplit(":", 1)[1] == "latest":
            yield f"{label} image {image!r} uses :latest"


def imageless_containers(obj: dict) -> list[str]:
    """Names of the containers of a workload that have no image."""
    pod = _pod_spec(obj)
    return [str(c.get("name")) for _, c in _containers(pod, imageless=True) if not c.get("image")] if pod else []


def _imageless(pod: dict) -> Iterator[str]:
    for label, c in _containers(pod, imageless=True):
        if not c.get("image"):
            yield (
                f"{label} (a strategic-merge patch most likely names a container the base does not have, "
                "and kustomize added it instead of failing)"
            )


# --- object checks -----------------------------------------------------------------------------------


def _probes(obj: dict, _ctx: _Context) -> Iterator[str]:
    pod = _pod_spec(obj)
    if pod is None or obj.get("kind") in RUN_TO_COMPLETION:
        return
    for label, c in _containers(pod, init=False):
        missing = [p for p in ("livenessProbe", "readinessProbe") if not c.get(p)]
        if missing:
            yield f"{label} has no {' or '.join(missing)}"


def _plaintext_secret(obj: dict, _ctx: _Context) -> Iterator[str]:
    # SOPS-encrypted secrets carry a top-level `sops` block and are safe to commit.
    if obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1" and "sops" not in obj:
        keys = sorted({*(obj.get("data") or {}), *(obj.get("stringData") or {})})
        if keys:
            yield f"keys {', '.join(keys)}"


def _rules(obj: dict) -> list[dict]:
    if obj.get("kind") not in ("Role", "ClusterRole") or not str(obj.get("apiVersion")).startswith("rbac."):
        return []
    return [r for r in obj.get("rules") or [] if isinstance(r, dict)]


def _wildcards(obj: dict, _ctx: _Context) -> Iterator[str]:
    for i, rule in enumerate(_rules(obj)):
        fields = [f for f in ("apiGroups", "resources", "verbs") if "*" in (rule.get(f) or [])]
        if fields:
            yield f"rules[{i}] has '*' in {', '.join(fields)}"


def _dangerous_verbs(obj: dict, _ctx: _Context) -> Iterator[str]:
    for i, rule in enumerate(_rules(obj)):
        verbs = DANGEROUS_VERBS & set(rule.get("verbs") or [])
        if verbs:
            yield f"rules[{i}] allows {', '.join(sorted(verbs))}"


def _cluster_admin(obj: dict, _ctx: _Context) -> Iterator[str]:
    ref = obj.get("roleRef") or {}
    if obj.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
        return
    if (ref.get("kind"), ref.get("name")) != ("ClusterRole", "cluster-admin"):
        return
    for s in obj.get("subjects") or []:
        name = str(s.get("name", ""))
        kube_system_sa = s.get("kind") == "ServiceAccount" and s.get("namespace") == "kube-system"
        if not (name.startswith("system:") or kube_system_sa):
            yield f"{s.get('kind')} {name!r}"


def _argo_default_project(obj: dict, _ctx: _Context) -> Iterator[str]:
    if not str(obj.get("apiVersion", "")).startswith("argoproj.io/"):
        return
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "ApplicationSet":
        spec = (spec.get("template") or {}).get("spec") or {}
    elif kind != "Application":
        return
    if spec.get("project", "default") in ("default", "", None):
        yield "spec.project is 'default'" if spec.get("project") else "spec.project is not set"


# Removed or deprecated API versions: (group, version) -> {kind (or "*"): replacement apiVersion, or "" when the
# kind is gone for good}. Flux's from the flux2 migration notes (`flux migrate`), Kubernetes' from its
# deprecated-API migration guide.
_FLUX_CURRENT = {
    "kustomize.toolkit.fluxcd.io": {"*": "v1"},
    "source.toolkit.fluxcd.io": {"*": "v1"},
    "helm.toolkit.fluxcd.io": {"*": "v2"},
    "notification.toolkit.fluxcd.io": {"Alert": "v1beta3", "Provider": "v1beta3", "Receiver": "v1"},
    "image.toolkit.fluxcd.io": {"*": "v1"},
}
_FLUX_OLD = {
    "kustomize.toolkit.fluxcd.io": ("v1beta1", "v1beta2"),
    "source.toolkit.fluxcd.io": ("v1beta1", "v1beta2"),
    "helm.toolkit.fluxcd.io": ("v2beta1", "v2beta2"),
    "notification.toolkit.fluxcd.io": ("v1beta1", "v1beta2"),
    "image.toolkit.fluxcd.io": ("v1alpha1", "v1alpha2", "v1beta1", "v1beta2"),
}
_K8S_REPLACED = {
    ("extensions", "v1beta1"): {
        "Deployment": "apps/v1", "DaemonSet": "apps/v1", "ReplicaSet": "apps/v1",
        "Ingress": "networking.k8s.io/v1", "NetworkPolicy": "networking.k8s.io/v1", "PodSecurityPolicy": "",
    },
    ("apps", "v1beta1"): {"*": "apps/v1"},
    ("apps", "v1beta2"): {"*": "apps/v1"},
    ("policy", "v1beta1"): {"PodDisruptionBudget": "policy/v1", "PodSecurityPolicy": ""},
    ("autoscaling", "v2beta1"): {"*": "autoscaling/v2"},
    ("autoscaling", "v2beta2"): {"*": "autoscaling/v2"},
    ("batch", "v1beta1"): {"*": "batch/v1"},
    ("networking.k8s.io", "v1beta1"): {"*": "networking.k8s.io/v1"},
    ("rbac.authorization.k8s.io", "v1beta1"): {"*": "rbac.authorization.k8s.io/v1"},
    ("apiextensions.k8s.io", "v1beta1"): {"*": "apiextensions.k8s.io/v1"},
    ("admissionregistration.k8s.io", "v1beta1"): {"*": "admissionregistration.k8s.io/v1"},
    ("storage.k8s.io", "v1beta1"): {"*": "storage.k8s.io/v1"},
    ("scheduling.k8s.io", "v1beta1"): {"*": "scheduling.k8s.io/v1"},
    ("coordination.k8s.io", "v1beta1"): {"*": "coordination.k8s.io/v1"},
    ("certificates.k8s.io", "v1beta1"): {"*": "certificates.k8s.io/v1"},
    ("discovery.k8s.io", "v1beta1"): {"*": "discovery.k8s.io/v1"},
    ("node.k8s.io", "v1beta1"): {"*": "node.k8s.io/v1"},
    ("events.k8s.io", "v1beta1"): {"*": "events.k8s.io/v1"},
    ("flowcontrol.apiserver.k8s.io", "v1beta1"): {"*": "flowcontrol.apiserver.k8s.io/v1"},
    ("flowcontrol.apiserver.k8s.io", "v1beta2"): {"*": "flowcontrol.apiserver.k8s.io/v1"},
    ("flowcontrol.apiserver.k8s.io", "v1beta3"): {"*": "flowcontrol.apiserver.k8s.io/v1"},
}


def replacement_api(api_version: str, kind: str) -> str | None:
    """The apiVersion to use instead of a removed or deprecated one ("" if the kind is gone); None if current."""
    group, _, version = api_version.rpartition("/")
    if version in _FLUX_OLD.get(group, ()):
        current = _FLUX_CURRENT[group]
        return f"{group}/{current.get(kind, current.get('*', ''))}"
    table = _K8S_REPLACED.get((group, version))
    if table is None:
        return None
    return table.get(kind, table.get("*"))


def _deprecated_api(obj: dict, _ctx: _Context) -> Iterator[str]:
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    replacement = replacement_api(api_version, kind)
    if replacement is None:
        return
    if replacement:
        yield f"{api_version} {kind}: use {replacement}"
    else:
        yield f"{api_version} {kind} no longer exists in any version"


def _replicas_with_hpa(obj: dict, ctx: _Context) -> Iterator[str]:
    meta = obj.get("metadata") or {}
    target = (meta.get("namespace"), obj.get("kind"), meta.get("name"))
    if target in ctx.hpa_targets and "replicas" in (obj.get("spec") or {}):
        yield f"spec.replicas is {obj['spec']['replicas']}"


CHECKS: list[tuple[Check, Callable[[dict, _Context], Iterator[str]]]] = [
    (
        Check("GF001", "error", "Containers must run as non-root",
              "Set securityContext.runAsNonRoot: true on the pod and a non-zero runAsUser."),
        _pod_check(_non_root),
    ),
    (
        Check("GF002", "error", "Privileged containers are not allowed",
              "Remove securityContext.privileged or set it to false."),
        _pod_check(_privileged),
    ),
    (
        Check("GF003", "error", "Privilege escalation must be disabled",
              "Set securityContext.allowPrivilegeEscalation: false on every container."),
        _pod_check(_escalation),
    ),
    (
        Check("GF004", "error", "Containers must drop all capabilities",
              'Set securityContext.capabilities.drop: ["ALL"] on every container.'),
        _pod_check(_drop_all),
    ),
    (
        Check("GF005", "error", "Only NET_BIND_SERVICE may be added",
              "Remove the other entries from securityContext.capabilities.add."),
        _pod_check(_added_caps),
    ),
    (
        Check("GF006", "error", "A seccomp profile must be set",
              "Set securityContext.seccompProfile.type: RuntimeDefault on the pod."),
        _pod_check(_seccomp),
    ),
    (
        Check("GF007", "error", "Host namespaces are not allowed",
              "Remove hostNetwork, hostPID and hostIPC from the pod spec."),
        _pod_check(_host_namespaces),
    ),
    (
        Check("GF008", "error", "hostPath volumes are not allowed",
              "Use an emptyDir, configMap, secret or persistentVolumeClaim volume instead."),
        _pod_check(_host_path),
    ),
    (
        Check("GF009", "error", "hostPort is not allowed",
              "Remove hostPort and expose the port through a Service."),
        _pod_check(_host_port),
    ),
    (
        Check("GF010", "warning", "Resource requests and limits must be set",
              "Set resources.requests and resources.limits for cpu and memory."),
        _pod_check(_resources),
    ),
    (
        Check("GF011", "warning", "Liveness and readiness probes must be set",
              "Add livenessProbe and readinessProbe to every long-running container."),
        _probes,
    ),
    (
        Check("GF012", "error", "Images must be pinned to a tag other than latest",
              "Use an explicit version tag (or a digest) and let Renovate bump it."),
        _pod_check(_image),
    ),
    (
        Check("GF013", "error", "Plaintext Secret committed to Git",
              "Replace it with a SealedSecret (kubeseal) or encrypt it with SOPS."),
        _plaintext_secret,
    ),
    (
        Check("GF014", "error", "RBAC rule uses a wildcard",
              "List the apiGroups, resources and verbs the subject needs."),
        _wildcards,
    ),
    (
        Check("GF015", "error", "RBAC rule allows privilege escalation",
              "Remove the escalate, bind and impersonate verbs."),
        _dangerous_verbs,
    ),
    (
        Check("GF016", "error", "cluster-admin is bound to a non-system subject",
              "Bind the aggregated `admin` or `edit` ClusterRole, or a narrower Role."),
        _cluster_admin,
    ),
    (
        Check("GF017", "warning", "spec.replicas is set while an HPA scales this workload",
              "Remove spec.replicas; the GitOps controller would fight the HPA."),
        _replicas_with_hpa,
    ),
    (
        Check("GF018", "error", "Argo CD Application uses the `default` project",
              "Create an AppProject per team that limits its source repos, destinations and kinds, and name it in "
              "spec.project."),
        _argo_default_project,
    ),
    (
        Check("GF019", "error", "API version is removed or deprecated",
              "Change apiVersion to the replacement named in the message (Flux: `flux migrate` rewrites the files); "
              "check the fields that changed between the versions."),
        _deprecated_api,
    ),
    (
        Check("GF020", "error", "Container has no image",
              "Make the patch's container name match a container of the base exactly (kustomize adds a new, empty "
              "container when the name in a strategic-merge patch matches none), or give the container an image."),
        _pod_check(_imageless),
    ),
]
DEPRECATED_API_CHECK = "GF019"


def skipped_checks(obj: dict) -> set[str]:
    """Check ids an object opts out of with the skip annotation."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return {s.strip() for s in str(annotations.get(SKIP_ANNOTATION, "")).split(",") if s.strip()}


def check_objects(objects: list[dict]) -> list[tuple[dict, Violation]]:
    """Run every check on every object. Objects are one entrypoint's render, so HPAs and targets meet."""
    hpa_targets = set()
    for o in objects:
        if o.get("kind") == "HorizontalPodAutoscaler":
            ref = (o.get("spec") or {}).get("scaleTargetRef") or {}
            hpa_targets.add(((o.get("metadata") or {}).get("namespace"), ref.get("kind"), ref.get("name")))
    ctx = _Context(frozenset(hpa_targets))
    out = []
    for obj in objects:
        skipped = skipped_checks(obj)
        for check, run in CHECKS:
            if check.id not in skipped:
                out += [(obj, Violation(check, detail)) for detail in run(obj, ctx)]
    return out
