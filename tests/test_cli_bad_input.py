"""`gitops-forge new` with bad input: exit 2, one clear sentence, no traceback, nothing written.

Answers are validated before any template work, so these tests replace the
template source with one that fails loudly if it is ever reached.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator import scaffold, template_source
from generator.cli import app
from generator.scaffold import ScaffoldError
from generator.template_source import TemplateSource

runner = CliRunner()

METACHARACTERS = {
    "jinja-expression": "{{ x }}",
    "jinja-statement": "{% if %}",
    "yaml-mapping": "a: b",
    "yaml-comment": "a#b",
    "double-quote": 'a"b',
    "single-quote": "a'b",
    "newline": "a\nb",
}


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    """No user cache; any attempt to reach the template is a test failure."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))

    def unreachable():
        raise AssertionError("bad input must be refused before the template is touched")

    monkeypatch.setattr(template_source, "builtin", unreachable)


def invoke(tmp_path: Path, *args: str, files: dict[str, str] | None = None):
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    destination = tmp_path / "out"
    result = runner.invoke(app, ["new", str(destination), *[arg.replace("{tmp}", str(tmp_path)) for arg in args]])
    return result, destination


def assert_refused(result, destination: Path, *expected: str) -> str:
    output = result.output
    assert result.exit_code == 2, f"exit {result.exit_code}: {output!r} {result.exception!r}"
    assert "Traceback" not in output
    assert output.count("Error: ") == 1, output
    error = next(line for line in output.splitlines() if line.startswith("Error: "))
    assert error.endswith("."), error
    for text in expected:
        assert text in error, f"{text!r} not in {error!r}"
    assert not destination.exists()
    assert not list(destination.parent.glob(".gitops-forge-*"))
    return error


def data(key: str, value) -> list[str]:
    """A --data option; structured values are written as JSON (which is YAML)."""
    return ["--data", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]


def app_item(**changes) -> dict:
    return {"name": "web", "team": "dev-team", "image": "ghcr.io/org/web:1.0.0", "port": 8080, **changes}


LONG = "a" * 41

