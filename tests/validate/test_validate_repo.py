"""validate_repo end to end on small Flux repos."""

from __future__ import annotations

import json

from generator.validate import validate_repo

from .test_schemas import WIDGET_CRD


def flux_ks(name: str, path: str) -> dict:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": path, "prune": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
    }


def test_clean_repo_is_ok(make_repo, good_deployment, schema_locations):
    repo = make_repo({
        "clusters/prod/apps.yaml": flux_ks("apps", "./apps/production"),
        "apps/base/web/kustomization.yaml": "resources: [deployment.yaml]\n",
        "apps/base/web/deployment.yaml": good_deployment(),
        "apps/production/kustomization.yaml": "resources: [../base/web]\n",
    })
    report = validate_repo(repo, schema_locations=schema_locations)
    assert report.findings == [] and report.render_errors == [] and report.missing_schemas == []
    assert report.ok
    assert report.counts == {"entrypoints": 2, "objects": 2, "errors": 0, "warnings": 0, "render_errors": 0, "missing_schemas": 0}
    json.dumps(report.to_dict())


def test_problems_are_reported_with_their_origin(make_repo, good_deployment, schema_locations):
    typo = good_deployment()
    typo["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    bad_ks = flux_ks("apps", "./apps/production")
    bad_ks["spec"]["healthcheck"] = []
    repo = make_repo({
        "clusters/prod/apps.yaml": bad_ks,
        "apps/production/kustomization.yaml": "resources: [deployment.yaml, secret.yaml, rbac.yaml, widget.yaml]\n",
        "apps/production/deployment.yaml": typo,
        "apps/production/secret.yaml": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "hunter2"}},
        "apps/production/rbac.yaml": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "all"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        "apps/production/widget.yaml": {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
        "apps/broken/kustomization.yaml": "resources: [gone.yaml]\n",
    })
    report = validate_repo(repo, schema_locations=schema_locations)
    found = {(f.entrypoint, f.kind, f.check, f.message, f.source) for f in report.findings}
    assert found == {
        ("clusters/prod", "Kustomization", "GF100", "spec.healthcheck: unknown field 'healthcheck'", "clusters/prod/apps.yaml"),
        ("apps/production", "Deployment", "GF100", "spec.template.spec.containers[0].imagePullPolcy: unknown field 'imagePullPolcy'", "apps/production/deployment.yaml"),
        ("apps/production", "Secret", "GF013", "Plaintext Secret committed to Git: keys password", "apps/production/secret.yaml"),
        ("apps/production", "Role", "GF014", "RBAC rule uses a wildcard: rules[0] has '*' in apiGroups, resources, verbs", "apps/production/rbac.yaml"),
    }
    assert [(e.entrypoint, "gone.yaml" in e.message) for e in report.render_errors] == [("apps/broken", True)]
    assert [(m.kind, m.name, m.source) for m in report.missing_schemas] == [("Widget", "w", "apps/production/widget.yaml")]
    assert not report.ok


def test_missing_schemas_can_be_ignored(make_repo, schema_locations):
    repo = make_repo({"apps/kustomization.yaml": "resources: [w.yaml]\n", "apps/w.yaml": {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}})
    assert not validate_repo(repo, schema_locations=schema_locations).ok
    report = validate_repo(repo, schema_locations=schema_locations, ignore_missing_schemas=True)
    assert report.ok and len(report.missing_schemas) == 1  # still listed, just not fatal


def test_warnings_do_not_fail(make_repo, good_deployment, schema_locations):
    d = good_deployment()
    d["spec"]["template"]["spec"]["containers"][0].pop("livenessProbe")
    repo = make_repo({"apps/kustomization.yaml": "resources: [d.yaml]\n", "apps/d.yaml": d})
    report = validate_repo(repo, schema_locations=schema_locations)
    assert [(f.check, f.severity) for f in report.findings] == [("GF011", "warning")]
    assert report.ok


def test_a_custom_resource_rendered_before_its_crd_is_checked_against_it(make_repo, schema_locations, monkeypatch):
    """Builds are checked as they arrive; one whose kind only a CRD from a later build describes is checked
    against that CRD once every build is in, neither reported missing nor left unchecked."""
    from generator import render

    repo = make_repo({
        "a-widgets/kustomization.yaml": "resources: [w.yaml]\n",
        "a-widgets/w.yaml": {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "x"},
                             "spec": {"size": 3, "colour": "red"}},
        "z-crds/kustomization.yaml": "resources: [crd.yaml]\n",
        "z-crds/crd.yaml": WIDGET_CRD,
    })
    order = []
    real_stream = render.render_stream

    def widgets_first(repo, eps, **kwargs):  # the CRD's build arrives last
        results = sorted(real_stream(repo, eps, **kwargs), key=lambda item: item[1].entrypoint.rel.startswith("z-"))
        order.extend(result.entrypoint.rel for _, result in results)
        yield from results

    monkeypatch.setattr("generator.validate.render_stream", widgets_first)
    report = validate_repo(repo, schema_locations=schema_locations, schema_catalog="")
    assert order == ["a-widgets", "z-crds"]
    assert report.missing_schemas == []
    assert [(f.kind, f.check, f.message) for f in report.findings if f.check == "GF100"] == [
        ("Widget", "GF100", "spec.colour: unknown field 'colour'")]
