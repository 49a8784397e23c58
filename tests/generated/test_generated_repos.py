"""Every generated variant is deployable: it renders, validates strictly, and passes the scanners."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from generator.render import render_repo
from generator.validate import validate_repo

from .variants import generate

# Checks the hardened manifests are allowed to miss, with the reason (DESIGN.md):
# CKV_K8S_43 digest pinning is Renovate's job; CKV_K8S_15 follows from tags; CKV_K8S_35 is about env secrets.
CHECKOV_SKIPS = "CKV_K8S_43,CKV_K8S_15,CKV_K8S_35"
BIN = Path(sys.executable).parent


def app(index: int, team: str) -> dict:
    return {"name": f"app-{index}", "team": team, "image": f"registry.example.com/shop/app-{index}:1.{index}.0", "port": 8080 + index}


VARIANTS = {
    "minimal": {
        "environments": ["prod"],
        "clusters": [{"name": "prod-1", "environment": "prod"}],
        "teams": [{"name": "solo", "groups": ["solo-devs"]}],
        "apps": [],
    },
    "defaults": {},
    "two-teams": {
        "environments": ["staging", "production"],
        "clusters": [{"name": "stg", "environment": "staging"}, {"name": "prd", "environment": "production"}],
        "teams": [{"name": "web", "groups": ["web-devs"]}, {"name": "data", "groups": ["data-devs", "data-leads"]}],
        "apps": [app(1, "web"), app(2, "data"), {**app(3, "web"), "health_path": "/livez", "ready_path": "/ready"}],
        "verify": "gpg",
    },
    "wide": {
        "environments": ["dev", "test", "qa", "staging", "prod"],
        "clusters": [
            {"name": "dev-1", "environment": "dev"},
            {"name": "qa-1", "environment": "qa"},
            {"name": "prod-eu", "environment": "prod"},
            {"name": "prod-us", "environment": "prod"},
        ],
        "teams": [{"name": f"team-{n}", "groups": [f"team-{n}"]} for n in range(3)],
        "apps": [app(n, f"team-{n % 3}") for n in range(10)],
    },
    # No monitoring: no kube-prometheus-stack, rules, monitors, dashboards or notifications, and nothing
    # left that points at them (tests/generated/test_monitoring.py checks the absence in detail).
    "monitoring-off": {
        "environments": ["staging", "production"],
        "clusters": [{"name": "stg", "environment": "staging"}, {"name": "prd", "environment": "production"}],
        "teams": [{"name": "web", "groups": ["web-devs"]}],
        "apps": [app(1, "web"), app(2, "web")],
        "monitoring": False,
        "flux_install": "bootstrap",
    },
    # SOPS instead of Sealed Secrets (no controller, .sops.yaml, decryption on the Kustomizations), SSH
    # commit signatures, an HTTPS URL on GitLab, two clusters in one environment, a team without apps,
    # Flux installed with `flux bootstrap` (as in repos updated from 0.3.0; monitoring-off too).
    "sops-signed": {
        "git_url": "https://gitlab.example.com/platform/acme-platform.git",
        "environments": ["staging", "production"],
        "clusters": [
            {"name": "stg", "environment": "staging"},
            {"name": "prd-eu", "environment": "production"},
            {"name": "prd-us", "environment": "production"},
        ],
        "teams": [{"name": "web", "groups": ["web-devs"]}, {"name": "data", "groups": ["data-devs"]}, {"name": "idle", "groups": ["idle"]}],
        "apps": [app(1, "web"), app(2, "data"), app(3, "web")],
        "secrets": "sops",
        "verify": "ssh",
        "flux_install": "bootstrap",
    },
    # Argo CD: the defaults, and a shape that switches its branches: GPG-signed commits in the projects,
    # an HTTPS URL, Teams notifications, two clusters in one environment, a team without apps.
    "argocd": {"engine": "argocd"},
    "argocd-signed": {
        "engine": "argocd",
        "git_url": "https://github.com/acme/acme-platform.git",
        "environments": ["staging", "production"],
        "clusters": [
            {"name": "stg", "environment": "staging"},
            {"name": "prd-eu", "environment": "production"},
            {"name": "prd-us", "environment": "production"},
        ],
        "teams": [{"name": "web", "groups": ["web-devs", "web-leads"]}, {"name": "data", "groups": ["data-devs"]}, {"name": "idle", "groups": ["idle"]}],
        "apps": [app(1, "web"), app(2, "data"), app(3, "web")],
        "verify": "gpg",
        "alerts_to": "msteams",
    },
    "argocd-monitoring-off": {
        "engine": "argocd",
        "environments": ["prod"],
        "clusters": [{"name": "prod-1", "environment": "prod"}],
        "teams": [{"name": "solo", "groups": ["solo-devs"]}],
        "apps": [app(1, "solo")],
        "monitoring": False,
    },
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def generated(request, tmp_path_factory) -> tuple[str, Path, dict]:
    repo = generate(tmp_path_factory, VARIANTS[request.param])
    return request.param, repo.repo, repo.answers


def test_layout_follows_the_answers(generated):
    _, repo, answers = generated
    for env in answers["environments"]:
        assert (repo / "apps" / env / "kustomization.yaml").is_file()
        assert (repo / "tenants" / env / "kustomization.yaml").is_file()
        for app_answer in answers["apps"]:
            assert (repo / "apps" / env / app_answer["name"] / "kustomization.yaml").is_file()
    flux = answers["engine"] == "flux"
    for app_answer in answers["apps"]:
        base = repo / "apps/base" / app_answer["name"]
        for manifest in ("deployment", "service", "serviceaccount", "hpa", "pdb"):
            assert (base / f"{manifest}.yaml").is_file(), manifest
        # No team may manage NetworkPolicies (Flux: the reconciler's role; Argo CD: the project): the platform
        # keeps each app's policy in tenants/.
        platform_policy = repo / "tenants/base" / app_answer["team"] / f"networkpolicy-{app_answer['name']}.yaml"
        assert not (base / "networkpolicy.yaml").exists() and platform_policy.is_file()
    for team in answers["teams"]:
        assert (repo / "tenants/base" / team["name"] / "kustomization.yaml").is_file()
        assert (repo / "tenants/base" / team["name"] / "appproject.yaml").is_file() != flux
    # Flux's own installation: the bootstrap manifests, or the Flux Operator and its FluxInstance.
    bootstrap_files = ("flux-system/gotk-components.yaml", "flux-system/gotk-sync.yaml")
    operator_files = ("flux-system/flux-instance.yaml", "flux-system/flux-operator-ocirepository.yaml", "flux-system/flux-operator-helmrelease.yaml")
    flux_files = ("flux-system/README.md", "flux-system/kustomization.yaml")
    argocd_files = ("kustomization.yaml", "root.yaml", "appproject-default.yaml", "appproject-platform.yaml", "appproject-platform-charts.yaml", "README.md")
    for cluster in answers["clusters"]:
        for name in ("infrastructure.yaml", "tenants.yaml", "apps.yaml", *flux_files, *argocd_files):
            assert (repo / "clusters" / cluster["name"] / name).is_file() == (name in ("infrastructure.yaml", "tenants.yaml", "apps.yaml") or (name in flux_files) == flux), name
        for name in bootstrap_files:
            assert (repo / "clusters" / cluster["name"] / name).is_file() == (flux and answers["flux_install"] == "bootstrap"), name
        for name in operator_files:
            assert (repo / "clusters" / cluster["name"] / name).is_file() == (flux and answers["flux_install"] == "operator"), name
    assert (repo / "infrastructure/controllers/argo-cd").is_dir() != flux
    if not flux:
        assert [p.relative_to(repo) for p in repo.rglob("*flux*")] == []
        # One sealing certificate per environment, beside its first cluster.
        holder = next(c["name"] for c in answers["clusters"] if c["environment"] == cluster["environment"])
        assert (repo / "clusters" / cluster["name"] / "pub-sealed-secrets.pem").is_file() == (answers["secrets"] == "sealed-secrets" and cluster["name"] == holder)
    sealed = answers["secrets"] == "sealed-secrets"
    assert (repo / "scripts/seal-secret.sh").is_file() == sealed and (repo / "infrastructure/controllers/sealed-secrets").is_dir() == sealed
    assert (repo / "scripts/encrypt-secret.sh").is_file() != sealed and (repo / ".sops.yaml").is_file() != sealed
    assert (repo / "docs/security.md").is_file() and (repo / "docs/secrets.md").is_file()
    assert (repo / ".github/CODEOWNERS").is_file() or (repo / "CODEOWNERS").is_file()
    assert (repo / ".yamllint").is_file() and (repo / "README.md").is_file()
    recorded = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert recorded["apps"] == answers["apps"]


def test_every_entrypoint_renders_and_validates_strictly(generated, schema_locations):
    _, repo, answers = generated
    report = validate_repo(repo, schema_locations=schema_locations)
    problems = [f"{f.entrypoint} {f.kind}/{f.name} {f.check}: {f.message}" for f in report.findings]
    problems += [f"render {e.entrypoint}: {e.message}" for e in report.render_errors]
    problems += [f"no schema: {m.api_version} {m.kind}/{m.name}" for m in report.missing_schemas]
    assert problems == []
    expected = {f"apps/{c['environment']}" for c in answers["clusters"]}
    expected |= {f"infrastructure/environments/{c['environment']}/controllers" for c in answers["clusters"]}
    assert expected <= set(report.entrypoints)


def test_reconciliation_is_ordered(generated):
    """Flux by dependsOn: infra-controllers -> infra-configs -> tenants -> apps; Argo CD by sync wave:
    tenants -> apps -> infra-controllers -> infra-configs."""
    _, repo, answers = generated
    order = ["infra-controllers", "infra-configs", "tenants", "apps"]
    for cluster in answers["clusters"]:
        objects = {}
        for name in ("infrastructure.yaml", "tenants.yaml", "apps.yaml"):
            for doc in yaml.safe_load_all((repo / "clusters" / cluster["name"] / name).read_text()):
                objects[doc["metadata"]["name"]] = doc
        flux = answers["engine"] == "flux"
        # Flux: kube-prometheus-stack has a Kustomization of its own, after its Secrets (honest readiness).
        monitoring = ["monitoring-secrets", "monitoring-controllers"] if flux and answers["monitoring"] else []
        assert set(objects) == set(order + monitoring)
        if flux:
            specs = {name: doc["spec"] for name, doc in objects.items()}
            chain = ["infra-controllers", *monitoring, "infra-configs"]
            for before, after in zip(chain, chain[1:]):
                assert {"name": before} in specs[after].get("dependsOn", []), (before, after)
            # Tenants wait until the platform was applied once (tests/generated/test_flux_dependency_graph.py).
            assert specs["tenants"]["dependsOn"] == [{"name": "infra-configs", "readyExpr": "has(dep.status.lastAppliedRevision)"}]
            assert {"name": "tenants"} in specs["apps"]["dependsOn"]
            for spec in specs.values():
                assert spec["prune"] is True and spec["interval"] and spec["timeout"]
                assert (repo / spec["path"]).is_dir(), spec["path"]
            assert specs["apps"]["path"] == f"./apps/{cluster['environment']}"
        else:
            # The teams first, so that a failed chart never holds them back (tests/generated/test_argocd_ordering.py).
            order = ["tenants", "apps", "infra-controllers", "infra-configs"]
            waves = [int(objects[name]["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for name in order]
            assert waves == sorted(set(waves)), waves
            for doc in objects.values():
                assert (repo / doc["spec"]["source"]["path"]).is_dir(), doc["spec"]["source"]["path"]
            assert objects["apps"]["spec"]["source"]["path"] == f"apps/{cluster['environment']}"


def test_checkov_passes_on_rendered_output(generated, tmp_path):
    _, repo, _ = generated
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    results = render_repo(repo)
    for result in results:
        assert not result.error, result.error
        name = result.entrypoint.rel.replace("/", "__") or "root"
        # One file per object: checkov skips a whole file that contains "{{" (it takes it for a Helm
        # template), and alert annotations contain {{ $labels }}; a shared file would hide its Deployments.
        for index, obj in enumerate(result.objects):
            (rendered / f"{name}__{index:03d}.yaml").write_text(yaml.safe_dump(obj.data))
    run = subprocess.run(
        [str(BIN / "checkov"), "-d", str(rendered), "--framework", "kubernetes", "--skip-download", "--quiet",
         "--compact", "--output", "json", "--skip-check", CHECKOV_SKIPS],
        capture_output=True, text=True,
    )
    output = json.loads(run.stdout or "{}")
    reports = output if isinstance(output, list) else [output]
    failed = [
        f"{check['check_id']} {check['resource']}" for report in reports for check in report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == []
    passed = sum(report.get("summary", {}).get("passed", 0) for report in reports)
    assert passed > 0, "checkov scanned nothing"
    # --quiet lists failures only. A second run keeps the passes, to prove that every Deployment was
    # scanned and the CKV2 graph checks (RBAC escalation paths, pods without a NetworkPolicy) ran.
    if any(o.data.get("kind") == "Deployment" for r in results for o in r.objects):
        expected = {"CKV_K8S_8", "CKV2_K8S_1", "CKV2_K8S_2", "CKV2_K8S_3", "CKV2_K8S_5", "CKV2_K8S_6"}
        full = subprocess.run(
            [str(BIN / "checkov"), "-d", str(rendered), "--framework", "kubernetes", "--skip-download", "--compact",
             "--output", "json", "--check", ",".join(sorted(expected))],
            capture_output=True, text=True,
        )
        output = json.loads(full.stdout or "{}")
        ran = {c["check_id"] for r in (output if isinstance(output, list) else [output]) for c in r.get("results", {}).get("passed_checks", [])}
        assert expected <= ran, sorted(expected - ran)


def test_yamllint_passes_with_the_generated_config(generated):
    _, repo, _ = generated
    run = subprocess.run([str(BIN / "yamllint"), "--strict", "-c", str(repo / ".yamllint"), str(repo)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
