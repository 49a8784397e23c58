"""`gitops-forge validate` through the CLI: a generated repo is clean in every format; each usage or
environment problem exits 2 with one sentence."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from generator import render
from generator.cli import app
from generator.validate import SCHEMAS_ENV, default_schema_locations

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("isolated_user")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """`gitops-forge new --defaults`, as a user would run it."""
    destination = tmp_path_factory.mktemp("cli") / "platform"
    result = runner.invoke(app, ["new", str(destination), "--defaults"])
    assert result.exit_code == 0, result.output
    return destination


def locations(schema_locations: list[str]) -> list[str]:
    return [x for loc in schema_locations for x in ("--schema-location", loc)]


def test_generated_repo_is_clean_in_text(generated, schema_locations):
    result = runner.invoke(app, ["validate", str(generated), *locations(schema_locations)])
    assert result.exit_code == 0, result.output
    assert "✓ OK" in result.output
    assert result.stderr == ""  # no progress display when stderr is not a terminal


def test_generated_repo_json(generated, schema_locations):
    result = runner.invoke(app, ["validate", str(generated), "--format", "json", *locations(schema_locations)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["findings"] == [] and data["render_errors"] == [] and data["missing_schemas"] == []
    assert data["counts"]["objects"] > 0 and "clusters/dev" in data["entrypoints"]


def test_generated_repo_sarif(generated, schema_locations):
    result = runner.invoke(app, ["validate", str(generated), "-o", "SARIF", *locations(schema_locations)])
    assert result.exit_code == 0, result.output
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "gitops-forge" and run["results"] == []
    ids = [r["id"] for r in driver["rules"]]
    assert ids == sorted(ids) and {"GF001", "GF100", "GF101", "GF102", "GF201", "GF021"} <= set(ids)
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning")


def test_default_schema_location_is_the_environment_variable(generated, schema_locations, monkeypatch):
    monkeypatch.setenv(SCHEMAS_ENV, ",".join(schema_locations))
    assert default_schema_locations() == schema_locations
    result = runner.invoke(app, ["validate", str(generated), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["schema_locations"] == schema_locations
    monkeypatch.delenv(SCHEMAS_ENV)
    assert default_schema_locations() == []  # the bundled schemas need no location


def test_missing_schemas_are_named_and_can_be_allowed(make_repo, schema_locations):
    repo = make_repo({"apps/kustomization.yaml": "resources: [w.yaml]\n",
                      "apps/w.yaml": {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "shop"}}})
    result = runner.invoke(app, ["validate", str(repo), *locations(schema_locations)])
    assert result.exit_code == 1
    assert "1 object(s) had no schema and were not validated (an error)" in result.output
    assert "Widget shop/w (example.com/v1 Widget) in apps/w.yaml" in result.output
    assert "Kinds that need a --schema-location (-s): example.com/v1 Widget" in result.output
    result = runner.invoke(app, ["validate", str(repo), "-o", "json", *locations(schema_locations)])
    assert json.loads(result.stdout)["kinds_without_schema"] == ["example.com/v1 Widget"]
    result = runner.invoke(app, ["validate", str(repo), "--ignore-missing-schemas", *locations(schema_locations)])
    assert result.exit_code == 0
    assert "allowed by --ignore-missing-schemas" in result.output
    sarif = json.loads(runner.invoke(app, ["validate", str(repo), "--ignore-missing-schemas", "-o", "sarif", *locations(schema_locations)]).stdout)
    assert [(r["ruleId"], r["level"]) for r in sarif["runs"][0]["results"]] == [("GF102", "note")]


def test_warnings_exit_zero(make_repo, good_deployment, schema_locations):
    d = good_deployment()
    d["spec"]["template"]["spec"]["containers"][0].pop("livenessProbe")
    repo = make_repo({"apps/kustomization.yaml": "resources: [d.yaml]\n", "apps/d.yaml": d})
    result = runner.invoke(app, ["validate", str(repo), *locations(schema_locations)])
    assert result.exit_code == 0, result.output
    assert "! GF011 Deployment shop/web" in result.output and "1 warning(s)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "does not exist; pass the root directory of a GitOps repository."),
        (["{file}"], "is not a directory"),
        (["{repo}", "--kubernetes-version", "1.2"], "Kubernetes 1.2 is not covered"),
        (["{repo}", "--kubernetes-version", "banana"], "is not a version; give major.minor, e.g. 1.33."),
        (["{repo}", "--format", "xml"], "--format must be one of text, json, sarif, not 'xml'."),
        (["{repo}", "--skip", "GF999"], "Unknown check id(s) GF999"),
        (["{repo}", "--schema-location", "{missing}"], "is not a directory; pass a directory in kubeconform's"),
        (["{repo}", "--schema-location", "https://x/{{{{.Nope}}}}.json"], "unknown placeholder(s): Nope"),
    ],
)
def test_usage_errors_exit_2(make_repo, tmp_path, args, message):
    repo = make_repo({"apps/kustomization.yaml": "resources: []\n"})
    (tmp_path / "file.yaml").write_text("a: b\n")
    values = {"repo": str(repo), "missing": str(tmp_path / "nope"), "file": str(tmp_path / "file.yaml")}
    result = runner.invoke(app, ["validate", *(a.format(**values) for a in args)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_no_kustomize_exits_2(make_repo, monkeypatch, schema_locations):
    repo = make_repo({"apps/kustomization.yaml": "resources: []\n"})
    monkeypatch.setattr(render.shutil, "which", lambda _name: None)
    result = runner.invoke(app, ["validate", str(repo), *locations(schema_locations)])
    assert result.exit_code == 2
    assert "Neither `kustomize` nor `kubectl` was found on PATH" in result.stderr


def test_unreadable_repo_exits_2(make_repo, schema_locations, monkeypatch):
    from generator.validate import command

    repo = make_repo({"apps/kustomization.yaml": "resources: []\n"})
    real_access = command.os.access
    # chmod cannot lock out root (CI runs as root), so the permission check is told the answer.
    monkeypatch.setattr(command.os, "access", lambda path, mode: False if str(path) == str(repo) else real_access(path, mode))
    result = runner.invoke(app, ["validate", str(repo), *locations(schema_locations)])
    assert result.exit_code == 2 and ("cannot be read" in result.stderr or "readable" in result.stderr)


def test_catalog_is_tried_last_and_can_be_turned_off(make_repo, monkeypatch, tmp_path):
    repo = make_repo({"apps/kustomization.yaml": "resources: [w.yaml]\n",
                      "apps/w.yaml": {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "shop"},
                                      "spec": {"size": 1}}})
    (tmp_path / "catalog" / "example.com").mkdir(parents=True)
    (tmp_path / "catalog" / "example.com" / "widget_v1.json").write_text(json.dumps(
        {"type": "object", "properties": {"spec": {"type": "object", "additionalProperties": False, "properties": {"size": {"type": "integer"}}}}}))
    catalog = (tmp_path / "catalog").as_uri() + "/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
    monkeypatch.setenv("GITOPS_FORGE_SCHEMA_CATALOG", catalog)
    result = runner.invoke(app, ["validate", str(repo), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["schema_catalog"] == catalog
    result = runner.invoke(app, ["validate", str(repo), "-o", "json", "--no-catalog"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["schema_catalog"] is None and report["kinds_without_schema"] == ["example.com/v1 Widget"]
