"""`gitops-forge promote --chart` on generated repos of both engines: it changes exactly the version
characters of the chart's patch in the target environment's overlay, the target still renders with the new
version, and every refusal is one sentence, exit 2, nothing changed."""

from __future__ import annotations

import json
import re

import pytest

from generator.render import discover_entrypoints, render_repo

from .conftest import assert_refused, git, promote, snapshot

CONTROLLERS = "infrastructure/environments/{env}/controllers/kustomization.yaml"
MONITORING = "infrastructure/environments/{env}/monitoring/kustomization.yaml"


def charts_of(engine: str) -> list[tuple[str, str]]:
    """(chart, overlay file pattern) pairs the generated repo of the engine pins per environment."""
    charts = [("sealed-secrets", CONTROLLERS), ("metrics-server", CONTROLLERS)]
    if engine == "argocd":
        return charts + [("argo-cd", CONTROLLERS), ("kube-prometheus-stack", CONTROLLERS)]
    return charts + [("kube-prometheus-stack", MONITORING)]


def pinned(text: str, chart: str) -> str:
    """The version in the chart's patch: the first `value: "..."` after its `name: <chart>` target."""
    match = re.search(rf"\n      name: {re.escape(chart)}\n(?:.*\n)*?\s+value: \"([^\"]+)\"", text)
    assert match, f"no version patch for {chart}"
    return match.group(1)


def set_chart(repo, env: str, chart: str, pattern: str, version: str) -> str:
    """Change the chart's version in the env's overlay the way Renovate would, commit it; return the old one."""
    path = repo / pattern.format(env=env)
    text = path.read_text()
    old = pinned(text, chart)
    start = text.index(f"\n      name: {chart}\n")
    at = text.index(f'value: "{old}"', start)
    path.write_text(text[:at] + f'value: "{version}"' + text[at + len(f'value: "{old}"'):])
    git(repo, "commit", "-qam", f"{env}: {chart} {version}")
    return old


def bumped(version: str) -> str:
    major, rest = version.split(".", 1)
    return f"{int(major) + 1}.{rest}"


def rendered_versions(repo, env: str) -> list[str]:
    """Every chart version in the rendered objects of the environment's infrastructure entrypoints."""
    eps = [e for e in discover_entrypoints(repo) if e.rel.startswith(f"infrastructure/environments/{env}/")]
    assert eps
    versions = []
    for result in render_repo(repo, eps):
        assert result.error is None, result.error
        for obj in result.objects:
            spec = obj.data.get("spec") or {}
            versions.append(str(((spec.get("chart") or {}).get("spec") or {}).get("version")))
            versions.append(str((spec.get("ref") or {}).get("tag")))
            versions += [str(s.get("targetRevision")) for s in spec.get("sources") or []]
    return versions


def test_every_chart_promotes_only_its_version_characters_and_the_target_renders(repo, engine):
    for chart, pattern in charts_of(engine):
        source, target = pattern.format(env="dev"), pattern.format(env="staging")
        old = pinned((repo / target).read_text(), chart)
        new = bumped(old)
        set_chart(repo, "dev", chart, pattern, new)
        before = snapshot(repo)
        result = promote(repo, "--chart", chart, "--from", "dev")
        assert result.exit_code == 0, result.output
        assert f"Promoted chart {chart} {new} from dev to staging: {target}" in result.output
        after = snapshot(repo)
        assert {name for name in before if before[name] != after[name]} == {target}
        # Byte-compare: the only difference is the version characters inside the chart's patch.
        assert after[target] == before[target].replace(f'value: "{old}"'.encode(), f'value: "{new}"'.encode())
        assert pinned(after[target].decode(), chart) == new == pinned((repo / source).read_text(), chart)
        assert new in rendered_versions(repo, "staging")
        git(repo, "commit", "-qam", f"promote {chart}")


