"""The deliberately broken repo (fixtures/broken, see its README): every planted mistake is caught, by its check
id, on its object and in its file, and nothing else is reported."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from generator.cli import app
from generator.validate import validate_repo

# (check, kind, name, file the finding points at)
PLANTED = {
    ("GF100", "Deployment", "web", "apps/base/web/deployment.yaml"),  # typo'd field imagePullPolcy
    ("GF020", "Deployment", "web", "apps/prod/kustomization.yaml"),  # SMP patch names container `wbe`
    ("GF012", "Deployment", "worker", "apps/base/worker/deployment.yaml"),  # :latest
    ("GF011", "Deployment", "worker", "apps/base/worker/deployment.yaml"),  # no probes
    ("GF002", "DaemonSet", "agent", "apps/base/agent/daemonset/daemonset.yaml"),  # privileged
    ("GF003", "DaemonSet", "agent", "apps/base/agent/daemonset/daemonset.yaml"),  # escalation not disabled
    ("GF008", "DaemonSet", "agent", "apps/base/agent/daemonset/daemonset.yaml"),  # hostPath
    ("GF013", "Secret", "web-db", "apps/base/web/secret.yaml"),  # plaintext Secret
    ("GF014", "Role", "everything", "tenants/team-a/rbac.yaml"),  # wildcard RBAC
    ("GF015", "Role", "role-admin", "tenants/team-a/rbac.yaml"),  # escalate/bind
    ("GF016", "RoleBinding", "team-a-reconciler", "tenants/team-a/rbac.yaml"),  # cluster-admin tenant binding
    ("GF202", "Kustomization", "apps", "clusters/prod/apps.yaml"),  # dangling dependsOn
    ("GF201", "HelmRelease", "ingress-nginx", "infrastructure/controllers/ingress-nginx.yaml"),  # missing sourceRef
    ("GF204", "Service", "web", "apps/base/web/service.yaml"),  # Service selecting nothing
    ("GF206", "HorizontalPodAutoscaler", "worker", "apps/base/worker/hpa.yaml"),  # HPA -> missing Deployment
    ("GF205", "PodDisruptionBudget", "web", "apps/base/web/pdb.yaml"),  # PDB selecting nothing
    ("GF207", "NetworkPolicy", "web", "apps/base/web/networkpolicy.yaml"),  # NetworkPolicy selecting nothing
    ("GF203", "Kustomization", "staging", "clusters/prod/staging.yaml"),  # Kustomization path missing
    ("GF019", "Kustomization", "legacy", "clusters/prod/legacy.yaml"),  # removed Flux API version
    ("GF021", "Kustomization", "apps/legacy", "apps/legacy/kustomization.yaml"),  # patchesStrategicMerge
    ("GF021", "Kustomization", "apps/base/worker", "apps/base/worker/kustomization.yaml"),  # commonLabels
    ("GF021", "Kustomization", "apps/base/agent", "apps/base/agent/kustomization.yaml"),  # bases
    ("GF018", "Application", "monitoring", "argocd/applications.yaml"),  # Argo CD default project
    ("GF208", "Application", "payments", "argocd/applications.yaml"),  # Argo CD project missing
    ("GF017", "Deployment", "web", "apps/base/web/deployment.yaml"),  # replicas with HPA
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory, schema_locations):
    import shutil

    from tests.validate.conftest import FIXTURES

    repo = tmp_path_factory.mktemp("broken") / "repo"
    shutil.copytree(FIXTURES / "broken", repo)
    return repo, validate_repo(repo, schema_locations=schema_locations)


def test_nothing_but_the_planted_findings(broken):
    _, report = broken
    found = {(f.check, f.kind, f.name, f.source) for f in report.findings}
    assert found == PLANTED
    assert len(report.findings) == len(PLANTED)  # each reported once
    assert not report.ok


@pytest.mark.parametrize("planted", sorted(PLANTED), ids=lambda p: f"{p[0]}-{p[2]}")
def test_each_planted_mistake_is_caught(broken, planted):
    _, report = broken
    check, kind, name, source = planted
    assert [f for f in report.findings if (f.check, f.kind, f.name, f.source) == planted], planted


@pytest.mark.parametrize(
    ("check", "name", "words"),
    [
        ("GF100", "web", ["imagePullPolcy", "unknown field"]),
        ("GF020", "web", ["'wbe'", "apps/prod/kustomization.yaml", "strategic-merge patch"]),
        ("GF012", "worker", ["busybox:latest"]),
        ("GF202", "apps", ["databases"]),
        ("GF201", "ingress-nginx", ["HelmRepository ingress-nginx/ingress-nginx"]),
        ("GF204", "web", ['"app": "webb"']),
        ("GF206", "worker", ["worker-v2"]),
        ("GF203", "staging", ["apps/staging"]),
        ("GF019", "legacy", ["kustomize.toolkit.fluxcd.io/v1beta2", "use kustomize.toolkit.fluxcd.io/v1"]),
        ("GF021", "apps/legacy", ["patchesStrategicMerge", "patches:"]),
        ("GF021", "apps/base/worker", ["commonLabels", "labels:"]),
        ("GF021", "apps/base/agent", ["bases", "resources:"]),
        ("GF208", "payments", ["payments"]),
    ],
)
def test_messages_say_what_is_wrong(broken, check, name, words):
    _, report = broken
    [finding] = [f for f in report.findings if (f.check, f.name) == (check, name)]
    assert all(w in finding.message for w in words), finding.message
    assert finding.fix


def test_patch_with_unknown_container_adds_an_imageless_container_that_only_gf020_reports(broken):
    """kustomize merges a patch container by name; with no match it appends a container without image. The
    Kubernetes schema does not require `image`, so the schema check is silent: GF020 reports it, and the
    other container checks leave the leftover container alone instead of repeating the same mistake."""
    _, report = broken
    web = [f for f in report.findings if (f.kind, f.name) == ("Deployment", "web")]
    assert sorted(f.check for f in web) == ["GF017", "GF020", "GF100"]
    [schema] = [f for f in web if f.check == "GF100"]
    assert "containers[1]" in schema.message  # the added container came first; web is containers[1]


def test_render_failure_and_missing_schema(broken):
    _, report = broken
    [error] = report.render_errors
    assert (error.entrypoint, error.check, error.source) == ("apps/broken", "GF101", "apps/broken/kustomization.yaml")
    assert "missing.yaml" in error.message
    # The missing Flux path is GF203 on the Kustomization, not also a render error of apps/staging.
    assert [(m.kind, m.name, m.source, m.check) for m in report.missing_schemas] == [
        ("Widget", "web", "apps/base/web/widget.yaml", "GF102")
    ]


def test_removed_flux_version_is_validated_against_legacy_schemas_when_given(broken, tmp_path):
    """Without a schema for v1beta2 the object is GF019 only (no extra missing-schema noise); with a location
    that has the old version's schema (e.g. the Flux 2.x CRDs of that time) it is also checked strictly."""
    repo, report = broken
    assert not [m for m in report.missing_schemas if m.kind == "Kustomization"]
    legacy = tmp_path / "legacy" / "kustomize.toolkit.fluxcd.io"
    legacy.mkdir(parents=True)
    spec = {"type": "object", "additionalProperties": False,
            "properties": {k: {} for k in ("interval", "path", "prune", "sourceRef")}}
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"apiVersion": {}, "kind": {}, "metadata": {}, "spec": spec}}
    (legacy / "kustomization_v1beta2.json").write_text(json.dumps(schema))
    report = validate_repo(repo, schema_locations=[str(legacy.parent)])
    assert [m.kind for m in report.missing_schemas] == ["Widget"]
    assert not [f for f in report.findings if f.name == "legacy" and f.check == "GF100"]
    # It is really validated against that schema: a field the old version lacks is an error.
    del spec["properties"]["prune"]
    (legacy / "kustomization_v1beta2.json").write_text(json.dumps(schema))
    report = validate_repo(repo, schema_locations=[str(legacy.parent)])
    assert [f.message for f in report.findings if f.name == "legacy" and f.check == "GF100"] == [
        "spec.prune: unknown field 'prune'"]


