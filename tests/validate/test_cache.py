"""validate's cache (generator/validate/cache.py): an unchanged entrypoint is reused, anything it reads or is
checked against invalidates it, and results with and without the cache are the same."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from generator.cli import app
from generator.validate import validate_repo
from generator.validate.cache import ValidateCache


@pytest.fixture
def repo(make_repo, good_deployment):
    """Two apps: web (a base and dev/prod overlays) and api (one kustomization); a Flux Kustomization in clusters/
    builds web/prod (without load restrictions, as Flux does)."""
    api = good_deployment()
    api["metadata"]["name"] = "api"
    return make_repo({
        "apps/web/base/kustomization.yaml": {"resources": ["deployment.yaml"]},
        "apps/web/base/deployment.yaml": good_deployment(),
        "apps/web/dev/kustomization.yaml": {"resources": ["../base"], "namePrefix": "dev-"},
        "apps/web/prod/kustomization.yaml": {"resources": ["../base"], "namePrefix": "prod-"},
        "apps/api/kustomization.yaml": {"resources": ["deployment.yaml"]},
        "apps/api/deployment.yaml": api,
        "clusters/prod/apps.yaml": {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {"interval": "10m", "path": "./apps/web/prod", "prune": True,
                     "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
        },
    })


@pytest.fixture
def schemas(tmp_path, schema_locations) -> list[str]:
    """A copy of the bundled CRD schemas that a test may edit (a --schema-location wins over the bundle)."""
    from generator.validate.schemas import BUNDLED_SCHEMAS

    copy = tmp_path / "schemas"
    shutil.copytree(BUNDLED_SCHEMAS, copy)
    return [str(copy), *schema_locations]


def run(repo: Path, schemas: list[str], cache: ValidateCache | None):
    report = validate_repo(repo, schema_locations=schemas, cache=cache)
    return report, json.dumps(report.to_dict(), sort_keys=True, default=str)


def test_an_unchanged_repo_is_reused_whole_and_reports_the_same(repo, schemas, tmp_path):
    _, fresh = run(repo, schemas, None)
    first = ValidateCache(tmp_path / "cache")
    report, cold = run(repo, schemas, first)
    assert first.hits == 0 and report.ok
    warm_cache = ValidateCache(tmp_path / "cache")
    _, warm = run(repo, schemas, warm_cache)
    assert warm_cache.misses == 0
    assert warm_cache.hits == 2 * len(report.entrypoints)  # render and checks of every entrypoint
    assert fresh == cold == warm


def test_reported_objects_keep_their_source_when_reused(repo, schemas, tmp_path):
    """validate renders without kustomize's origin annotations and builds again, with them, only the entrypoints
    it reports on: the sources it found are cached with the render, so a warm run names the same files."""
    web = repo / "apps/web/base/deployment.yaml"
    deployment = yaml.safe_load(web.read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    web.write_text(yaml.safe_dump(deployment))
    cache = ValidateCache(tmp_path / "cache")
    report, cold = run(repo, schemas, cache)
    typos = {(f.entrypoint, f.source) for f in report.findings if "imagePullPolcy" in f.message}
    assert typos == {("apps/web/dev", "apps/web/base/deployment.yaml"), ("apps/web/prod", "apps/web/base/deployment.yaml")}
    warm_cache = ValidateCache(tmp_path / "cache")
    _, warm = run(repo, schemas, warm_cache)
    assert warm_cache.misses == 0 and warm == cold


def test_a_changed_base_invalidates_every_overlay_that_uses_it(repo, schemas, tmp_path, good_deployment):
    report, _ = run(repo, schemas, ValidateCache(tmp_path / "cache"))
    assert {"apps/web/dev", "apps/web/prod", "apps/api"} <= set(report.entrypoints)
    bad = good_deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyTypo"] = "Always"
    (repo / "apps/web/base/deployment.yaml").write_text(json.dumps(bad))

    cache = ValidateCache(tmp_path / "cache")
    report, cached = run(repo, schemas, cache)
    flagged = {f.entrypoint for f in report.findings if "imagePullPolicyTypo" in f.message}
    assert flagged == {"apps/web/dev", "apps/web/prod"}  # both overlays re-rendered and re-checked
    assert cache.misses == 2 * 2  # render and checks of the two overlays
    assert cache.hits == 2 * (len(report.entrypoints) - 2)  # everything else was reused
    _, fresh = run(repo, schemas, None)
    assert cached == fresh


def age(repo: Path, seconds: int = 3600) -> None:
    """Make every file look last modified ``seconds`` ago, out of the window where a same-size edit in the same
    clock tick could hide (so the cache trusts size and time, as it will on a real repo)."""
    for path in repo.rglob("*"):
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns - seconds * 1_000_000_000))


def test_discovery_is_reused_only_while_nothing_it_reads_changed(repo, schemas, tmp_path, monkeypatch):
    import generator.validate as validate_module

    age(repo)
    run(repo, schemas, ValidateCache(tmp_path / "cache"))
    discoveries = []
    real = validate_module.discover_entrypoints
    monkeypatch.setattr(validate_module, "discover_entrypoints", lambda r: discoveries.append(r) or real(r))

    # An image tag and a comment: the same entrypoints.
    overlay = repo / "apps/web/dev/kustomization.yaml"
    overlay.write_text(overlay.read_text() + "# reviewed\nimages:\n- name: ghcr.io/acme/web\n  newTag: 1.2.4\n")
    cache = ValidateCache(tmp_path / "cache")
    _, warm = run(repo, schemas, cache)
    assert discoveries == []
    assert cache.misses == 2  # apps/web/dev rendered and checked again, nothing else
    assert warm == run(repo, schemas, None)[1]

    # A Flux Kustomization now declares apps/web/dev: discovered again, built the way Flux builds it.
    flux = repo / "clusters/prod/apps.yaml"
    flux.write_text(flux.read_text().replace("./apps/web/prod", "./apps/web/dev"))
    discoveries.clear()
    report, warm = run(repo, schemas, ValidateCache(tmp_path / "cache"))
    assert len(discoveries) == 1
    assert warm == run(repo, schemas, None)[1]
    assert "apps/web/prod" in report.entrypoints  # a root again, now that nothing declares it


def test_an_edit_that_keeps_size_and_time_is_seen_in_the_same_clock_tick(repo, schemas, tmp_path, good_deployment):
    """A file rewritten with the same size and modification time right after a run (git's "racily clean"
    case) is read again, not trusted by its time."""
    report, _ = run(repo, schemas, ValidateCache(tmp_path / "cache"))
    assert report.ok
    deployment = repo / "apps/api/deployment.yaml"
    before = deployment.stat()
    text = deployment.read_text()
    assert "runAsNonRoot: true" in text
    deployment.write_text(text.replace("runAsNonRoot: true", "runAsNonRoot: 1234"))
    os.utime(deployment, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert deployment.stat().st_size == before.st_size
    report, warm = run(repo, schemas, ValidateCache(tmp_path / "cache"))
    assert any("runAsNonRoot" in f.message for f in report.findings)
    assert warm == run(repo, schemas, None)[1]


def test_a_file_an_overlay_names_outside_its_directory_is_part_of_its_key(repo, schemas, tmp_path):
    (repo / "apps/web/patches").mkdir()
    (repo / "apps/web/patches/replicas.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  replicas: 2\n")
    kustomization = repo / "apps/web/prod/kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "patches:\n- path: ../patches/replicas.yaml\n")
    report, _ = run(repo, schemas, ValidateCache(tmp_path / "cache"))
    assert report.ok, report.render_errors
    (repo / "apps/web/patches/replicas.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  replicas: two\n")
    report, _ = run(repo, schemas, ValidateCache(tmp_path / "cache"))
    assert any(f.entrypoint == "apps/web/prod" and "replicas" in f.message for f in report.findings)


def test_a_changed_schema_set_invalidates_the_checks(repo, schemas, tmp_path):
    report, _ = run(repo, schemas, ValidateCache(tmp_path / "cache"))
    assert report.ok
    schema_file = Path(schemas[0]) / "kustomize.toolkit.fluxcd.io" / "kustomization_v1.json"
    schema = json.loads(schema_file.read_text())
    del schema["properties"]["spec"]["properties"]["prune"]
    schema_file.write_text(json.dumps(schema))
    cache = ValidateCache(tmp_path / "cache")
    report, _ = run(repo, schemas, cache)
    assert any(f.kind == "Kustomization" and "prune" in f.message for f in report.findings)
    assert cache.hits >= len(report.entrypoints)  # the renders were still reused


def test_the_cli_caches_under_the_user_cache_dir_and_no_cache_turns_it_off(repo, schemas, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    runner = CliRunner()
    where = tmp_path / "xdg" / "gitops-forge" / "validate"
    result = runner.invoke(app, ["validate", str(repo), "-s", schemas[0], "-o", "json", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert not where.exists()
    result = runner.invoke(app, ["validate", str(repo), "-s", schemas[0], "-o", "json"])
    assert result.exit_code == 0, result.output
    assert len(list(where.glob("*.pickle"))) == 1
    again = runner.invoke(app, ["validate", str(repo), "-s", schemas[0], "-o", "json"])
    assert json.loads(again.output) == json.loads(result.output)
