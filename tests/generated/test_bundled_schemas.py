"""The CRD schemas bundled with gitops-forge (generator/schemas/) cover every generated repo at the versions the
template pins, so `gitops-forge validate` needs no --schema-location and no network for a generated repo."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from generator.cli import app
from generator.validate.schemas import BUNDLED_SCHEMAS, SchemaStore, bundled_file, bundled_schemas

from .test_generated_repos import VARIANTS
from .variants import TEMPLATE, generate

SOURCES = TEMPLATE / "scripts" / "crd_sources.yaml"
# Nothing listens on port 9: every request through this proxy fails the way an offline machine's does.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, tmp_path_factory):
    return request.param, generate(tmp_path_factory, VARIANTS[request.param])


def config() -> dict:
    return yaml.safe_load(SOURCES.read_text(encoding="utf-8"))


# --- what generated repos pin ------------------------------------------------------------------------


def _version(value) -> str:
    return str(value).strip().strip('"').removeprefix("v")


def _chart_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def pins(repo: Path, objects: list[dict]) -> dict[str, set[str]]:
    """name -> versions this repo pins: charts (HelmRelease, its OCIRepository, Argo CD Application sources) by
    chart name, Flux and Argo CD by the versions its CI installs or its FluxInstance runs."""
    found: dict[str, set[str]] = {}

    def add(name: str, version) -> None:
        if name and version:
            found.setdefault(name, set()).add(_version(version))

    oci = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects
           if o.get("kind") == "OCIRepository" and o.get("apiVersion", "").startswith("source.toolkit.fluxcd.io/")}
    for o in objects:
        api, kind, spec = o.get("apiVersion", ""), o.get("kind"), o.get("spec") or {}
        if kind == "HelmRelease" and api.startswith("helm.toolkit.fluxcd.io/"):
            chart = (spec.get("chart") or {}).get("spec") or {}
            add(chart.get("chart", ""), chart.get("version"))
            ref = spec.get("chartRef") or {}
            if ref.get("kind") == "OCIRepository":
                source = oci.get((ref.get("namespace") or o["metadata"].get("namespace"), ref.get("name")))
                assert source, f"HelmRelease {o['metadata']['name']}: chartRef {ref} is not in the repo"
                tag = (source["spec"].get("ref") or {})
                add(_chart_of(source["spec"]["url"]), tag.get("tag") or tag.get("semver"))
        elif kind in ("Application", "ApplicationSet") and api.startswith("argoproj.io/"):
            template = spec.get("template", {}).get("spec", {}) if kind == "ApplicationSet" else spec
            for src in [*( [template["source"]] if template.get("source") else []), *(template.get("sources") or [])]:
                if src.get("chart"):
                    add(src["chart"], src.get("targetRevision"))
                elif str(src.get("repoURL", "")).startswith("oci://"):
                    add(_chart_of(src["repoURL"]), src.get("targetRevision"))
        elif kind == "FluxInstance" and api.startswith("fluxcd.controlplane.io/"):
            add("flux", (spec.get("distribution") or {}).get("version", "").removesuffix(".x"))
    ci = [p for p in [*repo.glob(".github/workflows/*.y*ml"), repo / ".gitlab-ci.yml"] if p.is_file()]
    for path in ci:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"\bFLUX_VERSION:\s*\"?v?([0-9][\w.]*)", text):
            add("flux", m.group(1))
        for m in re.finditer(r"\bARGOCD_VERSION:\s*\"?v?([0-9][\w.]*)", text):
            add("argocd", m.group(1))
        for job in (yaml.safe_load(text) or {}).get("jobs", {}).values() if path.parent.name == "workflows" else ():
            for step in job.get("steps") or []:
                uses = str(step.get("uses", ""))
                if uses.startswith("fluxcd/flux2/action@"):  # the CLI version it installs, else the action's tag
                    ref = uses.partition("@")[2]
                    add("flux", (step.get("with") or {}).get("version") or (ref if re.match(r"v?\d", ref) else ""))
    return found


def _matches(pinned: str, source: str) -> bool:
    """The template's version against the config's: equal, or within the config's major.minor ("2.9")."""
    return pinned == source or pinned.startswith(source + ".")