runner = CliRunner()


def test_cli_text_report(broken, schema_locations):
    repo, _ = broken
    args = ["validate", str(repo), *(x for loc in schema_locations for x in ("--schema-location", loc))]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    out = result.output
    # Grouped by source file, every problem of an object listed.
    assert "\napps/base/web/deployment.yaml\n" in out
    assert "GF100 Deployment shop/web" in out and "GF017 Deployment shop/web" in out
    assert "1 object(s) had no schema and were not validated" in out
    assert "Widget shop/web" in out
    assert "How to fix" in out


def test_cli_sarif_points_at_the_files(broken, schema_locations):
    repo, _ = broken
    args = ["validate", str(repo), "--format", "sarif", *(x for loc in schema_locations for x in ("-s", loc))]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    run = json.loads(result.stdout)["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    located = {}
    for r in run["results"]:
        assert rules[r["ruleIndex"]] == r["ruleId"]
        loc = r["locations"][0]["physicalLocation"]
        located.setdefault((r["ruleId"], loc["artifactLocation"]["uri"]), []).append(loc.get("region", {}).get("startLine"))
    for check, _, _, source in PLANTED:
        assert (check, source) in located
    assert ("GF101", "apps/broken/kustomization.yaml") in located
    assert ("GF102", "apps/base/web/widget.yaml") in located
    # The line of the mistake itself, where it can be found.
    lines = (repo / "apps/base/web/deployment.yaml").read_text().splitlines()
    [typo_line] = located[("GF100", "apps/base/web/deployment.yaml")]
    assert "imagePullPolcy" in lines[typo_line - 1]
    kustomization = (repo / "apps/prod/kustomization.yaml").read_text().splitlines()
    [patch_line] = located[("GF020", "apps/prod/kustomization.yaml")]
    assert "name: wbe" in kustomization[patch_line - 1]


def test_cli_skip(broken, schema_locations):
    repo, _ = broken
    locations = [x for loc in schema_locations for x in ("-s", loc)]
    result = runner.invoke(app, ["validate", str(repo), "-o", "json", "--skip", "GF011", "--skip", "GF012,GF013", *locations])
    data = json.loads(result.stdout)
    checks = {f["check"] for f in data["findings"]}
    assert not checks & {"GF011", "GF012", "GF013"} and "GF100" in checks
    assert data["skipped_checks"] == ["GF011", "GF012", "GF013"]
