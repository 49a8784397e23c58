"""Checks on the repo's kustomization files: deprecated fields, and where strategic-merge patches live."""

from __future__ import annotations

import pytest

from generator.validate.kustomizations import DEPRECATED_FIELDS, scan


@pytest.mark.parametrize("field", sorted(DEPRECATED_FIELDS))
def test_each_deprecated_field(make_repo, field):
    repo = make_repo({"apps/kustomization.yaml": f"{field}: []\n", "apps/ok/kustomization.yaml": "resources: []\nlabels: []\npatches: []\n"})
    [fv] = scan(repo).violations
    assert (fv.file, fv.violation.check.id) == ("apps/kustomization.yaml", "GF021")
    assert fv.violation.detail.startswith(f"{field} -> use ")


def test_hidden_directories_are_ignored(make_repo):
    assert scan(make_repo({".github/kustomization.yaml": "bases: []\n"})).violations == []


def test_patched_containers_are_indexed_from_every_patch_form(make_repo):
    patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: {}\n"
    repo = make_repo({
        "a/kustomization.yaml": "patches:\n  - patch: |-\n" + "".join(f"      {line}\n" for line in patch.format("inline").splitlines()),
        "b/kustomization.yaml": "patches:\n  - path: p.yaml\n",
        "b/p.yaml": patch.format("from-file"),
        "c/kustomization.yaml": "patchesStrategicMerge:\n  - p.yaml\n",
        "c/p.yaml": patch.format("legacy"),
        "d/kustomization.yaml": "patches:\n  - target: {kind: Deployment}\n    patch: '[{\"op\": \"add\", \"path\": \"/x\", \"value\": 1}]'\n",
    })
    files = scan(repo)
    assert files.patch_for("Deployment", "web", "inline", "a") == "a/kustomization.yaml"
    assert files.patch_for("Deployment", "web", "from-file", "x") == "b/p.yaml"
    assert files.patch_for("Deployment", "web", "legacy", "c") == "c/p.yaml"
    assert files.patch_for("Deployment", "web", "nothing", "a") is None
