"""Updates keep every hand edit: generate at one release, edit, update to the next."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from generator import questions, scaffold, workflows
from generator.template_source import CANONICAL_URL

from .conftest import git

APP_TEMPLATE = "template/apps/base/{% yield app from apps %}{{ app.name }}{% endyield %}/deployment.yaml.jinja"
README_TEMPLATE = "template/README.md.jinja"


def answers(**overrides):
    return questions.complete({"project_name": "demo", **overrides}, questions.load())


def generate(tmp_path: Path, source, **overrides) -> Path:
    repo = tmp_path / "demo"
    scaffold.new(repo, answers(**overrides), source)
    assert scaffold.init_git(repo, "main")
    return repo


def commit_all(repo: Path, message: str = "user edit") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def test_update_merges_template_change_and_keeps_user_edits(template_repo, tmp_path):
    v1 = template_repo.release("1.0.0")
    repo = generate(tmp_path, v1)
    recorded = scaffold.read_answers(repo)
    assert recorded["_src_path"] == CANONICAL_URL
    assert recorded["_commit"] == "v1.0.0"

    deployment = repo / "apps/base/podinfo/deployment.yaml"
    deployment.write_text(deployment.read_text() + "# user: tuned by the web team\n")
    (repo / "notes.md").write_text("our own file\n")
    commit_all(repo)

    readme = template_repo.read(README_TEMPLATE)
    v2 = template_repo.release("2.0.0", {README_TEMPLATE: readme + "\nTemplate v2 paragraph.\n"})
    result = scaffold.update(repo, v2)

    assert (result.old_version, result.new_version) == ("v1.0.0", "v2.0.0")
    assert result.conflicts == []
    assert "README.md" in result.changed
    assert "Template v2 paragraph." in (repo / "README.md").read_text()
    assert deployment.read_text().endswith("# user: tuned by the web team\n")
    assert (repo / "notes.md").read_text() == "our own file\n"
    assert scaffold.read_answers(repo)["_commit"] == "v2.0.0"


def replace_first_line(text: str, line: str) -> str:
    return text.replace(text.splitlines()[0], line, 1)


def heading_conflict(template_repo, tmp_path, ours: str, theirs: str):
    """A repo at v1 whose README heading the user rewrote, and a v2 that rewrites the same line."""
    repo = generate(tmp_path, template_repo.release("1.0.0"))
    readme = repo / "README.md"
    readme.write_text(replace_first_line(readme.read_text(), ours))
    commit_all(repo)
    v2 = template_repo.release("2.0.0", {README_TEMPLATE: replace_first_line(template_repo.read(README_TEMPLATE), theirs)})
    return repo, v2


def test_conflicting_update_is_reported_per_file(template_repo, tmp_path):
    repo, v2 = heading_conflict(template_repo, tmp_path, "# Our platform (renamed by us)", "# {{ project_name }} — GitOps repository")
    result = scaffold.update(repo, v2)

    assert result.conflicts == ["README.md"]
    assert "<<<<<<<" in (repo / "README.md").read_text()


def test_rej_mode_leaves_reject_files_and_never_drops_the_user_text(template_repo, tmp_path):
    repo, v2 = heading_conflict(template_repo, tmp_path, "# Ours", "# Theirs {{ project_name }}")
    result = scaffold.update(repo, v2, conflict="rej")

    assert "README.md.rej" in result.conflicts
    # Copier writes the template's side and keeps the user's conflicting hunk in the .rej file.
    assert (repo / "README.md").read_text().startswith("# Theirs demo")
    assert "+# Ours" in (repo / "README.md.rej").read_text()


def test_dirty_tree_is_refused_before_anything_changes(template_repo, tmp_path):
    v1 = template_repo.release("1.0.0")
    repo = generate(tmp_path, v1)
    (repo / "scratch.txt").write_text("not committed\n")
    v2 = template_repo.release("2.0.0", {README_TEMPLATE: template_repo.read(README_TEMPLATE) + "\nv2\n"})
    with pytest.raises(scaffold.ScaffoldError, match="uncommitted changes.*scratch.txt.*commit or stash"):
        scaffold.update(repo, v2)
    assert scaffold.read_answers(repo)["_commit"] == "v1.0.0"


def test_pretend_reports_without_touching_the_repo(template_repo, tmp_path):
    v1 = template_repo.release("1.0.0")
    repo = generate(tmp_path, v1)
    head = git(repo, "rev-parse", "HEAD")
    v2 = template_repo.release("2.0.0", {README_TEMPLATE: template_repo.read(README_TEMPLATE) + "\nv2\n"})
    result = scaffold.update(repo, v2, pretend=True)
    assert result.new_version == "v2.0.0" and "README.md" in result.changed
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""
    assert scaffold.read_answers(repo)["_commit"] == "v1.0.0"


def test_update_to_a_named_version(template_repo, tmp_path):
    v1 = template_repo.release("1.0.0")
    repo = generate(tmp_path, v1)
    readme = template_repo.read(README_TEMPLATE)
    template_repo.release("1.1.0", {README_TEMPLATE: readme + "\nin 1.1\n"})
    v2 = template_repo.release("2.0.0", {README_TEMPLATE: readme + "\nin 1.1\n\nin 2.0\n"})
    assert [str(v) for v in v2.versions()] == ["1.0.0", "1.1.0", "2.0.0"]
    result = scaffold.update(repo, v2, to_version="1.1.0")
    assert result.new_version == "v1.1.0"
    text = (repo / "README.md").read_text()
    assert "in 1.1" in text and "in 2.0" not in text


def test_add_and_remove_app_round_trip_keeps_other_edits(template_repo, tmp_path, monkeypatch):
    v1 = template_repo.release("1.0.0")
    repo = generate(tmp_path, v1)
    monkeypatch.setattr(workflows.template_source, "builtin", lambda: v1)

    workflows.add_item(repo, "app", {"name": "billing", "team": "dev-team", "image": "ghcr.io/acme/billing:2.3.4", "port": 8080})
    assert (repo / "apps/base/billing/deployment.yaml").exists()
    for env in ("dev", "staging", "prod"):
        assert "billing" in (repo / f"apps/{env}/kustomization.yaml").read_text()
    apps = [app["name"] for app in scaffold.read_answers(repo)["apps"]]
    assert apps == ["podinfo", "billing"]
    commit_all(repo, "add billing")

    billing = repo / "apps/base/billing/deployment.yaml"
    billing.write_text(billing.read_text() + "# hand edit to billing\n")
    podinfo = repo / "apps/base/podinfo/deployment.yaml"
    podinfo.write_text(podinfo.read_text() + "# hand edit to podinfo\n")
    commit_all(repo, "hand edits")

    workflows.remove_item(repo, "app", "billing")
    assert not (repo / "apps/base/billing").exists()
    assert "billing" not in (repo / "apps/dev/kustomization.yaml").read_text()
    assert podinfo.read_text().endswith("# hand edit to podinfo\n")
    assert scaffold.read_answers(repo)["_commit"] == "v1.0.0"


def test_remove_refuses_what_is_still_referenced(template_repo, tmp_path, monkeypatch):
    v1 = template_repo.release("1.0.0")
    repo = generate(tmp_path, v1)
    monkeypatch.setattr(workflows.template_source, "builtin", lambda: v1)
    with pytest.raises(ValueError, match="used by cluster"):
        workflows.remove_item(repo, "env", "dev")
    with pytest.raises(ValueError, match="still owns app"):
        workflows.remove_item(repo, "team", "dev-team")
    assert git(repo, "status", "--porcelain") == ""


def test_add_env_and_cluster(template_repo, tmp_path, monkeypatch):
    v1 = template_repo.release("1.0.0")
    repo = generate(tmp_path, v1)
    monkeypatch.setattr(workflows.template_source, "builtin", lambda: v1)
    workflows.add_item(repo, "env", "qa")
    commit_all(repo)
    workflows.add_item(repo, "cluster", {"name": "qa-eu-1", "environment": "qa"})
    assert (repo / "apps/qa/kustomization.yaml").exists()
    assert (repo / "clusters/qa-eu-1/apps.yaml").exists()
    assert "./apps/qa" in (repo / "clusters/qa-eu-1/apps.yaml").read_text()


def test_plain_copier_update_works_where_the_url_is_reachable(template_repo, tmp_path):
    """No lock-in: copier itself can update a generated repo once the canonical URL resolves."""
    v1 = template_repo.release("1.0.0")
    repo = generate(tmp_path, v1)
    v2 = template_repo.release("2.0.0", {README_TEMPLATE: template_repo.read(README_TEMPLATE) + "\nplain copier\n"})
    env = {**__import__("os").environ, **v2.git_env(), "COPIER_CACHE_DIR": str(tmp_path / "copier-cache")}
    copier = Path(__import__("sys").executable).parent / "copier"
    subprocess.run([str(copier), "update", "--defaults", "--trust", str(repo)], check=True, env=env, capture_output=True)
    assert "plain copier" in (repo / "README.md").read_text()
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"] == "v2.0.0"


def test_a_failing_update_leaves_the_repo_as_committed(template_repo, tmp_path):
    v1 = template_repo.release("1.0.0")
    repo = generate(tmp_path, v1)
    head = git(repo, "rev-parse", "HEAD")
    broken = template_repo.release("2.0.0", {"template/broken.md.jinja": "{{ unclosed \n", README_TEMPLATE: template_repo.read(README_TEMPLATE) + "\nv2\n"})
    with pytest.raises(scaffold.ScaffoldError):
        scaffold.update(repo, broken)
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert scaffold.read_answers(repo)["_commit"] == "v1.0.0"
