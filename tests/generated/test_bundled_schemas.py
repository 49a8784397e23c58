"""The CRD schemas bundled with gitops-forge (generator/schemas/) cover every generated repo at the versions the
template pins, so `gitops-forge validate` needs no --schema-location and no network for a generated repo."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from generator.cli import app
from generator.validate.schemas import BUNDLED_SCHEMAS, SchemaStore, bundled_file, bundled_schemas

from .test_generated_repos import VARIANTS
from .variants import TEMPLATE, generate

SOURCES = TEMPLATE / "scripts" / "crd_sources.yaml"
# Nothing listens on port 9: every request through this proxy fails the way an offline machine's does.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, tmp_path_factory):
    return request.param, generate(tmp_path_factory, VARIANTS[request.param])


def config() -> dict:
    return yaml.safe_load(SOURCES.read_text(encoding="utf-8"))


# --- what generated repos pin ------------------------------------------------------------------------


def _version(value) -> str:
    return str(value).strip().strip('"').removeprefix("v")


def _chart_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def pins(repo: Path, objects: list[dict]) -> dict[str, set[str]]:
    """name -> versions this repo pins: charts (HelmRelease, its OCIRepository, Argo CD Application sources) by
    chart name, Flux and Argo CD by the versions its CI installs or its FluxInstance runs."""
    found: dict[str, set[str]] = {}

    def add(name: str, version) -> None:
        if name and version:
            found.setdefault(name, set()).add(_version(version))

    oci = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects
           if o.get("kind") == "OCIRepository" and o.get("apiVersion", "").startswith("source.toolkit.fluxcd.io/")}
    for o in objects:
        api, kind, spec = o.get("apiVersion", ""), o.get("kind"), o.get("spec") or {}
        if kind == "HelmRelease" and api.startswith("helm.toolkit.fluxcd.io/"):
            chart = (spec.get("chart") or {}).get("spec") or {}
            add(chart.get("chart", ""), chart.get("version"))
            ref = spec.get("chartRef") or {}
            if ref.get("kind") == "OCIRepository":
                source = oci.get((ref.get("namespace") or o["metadata"].get("namespace"), ref.get("name")))
                assert source, f"HelmRelease {o['metadata']['name']}: chartRef {ref} is not in the repo"
                tag = (source["spec"].get("ref") or {})
                add(_chart_of(source["spec"]["url"]), tag.get("tag") or tag.get("semver"))
        elif kind in ("Application", "ApplicationSet") and api.startswith("argoproj.io/"):
            template = spec.get("template", {}).get("spec", {}) if kind == "ApplicationSet" else spec
            for src in [*( [template["source"]] if template.get("source") else []), *(template.get("sources") or [])]:
                if src.get("chart"):
                    add(src["chart"], src.get("targetRevision"))
                elif str(src.get("repoURL", "")).startswith("oci://"):
                    add(_chart_of(src["repoURL"]), src.get("targetRevision"))
        elif kind == "FluxInstance" and api.startswith("fluxcd.controlplane.io/"):
            add("flux", (spec.get("distribution") or {}).get("version", "").removesuffix(".x"))
    ci = [p for p in [*repo.glob(".github/workflows/*.y*ml"), repo / ".gitlab-ci.yml"] if p.is_file()]
    for path in ci:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"\bFLUX_VERSION:\s*\"?v?([0-9][\w.]*)", text):
            add("flux", m.group(1))
        for m in re.finditer(r"\bARGOCD_VERSION:\s*\"?v?([0-9][\w.]*)", text):
            add("argocd", m.group(1))
        for job in (yaml.safe_load(text) or {}).get("jobs", {}).values() if path.parent.name == "workflows" else ():
            for step in job.get("steps") or []:
                uses = str(step.get("uses", ""))
                if uses.startswith("fluxcd/flux2/action@"):  # the CLI version it installs, else the action's tag
                    ref = uses.partition("@")[2]
                    add("flux", (step.get("with") or {}).get("version") or (ref if re.match(r"v?\d", ref) else ""))
    return found


def _matches(pinned: str, source: str) -> bool:
    """The template's version against the config's: equal, or within the config's major.minor ("2.9")."""
    return pinned == source or pinned.startswith(source + ".")