CASES = {
    # sources a tenant may use besides this repository
    "source-allowlist-http": (data("tenant_source_allowlist", ["http://charts.example.com/"]), "tenant_source_allowlist[0]", "https://, ssh:// or oci://"),
    "source-allowlist-argocd": (["--data", "engine=argocd", *data("tenant_source_allowlist", ["oci://ghcr.io/a/"])],
                                "tenant_source_allowlist", "needs engine flux"),
    # names that are not DNS-1123 labels
    "project_name-not-dns": (data("project_name", "Bad_Name"), "project_name", "DNS-1123 label"),
    "env-not-dns": (data("environments", ["dev", "Staging"]), "environments[1]", "DNS-1123 label"),
    "cluster-not-dns": (data("clusters", [{"name": "eu_1", "environment": "dev"}]), "clusters[0].name", "DNS-1123 label"),
    "team-not-dns": (data("teams", [{"name": "Team", "groups": ["g"]}]), "teams[0].name", "DNS-1123 label"),
    "app-not-dns": (data("apps", [app_item(name="-web")]), "apps[0].name", "DNS-1123 label"),
    # names too long
    "project_name-too-long": (data("project_name", LONG), "project_name", "at most 40"),
    "env-too-long": (data("environments", [LONG]), "environments[0]", "at most 40"),
    "cluster-too-long": (data("clusters", [{"name": LONG, "environment": "dev"}]), "clusters[0].name", "at most 40"),
    "team-too-long": (data("teams", [{"name": LONG, "groups": ["g"]}]), "teams[0].name", "at most 40"),
    "app-too-long": (data("apps", [app_item(name=LONG)]), "apps[0].name", "at most 40"),
    # duplicates
    "env-duplicate": (data("environments", ["dev", "prod", "dev"]), "environments", "appears more than once"),
    "cluster-duplicate": (
        data("clusters", [{"name": "eu", "environment": "dev"}, {"name": "eu", "environment": "prod"}]),
        "clusters",
        "appears more than once",
    ),
    "team-duplicate": (data("teams", [{"name": "t", "groups": ["a"]}, {"name": "t", "groups": ["b"]}]), "teams", "appears more than once"),
    "app-duplicate": (data("apps", [app_item(), app_item(port=9090)]), "apps", "appears more than once"),
    # references
    "app-team-missing": (data("apps", [app_item(team="ghost")]), "apps[0].team", "is not one of the teams"),
    "cluster-env-missing": (data("clusters", [{"name": "eu", "environment": "qa"}]), "clusters[0].environment", "is not one of the environments"),
    "environments-empty": (data("environments", []), "environments", "must be a non-empty list"),
    # a later default ({{ teams[0].name }}) must not be rendered from a bad earlier answer
    "teams-empty": (data("teams", []), "teams", "must be a non-empty list"),
    "teams-not-a-list": (data("teams", "5"), "teams", "must be a non-empty list"),
    # path separators and '..' in names
    "project_name-slash": (data("project_name", "a/b"), "project_name", "path separators or '..'"),
    "project_name-dotdot": (data("project_name", ".."), "project_name", "path separators or '..'"),
    "env-dotdot-slash": (data("environments", ["../etc"]), "environments[0]", "path separators or '..'"),
    "cluster-slash": (data("clusters", [{"name": "x/y", "environment": "dev"}]), "clusters[0].name", "path separators or '..'"),
    "team-dotdot": (data("teams", [{"name": "a..b", "groups": ["g"]}]), "teams[0].name", "path separators or '..'"),
    "app-slash": (data("apps", [app_item(name="/web")]), "apps[0].name", "path separators or '..'"),
    "app-backslash": (data("apps", [app_item(name="a\\b")]), "apps[0].name", "must not contain"),
    # unknown keys
    "unknown-answer-data": (data("enviroments", ["dev"]), "enviroments", "is not a known answer"),
    "unknown-app-key": (data("apps", [app_item(replicas=2)]), "apps[0]", "unknown key replicas"),
    "missing-app-key": (data("apps", [{"name": "web", "team": "dev-team", "image": "x:1"}]), "apps[0]", "is missing port"),
    # images
    "image-no-tag": (data("apps", [app_item(image="nginx")]), "apps[0].image", "has no tag"),
    "image-registry-port-no-tag": (data("apps", [app_item(image="registry.example.com:5000/web")]), "apps[0].image", "has no tag"),
    "image-latest": (data("apps", [app_item(image="nginx:latest")]), "apps[0].image", "':latest'"),
    # ports
    "port-0": (data("apps", [app_item(port=0)]), "apps[0].port", "between 1 and 65535"),
    "port-65536": (data("apps", [app_item(port=65536)]), "apps[0].port", "between 1 and 65535"),
    "port-http": (data("apps", [app_item(port="http")]), "apps[0].port", "between 1 and 65535"),
    "port-true": (data("apps", [app_item(port=True)]), "apps[0].port", "between 1 and 65535"),
    # branches
    **{
        f"branch-{label}": (data("default_branch", branch), "default_branch", "not a valid git branch name")
        for label, branch in {"dotdot": "feature..x", "space": "a b", "dash": "-x", "lock": "x.lock", "slash": "x/"}.items()
    },
    # engines
    "engine-argocd-sops": (data("engine", "argocd") + data("secrets", "sops"), "secrets", "needs engine flux"),
    "engine-argocd-ssh": (data("engine", "argocd") + data("verify", "ssh"), "verify", "needs engine flux"),
    "engine-jenkins": (data("engine", "jenkins"), "engine", "is not supported"),
    # alerts: critical alerts of production must page somebody, on a known kind of cluster
    "pager-none-commit-status-only": (data("alerts_to", "github-status") + data("pager", "none"), "pager", "production environment 'prod' with nobody to page"),
    "pager-none-prod-not-last": (
        data("environments", ["prod", "dr"]) + data("clusters", [{"name": "p", "environment": "prod"}]) + data("alerts_to", "none") + data("pager", "none"),
        "pager",
        "production environment 'dr', 'prod' with nobody to page",
    ),
    "pager-unknown": (data("pager", "victorops"), "pager", "is not supported; choose one of: pagerduty, opsgenie, none"),
    "cluster-flavor-unknown": (data("cluster_flavor", "eks"), "cluster_flavor", "is not supported; choose one of: managed, self-managed"),
    # option syntax
    "data-without-equals": (["--data", "environments"], "--data 'environments'", "expected KEY=VALUE"),
    "data-empty-key": (["--data", "=dev"], "--data '=dev'", "expected KEY=VALUE"),
}


@pytest.mark.parametrize(("args", "field", "rule"), CASES.values(), ids=CASES.keys())
def test_bad_input(tmp_path, args, field, rule) -> None:
    result, destination = invoke(tmp_path, "--defaults", *args)
    assert_refused(result, destination, f"Error: {field}: " if not field.startswith("--") else field, rule)


# YAML or Jinja metacharacters, in every kind of answer.
META_FIELDS = {
    "project_name": (lambda bad: data("project_name", bad), "project_name"),
    "git_url": (lambda bad: data("git_url", f"https://github.com/org/{bad}.git"), "git_url"),
    "default_branch": (lambda bad: data("default_branch", f"main{bad}"), "default_branch"),
    "environment": (lambda bad: data("environments", ["dev", bad]), "environments[1]"),
    "cluster": (lambda bad: data("clusters", [{"name": bad, "environment": "dev"}]), "clusters[0].name"),
    "team": (lambda bad: data("teams", [{"name": bad, "groups": ["g"]}]), "teams[0].name"),
    "group": (lambda bad: data("teams", [{"name": "t", "groups": ["ok", bad]}]), "teams[0].groups[1]"),
    "app": (lambda bad: data("apps", [app_item(name=bad)]), "apps[0].name"),
    "image": (lambda bad: data("apps", [app_item(image=f"nginx:1{bad}")]), "apps[0].image"),
    "health_path": (lambda bad: data("apps", [app_item(health_path=f"/h{bad}")]), "apps[0].health_path"),
}


