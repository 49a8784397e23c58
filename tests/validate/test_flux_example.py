"""A repo in the flux2-kustomize-helm-example layout (fixtures/flux2-kustomize-helm-example) validates clean,
is rendered the way kustomize-controller renders it, and each cross-reference in it is really checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.cli import app
from generator.render import render_repo
from generator.validate import validate_repo

EXAMPLE = "flux2-kustomize-helm-example"


def problems(report) -> list[str]:
    out = [f"{f.check} {f.kind}/{f.name} {f.source}: {f.message}" for f in report.findings]
    out += [f"render {e.entrypoint}: {e.message}" for e in report.render_errors]
    return out + [f"no schema: {m.api_version} {m.kind}/{m.name}" for m in report.missing_schemas]


def test_example_validates_clean(fixture_repo, schema_locations):
    repo = fixture_repo(EXAMPLE)
    report = validate_repo(repo, schema_locations=schema_locations)
    assert problems(report) == []
    assert report.ok and report.skipped_checks == []
    assert {"clusters/staging", "clusters/production", "apps/staging", "apps/production",
            "infrastructure/controllers", "infrastructure/configs"} <= set(report.entrypoints)


def test_cli_exit_zero(fixture_repo, schema_locations):
    repo = fixture_repo(EXAMPLE)
    result = CliRunner().invoke(app, ["validate", str(repo), *(x for loc in schema_locations for x in ("-s", loc))])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_rendered_like_kustomize_controller(fixture_repo):
    repo = fixture_repo(EXAMPLE)
    results = render_repo(repo)
    issuers = {}
    for r in results:
        for o in r.objects:
            if o.data["kind"] == "ClusterIssuer":
                issuers[r.entrypoint.declared_by.split("/")[1]] = o.data["spec"]["acme"]["server"]
    # The production cluster's Flux Kustomization patches the ACME server; staging keeps the file's.
    assert issuers == {
        "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
        "production": "https://acme-v02.api.letsencrypt.org/directory",
    }
    [staging] = [r for r in results if r.entrypoint.rel == "apps/staging"]
    [release] = [o for o in staging.objects if o.data["kind"] == "HelmRelease"]
    assert release.data["spec"]["chart"]["spec"]["version"] == ">=1.0.0-alpha"  # values patch applied
    assert release.data["metadata"]["namespace"] == "podinfo" and release.source == "apps/base/podinfo/release.yaml"


def edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("rel", "old", "new", "expected"),
    [
        ("apps/base/podinfo/repository.yaml", "name: podinfo", "name: podinfo-charts",
         ("GF201", "HelmRelease", "podinfo", "chart.spec.sourceRef HelmRepository podinfo/podinfo not found")),
        ("infrastructure/controllers/cert-manager.yaml", "kind: OCIRepository\n    name: cert-manager",
         "kind: OCIRepository\n    name: cert-manager-chart",
         ("GF201", "HelmRelease", "cert-manager", "chartRef OCIRepository cert-manager/cert-manager-chart not found")),
        ("clusters/staging/apps.yaml", "- name: infra-configs", "- name: infra-config",
         ("GF202", "Kustomization", "apps", "dependsOn Kustomization flux-system/infra-config not found")),
        ("clusters/production/apps.yaml", "path: ./apps/production", "path: ./apps/prod",
         ("GF203", "Kustomization", "apps", "spec.path 'apps/prod'")),
        ("apps/base/podinfo/release.yaml", "apiVersion: helm.toolkit.fluxcd.io/v2", "apiVersion: helm.toolkit.fluxcd.io/v2beta2",
         ("GF019", "HelmRelease", "podinfo", "use helm.toolkit.fluxcd.io/v2")),
    ],
    ids=["helmrepository", "ocirepository", "dependson", "path", "v2beta2"],
)
def test_each_reference_is_checked(fixture_repo, schema_locations, rel, old, new, expected):
    repo = fixture_repo(EXAMPLE)
    edit(repo, rel, old, new)
    report = validate_repo(repo, schema_locations=schema_locations)
    found = {(f.check, f.kind, f.name) for f in report.findings}
    check, kind, name, words = expected
    assert found == {(check, kind, name)}, problems(report)
    assert all(words in f.message for f in report.findings), problems(report)
    assert report.render_errors == [] and report.missing_schemas == []


def test_reference_missing_in_one_cluster_only(fixture_repo, schema_locations):
    """A dependency that exists in what staging applies but not in what production applies."""
    repo = fixture_repo(EXAMPLE)
    edit(repo, "clusters/production/infrastructure.yaml", "name: infra-configs", "name: infra-settings")
    report = validate_repo(repo, schema_locations=schema_locations)
    [finding] = report.findings
    assert (finding.check, finding.source) == ("GF202", "clusters/production/apps.yaml")
