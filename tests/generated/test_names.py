"""Any name Kubernetes accepts gives a repo that renders and validates, whatever YAML would read it as.

`on`, `yes`, `null`, `0755`, `1e3` or `2024-01-01` are DNS labels Kubernetes accepts, and a plain YAML scalar
reads them as a boolean, null, a number or a date. The template writes every scalar that begins with an
interpolation through one rule (includes/yaml.jinja); these tests draw names from the DNS-label space weighted
toward what YAML 1.1 and 1.2 misread, generate and `add` with them for both engines, and prove the repository
renders, passes strict validation, and that no YAML file holds one of those names as anything but a string.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from typer.testing import CliRunner

from generator.answers import DNS_LABEL, RESERVED
from generator.cli import app
from generator.validate import validate_repo

runner = CliRunner()
# includes/yaml.jinja as a module: its macros called directly.
SCALAR = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).resolve().parents[2])).get_template("includes/yaml.jinja")

# Words and forms YAML 1.1 (PyYAML, Go yaml.v2) or 1.2 (yaml.v3, ruamel) resolves to something else than a string.
MISREAD = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "123", "0755", "0o17", "0x1f", "0b101",
           "1e3", "1e-3", "12e4", "2024-01-01", "2024-1-1", "1", "0", "00", "1-2"]
dns_label = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?\Z").filter(lambda name: name not in RESERVED)
names = st.one_of(st.sampled_from(MISREAD), dns_label)
branches = st.sampled_from(["yes", "on", "null", "1.0", "2024-01-01", "0755", "1e3", "True", "main"])


def repo_answers(draw_names: list[str], engine: str, **extra) -> dict:
    """Answers for 2 environments, 2 clusters, 2 teams and 2 apps whose names are the first eight distinct names
    drawn, in that order: project, the environments, the clusters, the teams, the apps."""
    project, env1, env2, cluster1, cluster2, team1, team2, app1, app2 = draw_names[:9]
    return {
        "project_name": project,
        "engine": engine,
        "environments": [env1, env2],
        "clusters": [{"name": cluster1, "environment": env1}, {"name": cluster2, "environment": env2}],
        "teams": [{"name": team1, "groups": [team1]}, {"name": team2, "groups": ["on"]}],
        "apps": [{"name": app1, "team": team1, "image": "ghcr.io/acme/web:1.0.0", "port": 8080},
                 {"name": app2, "team": team2, "image": "ghcr.io/acme/api:1.0.0", "port": 9090}],
        **extra,
    }


def generate(tmp_path: Path, answers: dict, *, git: bool = False) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "answers.json"
    data.write_text(json.dumps(answers))
    repo = tmp_path / "repo"
    result = runner.invoke(app, ["new", str(repo), "--defaults", "--data-file", str(data), *([] if git else ["--no-git"])])
    assert result.exit_code == 0, result.output
    return repo


def _yaml_files(repo: Path) -> list[Path]:
    return [p for p in sorted(repo.rglob("*")) if p.is_file() and p.suffix in {".yaml", ".yml"} and ".git" not in p.parts]


def _plain_scalars(node, key: str = ""):
    """(nearest mapping key, plain scalar node) for every plain scalar value under `node`."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield from _plain_scalars(v, str(k.value))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _plain_scalars(item, key)
    elif isinstance(node, yaml.ScalarNode) and node.style is None:
        yield key, node


def _non_strings(repo: Path):
    """(file, nearest key, text, tag) of every plain scalar that YAML 1.1 (PyYAML's resolver) or YAML 1.2
    (ruamel's) reads as anything but a string."""
    yaml12 = YAML(typ="safe", pure=True)
    for path in _yaml_files(repo):
        for document in yaml.compose_all(path.read_text(), Loader=yaml.SafeLoader):
            for key, node in _plain_scalars(document):
                if node.tag != "tag:yaml.org,2002:str" or not isinstance(yaml12.load(f"v: {node.value}")["v"], str):
                    yield path.relative_to(repo), key, str(node.value), node.tag


def misread_names(repo: Path, drawn: set[str], typed_keys: set[str]) -> list[str]:
    """Plain scalars that hold a drawn name (alone or joined to other text with '-', '/', '.' or ':') and that a
    YAML reader takes for something else than a string, outside the keys that hold booleans and numbers in a
    repository generated with ordinary names (`typed_keys`)."""
    return [f"{path}: {key}: {text} ({tag})" for path, key, text, tag in _non_strings(repo)
            if key not in typed_keys and set(re.split(r"[-/.:]", text.lower())) & drawn]


def typed_keys(tmp_path: Path, answers: dict, drawn: list[str]) -> set[str]:
    """Keys with boolean or number values in the same repository generated with ordinary names."""
    ordinary = {name: f"name{i}x" for i, name in enumerate(drawn)}
    text = json.dumps(answers)
    for name, safe in sorted(ordinary.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f'"{name}"', f'"{safe}"')
    repo = generate(tmp_path / "ordinary", json.loads(text))
    return {key for _, key, _, _ in _non_strings(repo)}