@pytest.fixture(scope="module")
def all_pins(tmp_path_factory) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in sorted(VARIANTS):
        g = generate(tmp_path_factory, VARIANTS[name])
        for key, versions in pins(g.repo, [o.data for r in g.rendered for o in r.objects]).items():
            out.setdefault(key, set()).update(versions)
    return out


def test_pin_reader_finds_the_pins_of_charts_and_apps(tmp_path):
    objects = [
        {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "a", "namespace": "x"},
         "spec": {"chart": {"spec": {"chart": "sealed-secrets", "version": "2.18.5"}}}},
        {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "b", "namespace": "m"},
         "spec": {"chartRef": {"kind": "OCIRepository", "name": "kps"}}},
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository", "metadata": {"name": "kps", "namespace": "m"},
         "spec": {"url": "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack", "ref": {"tag": "88.5.3"}}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "c"},
         "spec": {"sources": [{"chart": "argo-cd", "targetRevision": "10.1.1"}, {"repoURL": "https://x", "ref": "values"}]}},
        {"apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxInstance", "metadata": {"name": "flux"},
         "spec": {"distribution": {"version": "2.9.x"}}},
    ]
    (tmp_path / ".gitlab-ci.yml").write_text('variables:\n  ARGOCD_VERSION: "v3.4.4"\n')
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yaml").write_text(yaml.safe_dump({"jobs": {"flux": {"steps": [
        {"uses": "fluxcd/flux2/action@889be9d6cc8afa8ed639e1e1ba4ab678e3b38d8c", "with": {"version": "2.9.5"}}]}}}))
    assert pins(tmp_path, objects) == {"sealed-secrets": {"2.18.5"}, "kube-prometheus-stack": {"88.5.3"},
                                       "argo-cd": {"10.1.1"}, "flux": {"2.9", "2.9.5"}, "argocd": {"3.4.4"}}


def test_every_pin_of_the_template_has_its_schemas_at_that_version(all_pins):
    """A chart or Flux/Argo CD version bump in the template fails here until scripts/crd_sources.yaml is moved
    to the same version and the schemas are rebuilt (python scripts/build_crd_schemas.py --fetch)."""
    cfg = config()
    by_pin: dict[str, list[tuple[str, str]]] = {}
    for src in [*cfg["sources"], *(cfg.get("hand_written") or [])]:
        for key, version in (src.get("pins") or {}).items():
            by_pin.setdefault(key, []).append((src["name"], _version(version)))
    assert {"flux", "argocd", "argo-cd", "sealed-secrets", "kube-prometheus-stack"} <= set(all_pins)
    problems = []
    for key, versions in sorted(all_pins.items()):
        if key in (cfg.get("no_crds") or []):
            continue
        if key not in by_pin:
            problems.append(f"{key} {sorted(versions)}: not in scripts/crd_sources.yaml (add its CRDs, or list it "
                            "under no_crds)")
            continue
        for version in sorted(versions):
            stale = [f"{name} {v}" for name, v in by_pin[key] if not _matches(version, v)]
            if stale:
                problems.append(f"{key} {version} is pinned, the schemas are built for {', '.join(stale)}")
    assert problems == []


def test_every_bundled_source_is_pinned_by_the_template(all_pins):
    """No schemas in the wheel for a version no generated repo uses."""
    for src in config()["sources"]:
        if src.get("bundle", True):
            for key, version in src["pins"].items():
                assert any(_matches(v, _version(version)) for v in all_pins.get(key, ())), (src["name"], key, version)


# --- the bundle --------------------------------------------------------------------------------------


