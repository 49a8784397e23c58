"""Shapes `validate` met on real repos (fixtures/real-repo-shapes): paths inside other sources are not built
from this repository, SOPS-encrypted files validate as kustomize-controller applies them, and the Flux Operator
kinds are recognised."""

from __future__ import annotations

from generator.validate import validate_repo

SHAPES = "real-repo-shapes"


def test_real_repo_shapes_validate_clean(fixture_repo, schema_locations):
    repo = fixture_repo(SHAPES)
    report = validate_repo(repo, schema_locations=schema_locations, schema_catalog="")
    assert [(f.check, f.kind, f.message) for f in report.findings] == []
    assert report.render_errors == [] and report.missing_schemas == []
    # kyverno-controller's `path: ./` is inside its OCIRepository, dev-team's `./deploy/production` inside the
    # team's repository and ops-team's `./deploy/ops` inside the team's branch of this repository: none is built
    # from this tree or reported missing from it (the root would be built whole, every object twice).
    assert sorted(report.entrypoints) == ["clusters/production", "infrastructure/secrets"]
    assert report.ok


def test_sops_metadata_is_left_out_but_the_object_still_checked(fixture_repo, schema_locations):
    repo = fixture_repo(SHAPES)
    secret = repo / "infrastructure/secrets/registry-credentials.yaml"
    secret.write_text(secret.read_text().replace("type: Opaque", "type: Opaque\nimmutible: true"))
    report = validate_repo(repo, schema_locations=schema_locations, schema_catalog="")
    assert [(f.check, f.name) for f in report.findings] == [("GF100", "registry-credentials")]
    assert "immutible" in report.findings[0].message


def test_flux_operator_kinds_are_checked_against_their_outline(fixture_repo, schema_locations):
    repo = fixture_repo(SHAPES)
    operator = repo / "clusters/production/flux-operator.yaml"
    operator.write_text(operator.read_text().replace("    registry: ghcr.io/fluxcd\n", ""))
    report = validate_repo(repo, schema_locations=schema_locations, schema_catalog="")
    assert [(f.check, f.kind) for f in report.findings] == [("GF100", "FluxInstance")]
    assert "registry" in report.findings[0].message