@pytest.fixture(scope="module")
def all_pins(tmp_path_factory) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in sorted(VARIANTS):
        g = generate(tmp_path_factory, VARIANTS[name])
        for key, versions in pins(g.repo, [o.data for r in g.rendered for o in r.objects]).items():
            out.setdefault(key, set()).update(versions)
    return out


def test_pin_reader_finds_the_pins_of_charts_and_apps(tmp_path):
    objects = [
        {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "a", "namespace": "x"},
         "spec": {"chart": {"spec": {"chart": "sealed-secrets", "version": "2.18.5"}}}},
        {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "b", "namespace": "m"},
         "spec": {"chartRef": {"kind": "OCIRepository", "name": "kps"}}},
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository", "metadata": {"name": "kps", "namespace": "m"},
         "spec": {"url": "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack", "ref": {"tag": "88.5.3"}}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "c"},
         "spec": {"sources": [{"chart": "argo-cd", "targetRevision": "10.1.1"}, {"repoURL": "https://x", "ref": "values"}]}},
        {"apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxInstance", "metadata": {"name": "flux"},
         "spec": {"distribution": {"version": "2.9.x"}}},
    ]
    (tmp_path / ".gitlab-ci.yml").write_text('variables:\n  ARGOCD_VERSION: "v3.4.4"\n')
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yaml").write_text(yaml.safe_dump({"jobs": {"flux": {"steps": [
        {"uses": "fluxcd/flux2/action@889be9d6cc8afa8ed639e1e1ba4ab678e3b38d8c", "with": {"version": "2.9.5"}}]}}}))
    assert pins(tmp_path, objects) == {"sealed-secrets": {"2.18.5"}, "kube-prometheus-stack": {"88.5.3"},
                                       "argo-cd": {"10.1.1"}, "flux": {"2.9", "2.9.5"}, "argocd": {"3.4.4"}}


def test_every_pin_of_the_template_has_its_schemas_at_that_version(all_pins):
    """A chart or Flux/Argo CD version bump in the template fails here until scripts/crd_sources.yaml is moved
    to the same version and the schemas are rebuilt (python scripts/build_crd_schemas.py --fetch)."""
    cfg = config()
    by_pin: dict[str, list[tuple[str, str]]] = {}
    for src in cfg["sources"]:
        for key, version in (src.get("pins") or {}).items():
            by_pin.setdefault(key, []).append((src["name"], _version(version)))
    assert {"flux", "argocd", "argo-cd", "sealed-secrets", "kube-prometheus-stack"} <= set(all_pins)
    problems = []
    for key, versions in sorted(all_pins.items()):
        if key in (cfg.get("no_crds") or []):
            continue
        if key not in by_pin:
            problems.append(f"{key} {sorted(versions)}: not in scripts/crd_sources.yaml (add its CRDs, or list it "
                            "under no_crds)")
            continue
        for version in sorted(versions):
            stale = [f"{name} {v}" for name, v in by_pin[key] if not _matches(version, v)]
            if stale:
                problems.append(f"{key} {version} is pinned, the schemas are built for {', '.join(stale)}")
    assert problems == []


def test_every_bundled_source_is_pinned_by_the_template(all_pins):
    """No schemas in the wheel for a version no generated repo uses."""
    for src in config()["sources"]:
        if src.get("bundle", True):
            for key, version in src["pins"].items():
                assert any(_matches(v, _version(version)) for v in all_pins.get(key, ())), (src["name"], key, version)


# --- the bundle --------------------------------------------------------------------------------------