def _nodes(node, path="$"):
    """Every subschema of a schema, with its path (the values of properties/items/additionalProperties/...)."""
    yield path, node
    for key in ("properties", "patternProperties"):
        for name, sub in (node.get(key) or {}).items():
            yield from _nodes(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            yield from _nodes(node[key], f"{path}.{key}")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(node.get(key) or []):
            yield from _nodes(sub, f"{path}.{key}[{i}]")


def test_bundle_matches_its_provenance_and_is_strict():
    provenance = bundled_schemas()
    files = {p.relative_to(BUNDLED_SCHEMAS).as_posix() for p in BUNDLED_SCHEMAS.rglob("*.json")} - {"_provenance.json"}
    assert files and files == set(provenance)
    cfg = config()
    sources = {(f"github.com/{s['repo']}", s["tag"]): s for s in cfg["sources"]}
    hand_written = {h["file"]: h for h in cfg.get("hand_written") or []}
    for name, prov in provenance.items():
        assert name == bundled_file(prov["group"], prov["version"], prov["kind"])
        if prov.get("hand_written"):  # written by us, not converted from anyone's CRD
            entry = hand_written[name]
            assert prov["source"] == entry["source"] and prov["licence"] == entry["licence"] == "Apache-2.0"
            assert (prov["group"], prov["version"], prov["kind"]) == (entry["group"], entry["version"], entry["kind"])
            assert not {"repo", "tag", "commit", "path"} & prov.keys()
        else:
            assert re.fullmatch(r"[0-9a-f]{40}", prov["commit"]) and prov["path"].endswith((".yaml", ".yml"))
            src = sources[(prov["repo"], prov["tag"])]  # every file comes from a configured source
            assert src.get("bundle", True) and prov["licence"] == src["licence"]
        assert prov["licence"] in cfg["bundle_licences"]  # cleared for the Apache-2.0 wheel
        schema = json.loads((BUNDLED_SCHEMAS / name).read_text(encoding="utf-8"))
        assert prov["strict"] and schema["additionalProperties"] is False, name
        for path, node in _nodes(schema):
            assert "description" not in node, (name, path)  # dropped: the wheel stays small
            if node.get("x-kubernetes-preserve-unknown-fields"):
                assert node.get("additionalProperties") is not False, (name, path)
            elif "properties" in node:
                assert "additionalProperties" in node, (name, path)  # closed, or the CRD's own map schema
            if node.get("x-kubernetes-int-or-string"):
                assert {"type": "integer"} in node["anyOf"] and {"type": "string"} in node["anyOf"], (name, path)


def test_every_crd_kind_of_a_generated_repo_is_bundled(variant):
    name, generated = variant
    builtin_groups = SchemaStore([])._builtin_groups
    custom = set()
    for r in generated.rendered:
        for o in r.objects:
            group, _, version = o.data["apiVersion"].rpartition("/")
            if group not in builtin_groups:
                custom.add((group, version, o.data["kind"]))
    assert custom, name
    assert sorted(f"{g}/{v} {k}" for g, v, k in custom if bundled_file(g, v, k) not in bundled_schemas()) == []


def validate_offline(repo: Path, monkeypatch, cache: Path) -> tuple[int, dict]:
    """`gitops-forge validate --format json` with no -s, no $GITOPS_FORGE_SCHEMAS, the default CRDs-catalog and
    no network."""
    monkeypatch.delenv("GITOPS_FORGE_SCHEMAS", raising=False)
    monkeypatch.delenv("GITOPS_FORGE_SCHEMA_CATALOG", raising=False)  # the default online catalog, unreachable
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["validate", str(repo), "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_offline_validate_without_schema_location_has_every_schema(variant, monkeypatch, tmp_path):
    name, generated = variant
    _, report = validate_offline(generated.repo, monkeypatch, tmp_path / "cache")
    assert [(m["api_version"], m["kind"]) for m in report["missing_schemas"]] == []
    assert [f for f in report["findings"] if f["check"] == "GF102"] == [] and report["render_errors"] == []
    assert report["schema_locations"] == [] and report["bundled_schemas"] is True
    assert not (tmp_path / "cache" / "gitops-forge" / "schemas").exists()  # nothing was fetched or needed


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_offline_validate_without_schema_location_is_clean(name, tmp_path_factory, monkeypatch, tmp_path):
    generated = generate(tmp_path_factory, VARIANTS[name])
    code, report = validate_offline(generated.repo, monkeypatch, tmp_path / "cache")
    assert [f"{f['check']} {f['kind']}/{f['name']}: {f['message']}" for f in report["findings"]] == []
    assert code == 0 and report["ok"] is True


# --- FluxInstance: written by hand ---------------------------------------------------------------------
# The Flux Operator's CRDs are AGPL-3.0, so the wheel's FluxInstance schema is our own, written from the
# documented FluxInstance v1 API (scripts/crd_sources.yaml, hand_written). These objects are ours too.


def _instance(**spec) -> dict:
    return {"apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxInstance",
            "metadata": {"name": "flux", "namespace": "flux-system"},
            "spec": {"distribution": {"version": "2.9.x", "registry": "ghcr.io/fluxcd"}, **spec}}


PATCH = "- op: add\n  path: /spec/verify\n  value:\n    mode: HEAD\n    secretRef:\n      name: git-signing-keys\n"
# What clusters/<cluster>/flux-system/flux-instance.yaml of a Flux-Operator repo holds (verify: gpg).
TEMPLATE_INSTANCE = _instance(
    distribution={"version": "2.9.x", "registry": "ghcr.io/fluxcd",
                  "artifact": "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests"},
    components=["source-controller", "kustomize-controller", "helm-controller", "notification-controller"],
    cluster={"type": "kubernetes", "multitenant": True, "tenantDefaultServiceAccount": "default",
             "networkPolicy": True, "domain": "cluster.local"},
    sync={"kind": "GitRepository", "url": "ssh://git@github.com/acme/fleet.git", "ref": "refs/heads/main",
          "path": "clusters/prd-eu", "pullSecret": "flux-system"},
    kustomize={"patches": [{"target": {"kind": "GitRepository", "name": "flux-system"}, "patch": PATCH}]},
)
VALID_INSTANCES = {
    "template": TEMPLATE_INSTANCE,
    "minimal": _instance(),
    # Like the operator's own sample: every controller, OpenShift, persistent shards with their storage.
    "sharded-openshift": _instance(
        distribution={"version": "2.x", "registry": "ghcr.io/fluxcd",
                      "artifact": "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests:latest"},
        components=["source-controller", "source-watcher", "kustomize-controller", "helm-controller",
                    "notification-controller", "image-reflector-controller", "image-automation-controller"],
        cluster={"type": "openshift", "multitenant": False, "networkPolicy": True, "domain": "cluster.local"},
        storage={"class": "standard", "size": "1Gi"},
        sharding={"shards": ["shard1"], "storage": "persistent"},
        sync={"kind": "GitRepository", "url": "https://git.example.com/fleet.git", "ref": "refs/heads/main",
              "path": "clusters/one"},
        kustomize={"patches": [{"target": {"kind": "Deployment", "labelSelector": "app.kubernetes.io/component in "
                                           "(kustomize-controller, helm-controller)"},
                                "patch": "- op: add\n  path: /spec/template/spec/containers/0/args/-\n  value: --concurrent=10\n"}]},
    ),
    # Every field of spec and status once.
    "everything": {**_instance(
        distribution={"version": "2.9.x", "registry": "registry.example.com/flux", "variant": "enterprise-distroless",
                      "artifact": "oci://registry.example.com/manifests", "artifactPullSecret": "art",
                      "imagePullSecret": "pull"},
        components=["source-controller"],
        cluster={"type": "aws", "size": "large", "multitenant": True, "multitenantWorkloadIdentity": True,
                 "objectLevelWorkloadIdentity": True, "tenantDefaultServiceAccount": "default",
                 "tenantDefaultDecryptionServiceAccount": "sops", "tenantDefaultKubeConfigServiceAccount": "kube",
                 "networkPolicy": False, "domain": "cluster.example"},
        commonMetadata={"labels": {"team": "platform"}, "annotations": {"owner": "platform"}},
        kustomize={"patches": [{"patch": PATCH, "target": {"group": "apps", "version": "v1", "kind": "Deployment",
                                                           "name": "x", "namespace": "flux-system",
                                                           "labelSelector": "a=b", "annotationSelector": "c=d"}}]},
        sync={"kind": "OCIRepository", "url": "oci://registry.example.com/fleet", "ref": "latest", "path": "./",
              "pullSecret": "pull", "interval": "1m30s", "provider": "gcp", "name": "fleet"},
        sharding={"key": "sharding.fluxcd.io/key", "shards": ["a", "b"], "storage": "ephemeral"},
        storage={"class": "standard", "size": "10Gi"}, wait=False, migrateResources=True),
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2, "reason": "ReconciliationSucceeded",
                            "message": "ok", "lastTransitionTime": "2026-12-05T07:00:00Z"}],
            "components": [{"name": "source-controller", "repository": "ghcr.io/fluxcd/source-controller",
                            "tag": "v1.9.1", "digest": "sha256:0"}],
            "history": [{"digest": "sha256:1", "firstReconciled": "2026-12-05T07:00:00Z",
                         "lastReconciled": "2026-12-05T07:00:00Z", "lastReconciledDuration": "2s",
                         "lastReconciledStatus": "ReconciliationSucceeded", "totalReconciliations": 3,
                         "metadata": {"flux": "v2.9.5"}}],
            "inventory": {"entries": [{"id": "flux-system_source-controller_apps_Deployment", "v": "v1"}]},
            "lastAppliedRevision": "v2.9.5@sha256:2", "lastAttemptedRevision": "v2.9.5@sha256:2",
            "lastArtifactRevision": "latest@sha256:3", "lastHandledReconcileAt": "now", "lastHandledForceAt": "now"}},
}