def test_only_the_named_chart_changes_when_others_share_the_version(repo, engine):
    """sealed-secrets and a neighbour pinned to the same version: only the named chart's value moves."""
    path = repo / CONTROLLERS.format(env="staging")
    text = path.read_text()
    old = pinned(text, "sealed-secrets")
    set_chart(repo, "staging", "metrics-server", CONTROLLERS, old)
    set_chart(repo, "dev", "sealed-secrets", CONTROLLERS, bumped(old))
    before = path.read_text()
    assert promote(repo, "--chart", "sealed-secrets", "--from", "dev").exit_code == 0
    after = path.read_text()
    assert pinned(after, "sealed-secrets") == bumped(old) and pinned(after, "metrics-server") == old
    assert len(before) == len(after) and sum(a != b for a, b in zip(before.splitlines(), after.splitlines())) == 1


def test_already_at_the_version_changes_nothing(repo):
    before = snapshot(repo)
    result = promote(repo, "--chart", "sealed-secrets", "--from", "dev")
    assert result.exit_code == 0, result.output
    assert "Chart sealed-secrets: staging is already at" in result.output and "nothing changed" in result.output
    assert snapshot(repo) == before


def test_dry_run_json_and_commit(repo):
    old = set_chart(repo, "dev", "metrics-server", CONTROLLERS, "9.9.9")
    before = snapshot(repo)
    result = promote(repo, "--chart", "metrics-server", "--from", "dev", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert snapshot(repo) == before
    data = json.loads(result.output)
    assert data["from"] == "dev" and data["to"] == "staging" and data["dry_run"] is True
    assert data["charts"] == {"changed": [{"chart": "metrics-server", "file": CONTROLLERS.format(env="staging"),
                                           "version": "9.9.9", "before": old}], "already": []}
    (repo / "notes.txt").write_text("unrelated work in progress\n")
    result = promote(repo, "--chart", "metrics-server", "--from", "dev", "--commit")
    assert result.exit_code == 0, result.output
    assert git(repo, "log", "-1", "--format=%s").strip() == "chore(promote): metrics-server chart 9.9.9 from dev to staging"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [CONTROLLERS.format(env="staging")]
    assert git(repo, "status", "--porcelain").strip() == "?? notes.txt"


def test_backwards_needs_the_flag(repo):
    set_chart(repo, "staging", "sealed-secrets", CONTROLLERS, "9.9.9")
    before = snapshot(repo)
    refused = promote(repo, "--chart", "sealed-secrets", "--from", "staging", "--to", "dev")
    assert refused.exit_code == 2 and "--allow-backwards" in refused.output
    assert snapshot(repo) == before
    allowed = promote(repo, "--chart", "sealed-secrets", "--from", "staging", "--to", "dev", "--allow-backwards")
    assert allowed.exit_code == 0, allowed.output
    assert pinned((repo / CONTROLLERS.format(env="dev")).read_text(), "sealed-secrets") == "9.9.9"


@pytest.mark.parametrize("args, message", [
    (["--chart", "nginx", "--from", "dev"], "Unknown chart 'nginx' in 'dev'; its charts are "),
    (["--chart", "sealed-secrets", "--from", "qa"], "Unknown environment 'qa'; the environments are dev, staging, prod."),
    (["--chart", "sealed-secrets", "--from", "dev", "--to", "qa"], "Unknown environment 'qa'"),
    (["podinfo", "--chart", "sealed-secrets", "--from", "dev"], "Promote apps or --chart, not both in one run."),
])
def test_refusals_are_one_sentence_with_exit_2(repo, args, message):
    set_chart(repo, "dev", "sealed-secrets", CONTROLLERS, "9.9.9")
    assert_refused(repo, args, message)


def test_refuses_a_dirty_target_overlay(repo):
    set_chart(repo, "dev", "sealed-secrets", CONTROLLERS, "9.9.9")
    path = repo / CONTROLLERS.format(env="staging")
    path.write_text(path.read_text() + "# work in progress\n")
    before = snapshot(repo)
    result = promote(repo, "--chart", "sealed-secrets", "--from", "dev")
    assert result.exit_code == 2
    assert f"{CONTROLLERS.format(env='staging')} has uncommitted changes; commit or stash them first." in result.output
    assert snapshot(repo) == before
