"""A Flux repo of 0.3.0 updates to the tenant fences of 0.4.0 without losing what its teams wrote: an app's
NetworkPolicy moves from apps/base/<app>/ to the platform's tenants/base/<team>/ with the team's own rules,
and the reconciler's binding, the admission policies and the namespace label arrive."""

from __future__ import annotations

import subprocess

import yaml

from generator import scaffold, template_source
from generator.validate import validate_repo

EGRESS = """    # The database.
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: db
      ports:
        - port: 5432
          protocol: TCP
"""


def released(tmp_path, name: str):
    source = template_source.builtin()
    repo = tmp_path / name
    scaffold.new(repo, {"project_name": "fleet-repo"}, source, version="v0.3.0")
    assert scaffold.init_git(repo, "main")
    return repo, source


def test_an_edited_app_network_policy_moves_to_tenants_with_its_rules(tmp_path, schema_locations):
    repo, source = released(tmp_path, "edited")
    old = repo / "apps/base/podinfo/networkpolicy.yaml"
    old.write_text(old.read_text() + EGRESS)
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", "podinfo talks to the database"], check=True)

    result = scaffold.update(repo, source)

    assert result.conflicts == []
    assert not old.exists()
    assert "networkpolicy.yaml" not in (repo / "apps/base/podinfo/kustomization.yaml").read_text()
    moved = repo / "tenants/base/dev-team/networkpolicy-podinfo.yaml"
    policy = yaml.safe_load(moved.read_text())
    assert policy["metadata"] == {"name": "podinfo", "namespace": "dev-team"}
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "db"}}} in policy["spec"]["egress"][-1]["to"]
    assert "networkpolicy-podinfo.yaml" in (repo / "tenants/base/dev-team/kustomization.yaml").read_text()
    binding = yaml.safe_load((repo / "tenants/base/dev-team/rolebinding.yaml").read_text())
    assert binding["metadata"]["name"] == "gitops-forge-tenant-reconciler"
    assert binding["roleRef"]["name"] == "gitops-forge:tenant-reconciler"
    namespace = yaml.safe_load((repo / "tenants/base/dev-team/namespace.yaml").read_text())
    assert namespace["metadata"]["labels"]["gitops-forge.io/tenant"] == "dev-team"
    tenancy = yaml.safe_load((repo / "infrastructure/configs/tenancy/kustomization.yaml").read_text())["resources"]
    assert {"validatingadmissionpolicy-tenant-sources.yaml", "validatingadmissionpolicy-tenant-service-account.yaml",
            "validatingadmissionpolicy-tenant-no-external-ips.yaml", "clusterrole-tenant-reconciler.yaml"} <= set(tenancy)
    report = validate_repo(repo, schema_locations=schema_locations)
    assert report.render_errors == [] and report.findings == [], report.to_dict()


def test_an_unedited_app_network_policy_moves_exactly_as_the_template_writes_it(tmp_path):
    repo, source = released(tmp_path, "unedited")
    scaffold.update(repo, source)
    fresh = tmp_path / "fresh"
    scaffold.new(fresh, {"project_name": "fleet-repo"}, source)
    name = "tenants/base/dev-team/networkpolicy-podinfo.yaml"
    assert (repo / name).read_text() == (fresh / name).read_text()