def _changed(change) -> dict:
    obj = json.loads(json.dumps(TEMPLATE_INSTANCE))
    change(obj)
    return obj


INVALID_INSTANCES = {
    "unknown spec field": _changed(lambda o: o["spec"].update(version="2.9")),
    "unknown spec.cluster field": _changed(lambda o: o["spec"]["cluster"].update(tenants=True)),
    "unknown spec.sync field": _changed(lambda o: o["spec"]["sync"].update(branch="main")),
    "unknown patch target field": _changed(lambda o: o["spec"]["kustomize"]["patches"][0]["target"].update(selector="x")),
    "wrong cluster.type": _changed(lambda o: o["spec"]["cluster"].update(type="eks")),
    "wrong component": _changed(lambda o: o["spec"]["components"].append("flagger")),
    "wrong sync.kind": _changed(lambda o: o["spec"]["sync"].update(kind="HelmRepository")),
    "missing distribution": _changed(lambda o: o["spec"].pop("distribution")),
    "missing distribution.registry": _changed(lambda o: o["spec"]["distribution"].pop("registry")),
    "missing sync.path": _changed(lambda o: o["spec"]["sync"].pop("path")),
    "patch without patch": _changed(lambda o: o["spec"]["kustomize"]["patches"][0].pop("patch")),
    "interval not a duration": _changed(lambda o: o["spec"]["sync"].update(interval="1 minute")),
    "multitenant a string": _changed(lambda o: o["spec"]["cluster"].update(multitenant="true")),
    "named other than flux": _changed(lambda o: o["metadata"].update(name="flux2")),
    "persistent shards without storage": _changed(lambda o: o["spec"].update(sharding={"shards": ["a"], "storage": "persistent"})),
    "github provider for an OCIRepository": _changed(lambda o: o["spec"]["sync"].update(kind="OCIRepository", provider="github")),
    "tenant workload identity without object-level": _changed(lambda o: o["spec"]["cluster"].update(multitenantWorkloadIdentity=True)),
}


def test_fluxinstance_schema_is_bundled_and_written_by_us():
    prov = bundled_schemas()[bundled_file("fluxcd.controlplane.io", "v1", "FluxInstance")]
    assert prov["hand_written"] and prov["licence"] == "Apache-2.0" and "flux-operator v0.58.1" in prov["source"]
    [upstream] = [s for s in config()["sources"] if s["repo"] == "controlplaneio-fluxcd/flux-operator"]
    assert upstream["licence"] == "AGPL-3.0" and upstream["bundle"] is False  # its CRDs stay out of the wheel


@pytest.mark.parametrize("name", sorted(VALID_INSTANCES))
def test_fluxinstance_schema_accepts_valid_instances(name):
    result = SchemaStore([]).validate(VALID_INSTANCES[name])
    assert (result.status, result.errors) == ("valid", []), result.source
    assert result.source == "bundled schema (written by gitops-forge from the FluxInstance v1 API at flux-operator v0.58.1)"


@pytest.mark.parametrize("name", sorted(INVALID_INSTANCES))
def test_fluxinstance_schema_rejects_invalid_instances(name):
    assert SchemaStore([]).validate(INVALID_INSTANCES[name]).status == "invalid"
