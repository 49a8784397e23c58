"""flux_install across the real 0.3.0 release: an updated repo keeps `flux bootstrap`, and
`gitops-forge set flux_install=operator` moves it to the Flux Operator (docs/flux-operator-migration.md)."""

from __future__ import annotations

import subprocess

import yaml

from generator import scaffold, template_source, workflows
from generator.validate import validate_repo

BOOTSTRAPPED = "# Flux Version: v2.9.5\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n"


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def resources(repo, cluster):
    return yaml.safe_load((repo / f"clusters/{cluster}/flux-system/kustomization.yaml").read_text())["resources"]


def test_a_bootstrapped_0_3_0_repo_keeps_bootstrap_and_migrates_with_set(tmp_path, schema_locations):
    source = template_source.builtin()
    repo = tmp_path / "fleet"
    scaffold.new(repo, {"project_name": "fleet"}, source, version="v0.3.0")
    assert scaffold.init_git(repo, "main")
    # What the install pull request of 0.3.0's bootstrap left behind: real manifests instead of placeholders.
    components = repo / "clusters/dev/flux-system/gotk-components.yaml"
    components.write_text(BOOTSTRAPPED)
    git(repo, "commit", "-qam", "Install Flux on dev")

    result = scaffold.update(repo, source)

    assert result.conflicts == []
    answers = scaffold.read_answers(repo)
    assert answers["flux_install"] == "bootstrap"
    assert components.read_text() == BOOTSTRAPPED  # the cluster's manifests survive the update
    assert (repo / "clusters/prod/flux-system/gotk-sync.yaml").exists()  # placeholders stay (_skip_if_exists)
    assert resources(repo, "dev") == ["gotk-components.yaml", "gotk-sync.yaml"]
    assert not (repo / "clusters/dev/flux-system/flux-instance.yaml").exists()
    report = validate_repo(repo, schema_locations=schema_locations)
    assert report.render_errors == [] and report.findings == [], report.to_dict()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Update to the current template")

    workflows.set_answers(repo, {"flux_install": "operator"})

    assert scaffold.read_answers(repo)["flux_install"] == "operator"
    for cluster in ("dev", "staging", "prod"):
        assert resources(repo, cluster) == ["flux-operator-ocirepository.yaml", "flux-operator-helmrelease.yaml", "flux-instance.yaml"]
        instance = yaml.safe_load((repo / f"clusters/{cluster}/flux-system/flux-instance.yaml").read_text())
        assert instance["spec"]["sync"]["path"] == f"clusters/{cluster}"
    report = validate_repo(repo, schema_locations=schema_locations)
    assert report.render_errors == [] and report.findings == [], report.to_dict()
