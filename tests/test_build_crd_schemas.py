"""scripts/build_crd_schemas.py: pinned upstream CRDs in a local git mirror -> strict schemas with provenance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "build_crd_schemas.py"


def crd(kind: str, versions: list[tuple[str, bool]]) -> dict:
    schema = {"openAPIV3Schema": {"type": "object", "description": "x", "properties": {
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}, "port": {"x-kubernetes-int-or-string": True},
                                                  "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{kind.lower()}s.example.com"},
            "spec": {"group": "example.com", "names": {"kind": kind, "plural": f"{kind.lower()}s"}, "scope": "Namespaced",
                     "versions": [{"name": v, "served": served, "storage": i == 0, "schema": schema}
                                  for i, (v, served) in enumerate(versions)]}}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def mirror(tmp_path, isolated_user) -> tuple[Path, str]:
    """A mirror directory holding acme/widgets (owner+name layout) with a release tag v1.2.0."""
    repo = tmp_path / "mirrors" / "acme+widgets"
    (repo / "config" / "crd").mkdir(parents=True)
    (repo / "LICENSE").write_text("\n                                 Apache License\n                           Version 2.0, January 2004\n")
    (repo / "config" / "crd" / "widgets.yaml").write_text(yaml.safe_dump(crd("Widget", [("v1", True), ("v1beta1", False)])))
    (repo / "config" / "crd" / "gadgets.yaml").write_text(
        "# a comment\n---\n" + yaml.safe_dump(crd("Gadget", [("v1", True)])) + "---\nenum: [=, '!=']\n")
    (repo / "config" / "crd" / "README.md").write_text("not a CRD")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "release")
    git(repo, "tag", "v1.2.0")
    (repo / "config" / "crd" / "widgets.yaml").write_text("changed after the tag: not read\n")
    git(repo, "commit", "-qam", "later")
    return tmp_path / "mirrors", git(repo, "rev-parse", "v1.2.0")


def build(tmp_path: Path, mirror: Path, sources: list[dict], *extra: str,
          hand_written: list[dict] | None = None) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "sources.yaml"
    config.write_text(yaml.safe_dump({"bundle_licences": ["Apache-2.0", "MIT"], "sources": sources,
                                      **({"hand_written": hand_written} if hand_written is not None else {})}))
    return subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), "--mirror", str(mirror),
                           "--out", str(tmp_path / "out"), *extra], capture_output=True, text=True)


SOURCE = {"name": "widgets", "repo": "acme/widgets", "tag": "v1.2.0", "paths": ["config/crd"], "licence": "Apache-2.0"}


def test_builds_served_versions_at_the_tag_with_provenance(tmp_path, mirror):
    root, commit = mirror
    result = build(tmp_path, root, [SOURCE])
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    provenance = json.loads((out / "_provenance.json").read_text())
    assert sorted(provenance) == ["example.com/gadget_v1.json", "example.com/widget_v1.json"]  # v1beta1 is not served
    assert provenance["example.com/widget_v1.json"] == {
        "repo": "github.com/acme/widgets", "tag": "v1.2.0", "commit": commit, "path": "config/crd/widgets.yaml",
        "licence": "Apache-2.0", "group": "example.com", "kind": "Widget", "version": "v1", "strict": True,
        "deprecated": False,
    }
    schema = json.loads((out / "example.com" / "widget_v1.json").read_text())
    assert schema["additionalProperties"] is False and "description" not in schema
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False and "additionalProperties" not in spec["properties"]["values"]
    assert spec["properties"]["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]


def test_kinds_filter_and_sources_kept_out_of_the_bundle(tmp_path, mirror):
    root, _ = mirror
    assert build(tmp_path, root, [{**SOURCE, "kinds": ["Gadget"]}]).returncode == 0
    assert json.loads((tmp_path / "out" / "_provenance.json").read_text()).keys() == {"example.com/gadget_v1.json"}
    unbundled = [{**SOURCE, "bundle": False}]
    assert build(tmp_path, root, unbundled).returncode == 0
    assert json.loads((tmp_path / "out" / "_provenance.json").read_text()) == {}  # replaced as a whole
    assert build(tmp_path, root, unbundled, "--all").returncode == 0
    assert len(json.loads((tmp_path / "out" / "_provenance.json").read_text())) == 2


@pytest.mark.parametrize(("change", "message"), [
    ({"licence": "MIT"}, "LICENSE reads as Apache-2.0, the config says MIT"),
    ({"tag": "v9.9.9"}, "acme/widgets@v9.9.9: not in --mirror"),
    ({"licence": "AGPL-3.0"}, "licence AGPL-3.0 is not in bundle_licences; clear it there or set bundle: false"),
    ({"kinds": ["Gizmo"]}, "no CRD for Gizmo"),
])
def test_refuses_what_it_cannot_vouch_for_and_writes_nothing(tmp_path, mirror, change, message):
    root, _ = mirror
    result = build(tmp_path, root, [{**SOURCE, **change}])
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


# A schema gitops-forge wrote itself (the FluxInstance one: its CRD is AGPL-3.0), as scripts/crd_sources.yaml lists it.
HAND_WRITTEN = {"name": "flux-operator-fluxinstance", "file": "fluxcd.controlplane.io/fluxinstance_v1.json",
                "group": "fluxcd.controlplane.io", "version": "v1", "kind": "FluxInstance",
                "source": "written by gitops-forge from the FluxInstance v1 API at flux-operator v0.58.1",
                "licence": "Apache-2.0", "pins": {"flux-operator": "0.58.1"}}


def test_keeps_hand_written_schemas_unchanged_next_to_the_built_ones(tmp_path, mirror):
    root, _ = mirror
    result = build(tmp_path, root, [SOURCE], hand_written=[HAND_WRITTEN])
    assert result.returncode == 0, result.stderr
    out, name = tmp_path / "out", HAND_WRITTEN["file"]
    assert (out / name).read_bytes() == (REPO_ROOT / "generator" / "schemas" / name).read_bytes()
    provenance = json.loads((out / "_provenance.json").read_text())
    assert sorted(provenance) == ["example.com/gadget_v1.json", "example.com/widget_v1.json", name]
    assert provenance[name] == {"source": HAND_WRITTEN["source"], "licence": "Apache-2.0",
                                "group": "fluxcd.controlplane.io", "kind": "FluxInstance", "version": "v1",
                                "strict": True, "deprecated": False, "hand_written": True}
    # --only another source leaves it out, like any source not asked for.
    assert build(tmp_path, root, [SOURCE], "--only", "widgets", hand_written=[HAND_WRITTEN]).returncode == 0
    assert name not in json.loads((out / "_provenance.json").read_text())


@pytest.mark.parametrize(("change", "message"), [
    ({"licence": "AGPL-3.0"}, "licence AGPL-3.0 is not in bundle_licences"),
    ({"file": "fluxcd.controlplane.io/nothing_v1.json", "kind": "Nothing"}, "is missing; it is written by hand"),
    ({"kind": "FluxReport"}, "is not {group}/{kind}_{version}.json of its kind"),
])
def test_refuses_hand_written_schemas_it_cannot_ship(tmp_path, mirror, change, message):
    root, _ = mirror
    result = build(tmp_path, root, [SOURCE], hand_written=[{**HAND_WRITTEN, **change}])
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()