def _nodes(node, path="$"):
    """Every subschema of a schema, with its path (the values of properties/items/additionalProperties/...)."""
    yield path, node
    for key in ("properties", "patternProperties"):
        for name, sub in (node.get(key) or {}).items():
            yield from _nodes(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            yield from _nodes(node[key], f"{path}.{key}")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(node.get(key) or []):
            yield from _nodes(sub, f"{path}.{key}[{i}]")


def test_bundle_matches_its_provenance_and_is_strict():
    provenance = bundled_schemas()
    files = {p.relative_to(BUNDLED_SCHEMAS).as_posix() for p in BUNDLED_SCHEMAS.rglob("*.json")} - {"_provenance.json"}
    assert files and files == set(provenance)
    cfg = config()
    sources = {(f"github.com/{s['repo']}", s["tag"]): s for s in cfg["sources"]}
    for name, prov in provenance.items():
        assert name == bundled_file(prov["group"], prov["version"], prov["kind"])
        assert re.fullmatch(r"[0-9a-f]{40}", prov["commit"]) and prov["path"].endswith((".yaml", ".yml"))
        src = sources[(prov["repo"], prov["tag"])]  # every file comes from a configured source
        assert src.get("bundle", True) and prov["licence"] == src["licence"]
        assert prov["licence"] in cfg["bundle_licences"]  # cleared for the Apache-2.0 wheel
        schema = json.loads((BUNDLED_SCHEMAS / name).read_text(encoding="utf-8"))
        assert prov["strict"] and schema["additionalProperties"] is False, name
        for path, node in _nodes(schema):
            assert "description" not in node, (name, path)  # dropped: the wheel stays small
            if node.get("x-kubernetes-preserve-unknown-fields"):
                assert node.get("additionalProperties") is not False, (name, path)
            elif "properties" in node:
                assert "additionalProperties" in node, (name, path)  # closed, or the CRD's own map schema
            if node.get("x-kubernetes-int-or-string"):
                assert {"type": "integer"} in node["anyOf"] and {"type": "string"} in node["anyOf"], (name, path)


def test_every_crd_kind_of_a_generated_repo_is_bundled(variant):
    name, generated = variant
    builtin_groups = SchemaStore([])._builtin_groups
    custom = set()
    for r in generated.rendered:
        for o in r.objects:
            group, _, version = o.data["apiVersion"].rpartition("/")
            if group not in builtin_groups:
                custom.add((group, version, o.data["kind"]))
    assert custom, name
    assert sorted(f"{g}/{v} {k}" for g, v, k in custom if bundled_file(g, v, k) not in bundled_schemas()) == []


def validate_offline(repo: Path, monkeypatch, cache: Path) -> tuple[int, dict]:
    """`gitops-forge validate --format json` with no -s, no $GITOPS_FORGE_SCHEMAS, the default CRDs-catalog and
    no network."""
    monkeypatch.delenv("GITOPS_FORGE_SCHEMAS", raising=False)
    monkeypatch.delenv("GITOPS_FORGE_SCHEMA_CATALOG", raising=False)  # the default online catalog, unreachable
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["validate", str(repo), "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_offline_validate_without_schema_location_has_every_schema(variant, monkeypatch, tmp_path):
    name, generated = variant
    _, report = validate_offline(generated.repo, monkeypatch, tmp_path / "cache")
    assert [(m["api_version"], m["kind"]) for m in report["missing_schemas"]] == []
    assert [f for f in report["findings"] if f["check"] == "GF102"] == [] and report["render_errors"] == []
    assert report["schema_locations"] == [] and report["bundled_schemas"] is True
    assert not (tmp_path / "cache" / "gitops-forge" / "schemas").exists()  # nothing was fetched or needed


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_offline_validate_without_schema_location_is_clean(name, tmp_path_factory, monkeypatch, tmp_path):
    generated = generate(tmp_path_factory, VARIANTS[name])
    code, report = validate_offline(generated.repo, monkeypatch, tmp_path / "cache")
    assert [f"{f['check']} {f['kind']}/{f['name']}: {f['message']}" for f in report["findings"]] == []
    assert code == 0 and report["ok"] is True