def assert_valid(repo: Path, answers: dict, drawn: list[str], schema_locations: list[str]) -> None:
    report = validate_repo(repo, schema_locations=schema_locations)
    assert report.render_errors == [], report.render_errors
    assert report.ok, [f"{f.check} {f.message}" for f in report.findings]
    assert report.missing_schemas == []
    assert misread_names(repo, {d.lower() for d in drawn}, typed_keys(repo.parent, answers, drawn)) == []


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_the_names_of_the_report_render_and_validate(engine, tmp_path, schema_locations):
    """The names the issue reported, each of which once gave a repo whose kustomizations did not build."""
    drawn = ["on", "yes", "off", "null", "0755", "true", "no", "y", "123"]
    answers = repo_answers(drawn, engine, default_branch="yes")
    repo = generate(tmp_path, answers)
    assert_valid(repo, answers, drawn, schema_locations)
    assert 'app.kubernetes.io/part-of: "on"' in (repo / "apps/base/y/kustomization.yaml").read_text()


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_any_dns_label_renders_and_validates(engine, tmp_path_factory, schema_locations):
    @settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(drawn=st.lists(names, min_size=9, max_size=9, unique=True), branch=branches,
           secrets=st.sampled_from(["sealed-secrets", "sops"]), monitoring=st.booleans(),
           ci=st.sampled_from(["github", "gitlab"]))
    @example(drawn=["1e3", "2024-01-01", "0x1f", "false", "n", "0o17", "1", "1e-3", "0b101"], branch="1.0",
             secrets="sops", monitoring=True, ci="gitlab")
    def check(drawn, branch, secrets, monitoring, ci):
        tmp = tmp_path_factory.mktemp("names")
        # Argo CD has no SOPS: its repos seal their Secrets.
        extra = {"default_branch": branch, "secrets": secrets if engine == "flux" else "sealed-secrets",
                 "monitoring": monitoring, "ci": ci}
        if not monitoring:
            extra["alerts_to"] = "none"
            extra["pager"] = "none"
        answers = repo_answers(drawn, engine, **extra)
        repo = generate(tmp, answers)
        assert_valid(repo, answers, [*drawn, branch], schema_locations)

    check()


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_add_with_misread_names(engine, tmp_path, schema_locations, isolated_user):
    """`add` goes through the same rule: a team `true`, an environment `0755` and an app `null` of that team."""
    answers = repo_answers(["on", "dev", "prod", "dev-1", "prod-1", "web", "api", "a", "b"], engine)
    repo = generate(tmp_path, answers, git=True)
    for command in (["add", "team", "true", "--group", "off"],
                    ["add", "app", "null", "--team", "true", "--image", "ghcr.io/acme/null:1.0.0", "--port", "8080"]):
        result = runner.invoke(app, [*command, "-C", str(repo)])
        assert result.exit_code == 0, result.output
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(repo), "commit", "-qm", " ".join(command[:3])], check=True)
    assert (repo / "apps/base/null/deployment.yaml").is_file()
    report = validate_repo(repo, schema_locations=schema_locations)
    assert report.ok and report.render_errors == [], [f"{f.check} {f.message}" for f in report.findings]
    assert misread_names(repo, {"true", "off", "null", "on"}, typed_keys(tmp_path, answers, ["on"])) == []


@given(name=st.one_of(st.from_regex(r"\A[A-Z][a-z]{0,5}\Z"), st.from_regex(r"\A[a-z]{1,5}_[a-z]{1,5}\Z"),
                      st.from_regex(r"\A-[a-z]{1,5}\Z"), st.just("a" * 64), st.just("ön"), st.just("")))
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_names_kubernetes_refuses_are_refused(name, tmp_path_factory):
    """One sentence, exit 2, nothing written."""
    assert not DNS_LABEL.match(name) or len(name) > 63
    tmp = tmp_path_factory.mktemp("refused")
    repo = tmp / "repo"
    result = runner.invoke(app, ["new", str(repo), "--defaults", "--no-git", "--data", f"environments={json.dumps(['dev', name])}"])
    assert result.exit_code == 2
    message = result.output.strip().removeprefix("Error: ")
    assert message.count("\n") == 0 and "environments[1]" in message
    assert not repo.exists()


@given(text=st.one_of(names, branches, st.from_regex(r"\A[A-Za-z0-9./:@#_ -]{1,12}\Z"), st.sampled_from(
    ["Yes", "NULL", "OFF", "~", ".inf", ".5", "./apps/x", "/spec/ref/tag", "1:20", "a: b", "a #b", "-a", "x "])))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_scalar_reads_back_as_the_same_string(text):
    """includes/yaml.jinja's scalar(): what it writes, YAML 1.1 (PyYAML) and 1.2 (ruamel) read back as the
    string it was given."""
    written = SCALAR.module.scalar(text)
    assert yaml.safe_load(f"v: {written}\n")["v"] == text
    assert YAML(typ="safe", pure=True).load(f"v: {written}\n")["v"] == text