@pytest.mark.parametrize("marker", METACHARACTERS.values(), ids=METACHARACTERS.keys())
@pytest.mark.parametrize("where", META_FIELDS)
def test_metacharacters_are_refused(tmp_path, where: str, marker: str) -> None:
    option, field = META_FIELDS[where]
    result, destination = invoke(tmp_path, "--defaults", *option(marker))
    assert_refused(result, destination, f"Error: {field}: ", "must not contain", "YAML or template syntax")


@pytest.mark.parametrize("marker", ["{{ x }}", "a: b", "a#b"], ids=["jinja", "colon", "hash"])
def test_metacharacters_in_data_file(tmp_path, marker: str) -> None:
    answers = {"git_url": f"https://github.com/org/{marker}", "teams": [{"name": "t", "groups": [marker]}], "apps": []}
    result, destination = invoke(tmp_path, "--defaults", "--data-file", "{tmp}/answers.yml", files={"answers.yml": json.dumps(answers)})
    assert_refused(result, destination, "Error: git_url: ", "must not contain")


DATA_FILES = {
    "invalid-yaml": ("environments: [dev\n", "not valid YAML"),
    "list-not-mapping": ("- project_name: x\n", "must contain a YAML mapping"),
    "scalar-not-mapping": ("just text\n", "must contain a YAML mapping"),
    "unknown-key": ("enviroments: [dev]\n", "enviroments: is not a known answer"),
    "unknown-app-key": ("apps: [{name: web, team: dev-team, image: 'x:1', port: 80, replica: 2}]\n", "apps[0]: has unknown key replica"),
}


@pytest.mark.parametrize(("text", "rule"), DATA_FILES.values(), ids=DATA_FILES.keys())
def test_bad_data_file(tmp_path, text: str, rule: str) -> None:
    result, destination = invoke(tmp_path, "--defaults", "--data-file", "{tmp}/answers.yml", files={"answers.yml": text})
    error = assert_refused(result, destination, rule)
    if "YAML" in rule:
        assert "--data-file" in error and "answers.yml" in error


def test_missing_data_file(tmp_path) -> None:
    result, destination = invoke(tmp_path, "--defaults", "--data-file", "{tmp}/nope.yml")
    assert_refused(result, destination, "--data-file", "nope.yml", "file not found")


def test_missing_answers_without_defaults(tmp_path) -> None:
    result, destination = invoke(tmp_path, *data("project_name", "demo"))
    assert_refused(result, destination, "Error: git_url: no answer given", "--defaults")


# --- destinations ---------------------------------------------------------------------------------


@pytest.fixture
def unusable_template(monkeypatch):
    """A template source that must never be rendered from (the destination check comes first)."""
    monkeypatch.setattr(template_source, "builtin", lambda: TemplateSource(url="https://invalid.example/template.git"))

    def no_render(*args, **kwargs):
        raise AssertionError("copier must not run for a refused destination")

    monkeypatch.setattr(scaffold, "_run", no_render)


def test_non_empty_destination_is_refused_and_untouched(tmp_path, unusable_template) -> None:
    destination = tmp_path / "out"
    destination.mkdir()
    (destination / "notes.txt").write_text("mine\n")
    (destination / "sub").mkdir()
    result = runner.invoke(app, ["new", str(destination), "--defaults"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.count("Error: ") == 1
    assert "is not empty" in result.output and "--force" in result.output
    assert sorted(path.name for path in destination.iterdir()) == ["notes.txt", "sub"]
    assert (destination / "notes.txt").read_text() == "mine\n"
    assert not list(tmp_path.glob(".gitops-forge-*"))


def test_destination_that_is_a_file_is_refused(tmp_path, unusable_template) -> None:
    destination = tmp_path / "out"
    destination.write_text("a file\n")
    result = runner.invoke(app, ["new", str(destination), "--defaults"])
    assert result.exit_code == 2, result.output
    assert "exists and is not a directory" in result.output
    assert destination.read_text() == "a file\n"


def test_failed_render_leaves_no_destination_and_no_temp_dirs(tmp_path, monkeypatch) -> None:
    """A failure after staging began removes the staging directory and never creates the destination."""
    monkeypatch.setattr(template_source, "builtin", lambda: TemplateSource(url="https://invalid.example/template.git"))

    def half_render(operation, source, **kwargs):
        staged = Path(kwargs["dst_path"])
        (staged / "apps").mkdir(parents=True)
        (staged / "apps" / "half.yaml").write_text("kind: Half\n")
        raise ScaffoldError("copier could not render the template")

    monkeypatch.setattr(scaffold, "_run", half_render)
    result, destination = invoke(tmp_path, "--defaults")
    assert_refused(result, destination, "copier could not render the template")
    assert sorted(path.name for path in tmp_path.iterdir()) == []
