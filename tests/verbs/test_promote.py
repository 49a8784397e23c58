"""`gitops-forge promote` on generated repos of both engines: it changes exactly the target overlay's
version lines, the result validates, and every refusal is one sentence, exit 2, nothing changed."""

from __future__ import annotations

import json

import pytest

from generator.validate import validate_repo

from .conftest import APP, assert_refused, git, overlay, promote, set_tag, snapshot

DIGEST = "sha256:" + "ab" * 32


def changed_lines(before: bytes, after: bytes) -> list[tuple[str, str]]:
    old, new = before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new) if a != b]


def test_promote_changes_only_the_target_version_lines_and_the_repo_validates(repo, schema_locations):
    set_tag(repo, "dev", "6.8.0")
    before = snapshot(repo)
    result = promote(repo, APP, "--from", "dev")
    assert result.exit_code == 0, result.output
    assert f"Promoted {APP} 6.8.0 from dev to staging" in result.output
    after = snapshot(repo)
    target = overlay("staging")
    assert {name for name in before if before[name] != after[name]} == {target}
    assert changed_lines(before[target], after[target]) == [('    newTag: "6.7.1"\n', '    newTag: "6.8.0"\n')]
    report = validate_repo(repo, schema_locations=schema_locations)
    assert report.ok, [f.message for f in report.findings] + [e.message for e in report.render_errors]


def test_promote_copies_the_digest_and_drops_a_stale_one(repo):
    set_tag(repo, "dev", "6.8.0", digest=DIGEST)
    before = snapshot(repo)
    assert promote(repo, APP, "--from", "dev", "--to", "staging").exit_code == 0
    after = snapshot(repo)
    old, new = before[overlay("staging")].decode(), after[overlay("staging")].decode()
    assert new == old.replace('    newTag: "6.7.1"\n', f'    newTag: "6.8.0"\n    digest: {DIGEST}\n')
    git(repo, "commit", "-qam", "promote")
    # dev moves on without a digest: the promoted staging entry must not keep the old one (it would win).
    set_tag(repo, "dev", "6.9.0")
    assert promote(repo, APP, "--from", "dev").exit_code == 0
    assert (repo / overlay("staging")).read_bytes().decode() == old.replace('"6.7.1"', '"6.9.0"')


def test_already_at_the_version_changes_nothing(repo):
    before = snapshot(repo)
    result = promote(repo, APP, "--from", "dev")
    assert result.exit_code == 0, result.output
    assert "staging is already at 6.7.1; nothing changed" in result.output
    assert snapshot(repo) == before


def test_dry_run_and_json_touch_nothing_and_report_the_change(repo):
    set_tag(repo, "dev", "6.8.0")
    before = snapshot(repo)
    result = promote(repo, APP, "--from", "dev", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert snapshot(repo) == before
    data = json.loads(result.output)
    assert data["from"] == "dev" and data["to"] == "staging" and data["dry_run"] is True and data["already"] == []
    (change,) = data["changed"]
    assert change["app"] == APP and change["file"] == overlay("staging") and change["version"] == "6.8.0"
    assert change["images"] == [{"image": "ghcr.io/stefanprodan/podinfo", "before": {"newTag": "6.7.1"}, "after": {"newTag": "6.8.0"}}]


def test_commit_uses_a_conventional_message_and_commits_only_the_overlay(repo):
    set_tag(repo, "staging", "6.8.0")
    (repo / "notes.txt").write_text("unrelated work in progress\n")
    result = promote(repo, "--all", "--from", "staging", "--commit")
    assert result.exit_code == 0, result.output
    assert git(repo, "log", "-1", "--format=%s").strip() == f"chore(promote): {APP} 6.8.0 from staging to prod"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [overlay("prod")]
    assert git(repo, "status", "--porcelain").strip() == "?? notes.txt"


def test_backwards_needs_the_flag(repo):
    set_tag(repo, "staging", "6.8.0")
    before = snapshot(repo)
    refused = promote(repo, APP, "--from", "staging", "--to", "dev")
    assert refused.exit_code == 2
    assert "comes before 'staging'" in refused.output and "--allow-backwards" in refused.output
    assert snapshot(repo) == before
    allowed = promote(repo, APP, "--from", "staging", "--to", "dev", "--allow-backwards")
    assert allowed.exit_code == 0, allowed.output
    assert '"6.8.0"' in (repo / overlay("dev")).read_text()


@pytest.mark.parametrize("args, message", [
    ([APP, "--from", "qa"], "Unknown environment 'qa'; the environments are dev, staging, prod."),
    ([APP, "--from", "dev", "--to", "qa"], "Unknown environment 'qa'; the environments are dev, staging, prod."),
    (["shop", "--from", "dev"], f"Unknown app 'shop' in 'dev'; its apps are {APP}."),
    ([APP, "--from", "prod"], "'prod' is the last environment"),
    ([APP, "--from", "dev", "--to", "dev"], "--from and --to are both 'dev'"),
    (["--from", "dev"], "Name at least one app to promote, or pass --all."),
])
def test_refusals_are_one_sentence_with_exit_2(repo, args, message):
    set_tag(repo, "dev", "6.8.0")
    assert_refused(repo, args, message)


def test_refuses_an_app_absent_in_the_target(repo):
    set_tag(repo, "dev", "6.8.0")
    git(repo, "rm", "-rq", f"apps/staging/{APP}")
    git(repo, "commit", "-qm", "no podinfo in staging")
    before = snapshot(repo)
    result = promote(repo, APP, "--from", "dev")
    assert result.exit_code == 2
    assert f"App '{APP}' has no overlay in 'staging' ({overlay('staging')})" in result.output
    assert snapshot(repo) == before


def test_refuses_a_dirty_target_overlay(repo):
    set_tag(repo, "dev", "6.8.0")
    path = repo / overlay("staging")
    path.write_text(path.read_text() + "# work in progress\n")
    before = snapshot(repo)
    result = promote(repo, APP, "--from", "dev")
    assert result.exit_code == 2
    assert f"{overlay('staging')} has uncommitted changes; commit or stash them first." in result.output
    assert snapshot(repo) == before
    # Uncommitted changes elsewhere are not promote's business.
    git(repo, "checkout", "-q", "--", overlay("staging"))
    (repo / "README.md").write_text("edited\n")
    assert promote(repo, APP, "--from", "dev").exit_code == 0


def test_hand_formatted_overlays_keep_their_style(repo):
    """Quotes, trailing comments and flow of a hand-edited target stay; only the values change."""
    target = repo / overlay("staging")
    original = target.read_text()
    entry = original[original.index("images:\n"):original.index("\n\n", original.index("images:\n"))]
    hand = ("images:\n"
            "  # pinned by the release train\n"
            "  - newName: ghcr.io/stefanprodan/podinfo\n"
            "    newTag: '6.7.1'   # staging\n"
            "    name: ghcr.io/stefanprodan/podinfo")
    target.write_text(original.replace(entry, hand))
    set_tag(repo, "dev", "6.8.0", digest=DIGEST, commit=False)
    git(repo, "commit", "-qam", "hand-formatted staging, dev at 6.8.0")
    assert promote(repo, APP, "--from", "dev").exit_code == 0
    expected = hand.replace("'6.7.1'", "'6.8.0'") + f"\n    digest: {DIGEST}"
    assert target.read_text() == original.replace(entry, expected)
