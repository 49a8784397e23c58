"""Platform charts promoted per environment, one sealing key per environment, and the platform minimums
(metrics-server, prerequisites, Argo CD's domain and HA, CI pinned by release and commit SHA, one Kubernetes
minor for Pod Security and validation), for both engines."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.render import render_repo
from generator.validate.schemas import resolve_version

from .variants import TEMPLATE, generate

COPIER = yaml.safe_load((TEMPLATE / "copier.yml").read_text())
KUBERNETES_VERSION = COPIER.get("kubernetes_version", {}).get("default", "")
MULTI = {
    "environments": ["dev", "staging", "prod"],
    "clusters": [
        {"name": "dev", "environment": "dev"},
        {"name": "staging", "environment": "staging"},
        {"name": "prod-eu", "environment": "prod"},
        {"name": "prod-us", "environment": "prod"},
    ],
}
SHAPES = {
    "flux": {**MULTI},
    "argocd": {"engine": "argocd", **MULTI},
    "flux-no-monitoring": {"monitoring": False, "alerts_to": "none"},
}


@pytest.fixture(scope="module", params=list(SHAPES), ids=list(SHAPES))
def repo(request, tmp_path_factory):
    generated = generate(tmp_path_factory, SHAPES[request.param])
    return generated.repo, generated.answers


def docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def infra_controllers(repo: Path, cluster: str) -> dict[str, Any]:
    return next(doc for doc in docs(repo / "clusters" / cluster / "infrastructure.yaml") if doc["metadata"]["name"] == "infra-controllers")


def infra_path(repo: Path, cluster: str) -> str:
    spec = infra_controllers(repo, cluster)["spec"]
    return (spec["path"] if "path" in spec else spec["source"]["path"]).removeprefix("./")


def chart_versions(objects: list[dict[str, Any]]) -> dict[str, str]:
    """Chart name -> version of every platform chart among rendered objects, for either engine."""
    versions = {}
    for obj in objects:
        if obj["kind"] == "HelmRelease" and "version" in obj["spec"].get("chart", {}).get("spec", {}):
            versions[obj["metadata"]["name"]] = str(obj["spec"]["chart"]["spec"]["version"])
        if obj["kind"] == "OCIRepository":
            versions[obj["metadata"]["name"]] = str(obj["spec"]["ref"]["tag"])
        if obj["kind"] == "Application":
            for source in obj["spec"].get("sources", []):
                if "chart" in source:
                    versions[source["chart"]] = str(source["targetRevision"])
    return versions


def rendered(repo: Path) -> dict[str, list[dict[str, Any]]]:
    return {result.entrypoint.rel: [o.data for o in result.objects] for result in render_repo(repo)}


# --- item 8: platform charts promoted per environment -----------------------------------------------


def test_every_cluster_builds_its_environments_controllers(repo):
    path, answers = repo
    for cluster in answers["clusters"]:
        assert infra_path(path, cluster["name"]) == f"infrastructure/environments/{cluster['environment']}/controllers"


def test_every_chart_is_pinned_in_every_environment(repo):
    path, answers = repo
    builds = rendered(path)
    base = chart_versions(builds["infrastructure/controllers"]) if "infrastructure/controllers" in builds else None
    charts = {"metrics-server", "kube-prometheus-stack", "sealed-secrets", "argo-cd"}
    for env in answers["environments"]:
        overlay = path / "infrastructure/environments" / env / "controllers"
        kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
        assert kustomization["resources"] == ["../../../controllers"]
        pinned = {patch["target"]["name"] for patch in kustomization["patches"]}
        versions = chart_versions(builds[f"infrastructure/environments/{env}/controllers"])
        assert pinned == set(versions) and pinned <= charts, env  # every chart of the build, and only charts
        for patch in kustomization["patches"]:
            value = [op["value"] for op in yaml.safe_load(patch["patch"]) if op["op"] == "replace"]
            assert value == [versions[patch["target"]["name"]]], patch
        if base is not None:
            assert versions == base  # a new repository starts every environment at the same versions
    # With Flux, kube-prometheus-stack is an OCI chart with a Kustomization of its own, pinned beside (below).
    flux = answers["engine"] == "flux"
    assert "metrics-server" in pinned and ("kube-prometheus-stack" in pinned) == (answers["monitoring"] and not flux)


def test_flux_pins_kube_prometheus_stack_in_every_environment(repo):
    path, answers = repo
    overlays = sorted(p.parent.parent.name for p in path.glob("infrastructure/environments/*/monitoring/kustomization.yaml"))
    if answers["engine"] != "flux" or not answers["monitoring"]:
        assert overlays == []
        return
    assert overlays == sorted(answers["environments"])
    builds = rendered(path)
    base = chart_versions(docs(path / "infrastructure/controllers/kube-prometheus-stack/ocirepository.yaml"))
    for env in answers["environments"]:
        kustomization = yaml.safe_load((path / "infrastructure/environments" / env / "monitoring/kustomization.yaml").read_text())
        assert kustomization["resources"] == ["../../../controllers/kube-prometheus-stack"]
        assert [p["target"] for p in kustomization["patches"]] == [{"kind": "OCIRepository", "name": "kube-prometheus-stack"}]
        assert chart_versions(builds[f"infrastructure/environments/{env}/monitoring"]) == base
    for cluster in answers["clusters"]:
        docs_ = docs(path / "clusters" / cluster["name"] / "infrastructure.yaml")
        (monitoring,) = [d for d in docs_ if d["metadata"]["name"] == "monitoring-controllers"]
        assert monitoring["spec"]["path"] == f"./infrastructure/environments/{cluster['environment']}/monitoring"


def test_a_chart_bump_in_dev_changes_only_the_dev_clusters(repo, tmp_path):
    path, answers = repo
    copy = tmp_path / "repo"
    shutil.copytree(path, copy)
    overlay = copy / "infrastructure/environments/dev/controllers/kustomization.yaml"
    text = overlay.read_text()
    bumped = re.sub(r'(depName=metrics-server .*\n\s+value: )"[^"]+"', r'\1"99.0.0"', text)
    assert bumped != text
    overlay.write_text(bumped)
    before, after = rendered(path), rendered(copy)
    for cluster in answers["clusters"]:
        entrypoint = infra_path(path, cluster["name"])
        changed = before[entrypoint] != after[entrypoint]
        assert changed == (cluster["environment"] == "dev"), cluster
        if changed:
            assert chart_versions(after[entrypoint])["metrics-server"] == "99.0.0"
    assert {ep for ep in before if before[ep] != after[ep]} == {"infrastructure/environments/dev/controllers"}


def test_renovate_proposes_chart_versions_in_the_first_environment_only(repo):
    path, answers = repo
    config = json.loads((path / "renovate.json").read_text())
    first = answers["environments"][0]
    (manager,) = [m for m in config["customManagers"] if "infrastructure/environments" in " ".join(m["managerFilePatterns"])]
    patterns = [re.compile(p.strip("/")) for p in manager["managerFilePatterns"]]
    for env in answers["environments"]:
        for layer in ("controllers", "monitoring"):  # monitoring: kube-prometheus-stack with Flux
            file = f"infrastructure/environments/{env}/{layer}/kustomization.yaml"
            assert any(p.search(file) for p in patterns) == (env == first), env
    # Renovate's regex groups, in Python's spelling: every pinned chart is found, with its registry and version.
    (match_string,) = manager["matchStrings"]
    regex = re.compile(match_string.replace("(?<", "(?P<"))
    text = (path / f"infrastructure/environments/{first}/controllers/kustomization.yaml").read_text()
    found = [m["currentValue"] for m in regex.finditer(text)]
    patches = yaml.safe_load(text)["patches"]
    assert found == [op["value"] for p in patches for op in yaml.safe_load(p["patch"]) if op["op"] == "replace"]
    for m in regex.finditer(text):
        assert (m["datasource"], (m["registryUrl"] or "https://").startswith("https://")) in {("helm", True), ("docker", True)}
        assert m["depName"].endswith(next(p["target"]["name"] for p in patches if p["patch"].find(m["depName"]) >= 0))
    if answers["engine"] == "flux":  # the base's versions are overridden everywhere: no pull requests for them
        rule = next(r for r in config["packageRules"] if r.get("matchFileNames") == ["infrastructure/controllers/**"])
        assert rule["enabled"] is False and rule["matchManagers"] == ["flux"]
    else:
        assert config["argocd"]["enabled"] is False


def test_the_promotion_doc_names_the_overlays_and_what_is_not_promoted(repo):
    path, answers = repo
    text = (path / "docs/promotion.md").read_text()
    assert "## Promote a platform chart" in text and "## What still reaches every environment at once" in text
    for env in answers["environments"][1:]:
        assert f"`infrastructure/environments/{env}/controllers" in text or f"of `{env}`" in text
    assert "Chart updates in `infrastructure/` reach every cluster at once" not in text
    assert "`apps/base/<app>/`" in text


# --- item 9: one sealing key per environment, renewed only on purpose -------------------------------


def test_sealing_key_renewal_is_off(repo):
    path, answers = repo
    release = path / "infrastructure/controllers/sealed-secrets"
    if answers["engine"] == "flux":
        values = docs(release / "helmrelease.yaml")[0]["spec"]["values"]
    else:
        values = yaml.safe_load((release / "values.yaml").read_text())
    assert values["keyrenewperiod"] == "0" and "keycutofftime" not in values


def test_every_cluster_of_an_environment_resolves_one_certificate(repo):
    path, answers = repo
    script = (path / "scripts/seal-secret.sh").read_text()
    entries = re.search(r"^CLUSTERS=\((.*)\)$", script, re.M).group(1).replace('"', "").split()
    holders = {entry.split(":")[0]: entry.split(":")[2] for entry in entries}
    for cluster in answers["clusters"]:
        same_env = [c["name"] for c in answers["clusters"] if c["environment"] == cluster["environment"]]
        assert holders[cluster["name"]] == same_env[0]
        assert (path / "clusters" / cluster["name"] / "pub-sealed-secrets.pem").exists() == (cluster["name"] == same_env[0])
        if answers["engine"] == "argocd":
            sealing = (path / "clusters" / cluster["name"] / "repository.yaml").read_text()
            assert f"kubeseal --cert clusters/{same_env[0]}/pub-sealed-secrets.pem" in sealing
            readme = (path / "clusters" / cluster["name"] / "README.md").read_text().split("### 1.")[0]
            assert ("shares the sealing key of" in readme) == (cluster["name"] != same_env[0])
            assert f"sealed-secrets-keys-{same_env[0]}.yaml.age | kubectl apply -f -" in readme


# --- item 10: platform minimums -------------------------------------------------------------------


def test_metrics_server_is_installed_and_pinned(repo):
    path, answers = repo
    builds = rendered(path)
    for env in answers["environments"]:
        objects = builds[f"infrastructure/environments/{env}/controllers"]
        assert re.fullmatch(r"\d+\.\d+\.\d+", chart_versions(objects)["metrics-server"])
        release = next(o for o in objects if o["metadata"]["name"] == "metrics-server" and o["kind"] in ("HelmRelease", "Application"))
        namespace = release["spec"]["targetNamespace"] if answers["engine"] == "flux" else release["spec"]["destination"]["namespace"]
        assert namespace == "kube-system"
    if answers["engine"] == "argocd":
        project = docs(path / f"clusters/{answers['clusters'][0]['name']}/appproject-platform-charts.yaml")[0]
        assert "https://kubernetes-sigs.github.io/metrics-server" in project["spec"]["sourceRepos"]


def test_the_readme_lists_the_prerequisites(repo):
    path, answers = repo
    bootstrap = (path / "README.md").read_text().split("## Bootstrap a cluster", 1)[1].split("\n## ", 1)[0]
    assert "`kubeseal`" in bootstrap and "Kubernetes **1.30 or newer**" in bootstrap
    assert ("**default StorageClass**" in bootstrap) == answers["monitoring"]


def test_pod_security_and_validation_target_one_kubernetes_minor(repo):
    path, _ = repo
    assert resolve_version(KUBERNETES_VERSION) == f"{KUBERNETES_VERSION}.0"  # kubernetes-validate knows it
    labels = []
    for file in path.rglob("*.yaml"):
        for doc in docs(file) if "pod-security.kubernetes.io" in file.read_text() else []:
            labels += [v for k, v in doc["metadata"].get("labels", {}).items() if k.startswith("pod-security.kubernetes.io/") and k.endswith("-version")]
    assert labels and set(labels) == {f"v{KUBERNETES_VERSION}"}
    workflow = yaml.safe_load((path / ".github/workflows/validate.yaml").read_text())
    assert workflow["env"]["KUBERNETES_VERSION"] == KUBERNETES_VERSION
    assert all("--kubernetes-version \"$KUBERNETES_VERSION\"" in step["run"]
               for job in workflow["jobs"].values() for step in job["steps"] if "gitops-forge validate" in step.get("run", ""))


def test_argocd_has_a_domain_per_cluster_and_optional_ha(tmp_path_factory):
    default = generate(tmp_path_factory, {"engine": "argocd"})
    ha = generate(tmp_path_factory, {"engine": "argocd", "argocd_domain": "gitops.acme.example", "argocd_ha": True})
    for generated, domain in ((default, "acme-platform.internal"), (ha, "gitops.acme.example")):
        assert generated.answers["argocd_domain"] == domain
        leftovers = [str(f) for f in generated.repo.rglob("*") if f.is_file() and "argocd.example.com" in f.read_text(errors="ignore")]
        assert leftovers == []
        for cluster in generated.answers["clusters"]:
            application = next(o for o in rendered_app_patches(generated.repo, cluster["name"]) if o["target"]["name"] == "argo-cd")
            (op,) = yaml.safe_load(application["patch"])
            assert op["value"]["global"]["domain"] == f"argocd.{cluster['name']}.{domain}"
            readme = (generated.repo / "clusters" / cluster["name"] / "README.md").read_text()
            assert f"--set global.domain=argocd.{cluster['name']}.{domain}" in readme
    values = yaml.safe_load((default.repo / "infrastructure/controllers/argo-cd/values.yaml").read_text())
    assert "redis-ha" not in values and "replicas" not in values["server"] and "global" not in values
    values = yaml.safe_load((ha.repo / "infrastructure/controllers/argo-cd/values.yaml").read_text())
    assert values["redis-ha"] == {"enabled": True}
    assert values["server"]["replicas"] == values["repoServer"]["replicas"] == values["applicationSet"]["replicas"] == 2


def rendered_app_patches(repo: Path, cluster: str) -> list[dict[str, Any]]:
    return infra_controllers(repo, cluster)["spec"]["source"]["kustomize"]["patches"]


@pytest.mark.usefixtures("isolated_user")
@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_ci_pins_the_generating_release_and_actions_by_commit(ci, tmp_path):
    from typer.testing import CliRunner

    from generator.bundle import current_version
    from generator.cli import app

    destination = tmp_path / "repo"
    result = CliRunner().invoke(app, ["new", str(destination), "--defaults", "--no-git", "--data", f"ci={ci}"])
    assert result.exit_code == 0, result.output
    version = current_version(TEMPLATE)
    assert yaml.safe_load((destination / ".copier-answers.yml").read_text())["_commit"] == f"v{version}"
    if ci == "gitlab":
        variables = yaml.safe_load((destination / ".gitlab-ci.yml").read_text())["variables"]
        assert variables["GITOPS_FORGE"] == f"gitops-forge=={version}"
        assert variables["GITOPS_FORGE_UPDATE"] == f"gitops-forge>={version},<1"
        return
    workflows = destination / ".github/workflows"
    assert yaml.safe_load((workflows / "validate.yaml").read_text())["env"]["GITOPS_FORGE"] == f"gitops-forge=={version}"
    assert yaml.safe_load((workflows / "template-update.yaml").read_text())["env"]["GITOPS_FORGE"] == f"gitops-forge>={version},<1"
    uses = [line.strip() for file in workflows.glob("*.yaml") for line in file.read_text().splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert len(uses) >= 8
    for line in uses:
        assert re.fullmatch(r"(- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+", line), line
