"""adopt: answers inferred from a repo's structure, written so that the update path works on it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from generator.adopt import infer
from generator.cli import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("isolated_user")
FIXTURES = Path(__file__).parent / "fixtures"
HELM_EXAMPLE = Path(__file__).parents[1] / "validate" / "fixtures" / "flux2-kustomize-helm-example"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", message)


def _new(tmp_path: Path, *data: str) -> Path:
    repo = tmp_path / "acme-platform"
    result = runner.invoke(app, ["new", str(repo), "--defaults", *(x for d in data for x in ("--data", d))])
    assert result.exit_code == 0, result.output
    return repo


# Answers a repo does not show in its files; the round trip passes them like a person answering the questions.
HIDDEN = ("verify=none", "cluster_flavor=managed")


@pytest.mark.parametrize("data", [("secrets=sops", "ci=gitlab"), ("engine=argocd",)], ids=["flux-sops-gitlab", "argocd"])
def test_lost_answers_file_is_recovered(tmp_path, data):
    repo = _new(tmp_path, *data)
    recorded = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    (repo / ".copier-answers.yml").unlink()
    _commit(repo, "answers file lost")

    shown = runner.invoke(app, ["adopt", str(repo), "--json", *(x for d in HIDDEN for x in ("--data", d))])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["answers"] == {k: v for k, v in recorded.items() if not k.startswith("_")}
    assert report["add"] == [] and report["differ"] == [] and report["questions"] == []
    assert not (repo / ".copier-answers.yml").exists()  # without --write nothing is written

    written = runner.invoke(app, ["adopt", str(repo), "--write", *(x for d in HIDDEN for x in ("--data", d))])
    assert written.exit_code == 0, written.output
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text()) == recorded
    assert _git(repo, "status", "--porcelain") == "?? .copier-answers.yml\n"  # nothing committed by adopt


def _side(text: str, side: str) -> str:
    """The file as one side of its conflicts: "before updating" (the repo's) or "after updating" (the template's)."""
    out, where = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith("<<<<<<< before updating"):
            where = "before"
        elif line.startswith("=======") and where == "before":
            where = "after"
        elif line.startswith(">>>>>>> after updating"):
            where = None
        elif where is None or (where == "before") == (side == "before"):
            out.append(line)
    return "".join(out)


def _tree(repo: Path) -> dict[str, bytes]:
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts}


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_hand_edited_repo_adopts_with_conflicts_then_updates_and_adds(tmp_path, engine):
    repo = _new(tmp_path, f"engine={engine}")
    (repo / ".copier-answers.yml").unlink()
    template_side = {name: (repo / name).read_text() for name in ("README.md", ".pre-commit-config.yaml")}
    readme, hooks = repo / "README.md", repo / ".pre-commit-config.yaml"
    readme.write_text(readme.read_text() + "\nOur on-call rota: see the wiki.\n")
    hooks.write_text(hooks.read_text().replace("rev: v5.0.0", "rev: v5.0.0  # pinned by the platform team", 1))
    (repo / ".yamllint").unlink()
    (repo / "docs" / "our-runbook.md").write_text("# Our runbook\n")
    _commit(repo, "hand edits, answers file lost")
    user_side = {name: (repo / name).read_text() for name in template_side}
    before = _tree(repo)

    result = runner.invoke(app, ["adopt", str(repo), "--write", "--defaults", "--json"])
    # Like update: the conflicts are written, listed, and the command exits 1.
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["conflicts"] == report["differ"] == [".pre-commit-config.yaml", "README.md"]
    assert report["add"] == [".yamllint"]
    assert "2 file(s) have conflicts" in result.stderr
    for name in report["conflicts"]:
        text = (repo / name).read_text()
        assert "<<<<<<< before updating\n" in text and ">>>>>>> after updating\n" in text
        # Both sides are there whole: the repo's file as it was committed, the template's as it renders.
        assert _side(text, "before") == user_side[name]
        assert _side(text, "after") == template_side[name]
    # git shows them unmerged, as after an update with conflicts, and refuses to commit them as they are.
    assert _git(repo, "diff", "--name-only", "--diff-filter=U").split() == report["conflicts"]
    assert subprocess.run(["git", "commit", "-qm", "x"], cwd=repo, capture_output=True).returncode != 0
    # Nothing else changed: identical files and the repo's own files untouched, only the answers file and
    # the missing file added.
    after = _tree(repo)
    assert set(after) - set(before) == {".copier-answers.yml", ".yamllint"}
    assert {n for n in before if after[n] != before[n]} == set(report["conflicts"])
    assert after["docs/our-runbook.md"] == b"# Our runbook\n"

    # Resolved by keeping the repo's side, the repo is on the update path.
    for name in report["conflicts"]:
        (repo / name).write_text(_side((repo / name).read_text(), "before"))
    _commit(repo, "adopt")
    checked = runner.invoke(app, ["check-update", str(repo)])
    assert checked.exit_code == 0 and "Up to date" in checked.output, checked.output
    update = runner.invoke(app, ["update", str(repo)])
    assert update.exit_code == 0, update.output
    added = runner.invoke(app, ["add", "app", "web", "--team", "dev-team", "--image", "ghcr.io/acme/web:1.0.0", "--port", "8080", "-C", str(repo)])
    assert added.exit_code == 0, added.output
    assert "Our on-call rota" in readme.read_text() and "pinned by the platform team" in hooks.read_text()
    _commit(repo, "add web")
    assert runner.invoke(app, ["remove", "app", "web", "-C", str(repo)]).exit_code == 0
    assert "Our on-call rota" in readme.read_text()


def test_write_refuses_uncommitted_changes(tmp_path):
    repo = _new(tmp_path)
    (repo / ".copier-answers.yml").unlink()
    result = runner.invoke(app, ["adopt", str(repo), "--write", "--defaults"])
    assert result.exit_code == 2 and "uncommitted changes" in result.output
    assert not (repo / ".copier-answers.yml").exists()


def test_write_refuses_a_repo_that_has_answers(tmp_path):
    repo = _new(tmp_path)
    result = runner.invoke(app, ["adopt", str(repo), "--write", "--defaults"])
    assert result.exit_code == 2 and "already has .copier-answers.yml" in result.output


def test_helm_example_layout(tmp_path):
    inferred = infer(HELM_EXAMPLE)
    assert inferred.answers["engine"] == "flux"
    assert inferred.answers["environments"] == ["staging", "production"]
    assert inferred.answers["clusters"] == [{"name": "staging", "environment": "staging"}, {"name": "production", "environment": "production"}]
    assert inferred.answers["git_url"] == "ssh://git@github.com/fluxcd/flux2-kustomize-helm-example"
    asked = {q.name: q.why for q in inferred.questions}
    # A HelmRelease names neither image nor port, and there are no tenants: asked, not guessed.
    assert "image, port, team" in asked["apps"] and "teams" in asked
    refused = runner.invoke(app, ["adopt", str(HELM_EXAMPLE)])
    assert refused.exit_code == 2 and "not inferable" in refused.output

    repo = tmp_path / "example"
    shutil.copytree(HELM_EXAMPLE, repo)
    result = runner.invoke(app, ["adopt", str(repo), "--defaults", "--data", "teams=[{name: web, groups: [web-devs]}]", "--write", "--json"])
    assert result.exit_code == 1, result.output  # the example's own files are conflicts to resolve
    report = json.loads(result.stdout)
    assert "apps/staging/kustomization.yaml" in report["conflicts"] and "clusters/staging/tenants.yaml" in report["add"]
    assert "apps/base/podinfo/release.yaml" in report["unknown"]
    ours = (HELM_EXAMPLE / "apps/staging/kustomization.yaml").read_text()
    assert _side((repo / "apps/staging/kustomization.yaml").read_text(), "before") == ours
    assert (repo / "apps/base/podinfo/release.yaml").read_bytes() == (HELM_EXAMPLE / "apps/base/podinfo/release.yaml").read_bytes()
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_src_path"] == "https://github.com/gitops-forge/gitops-forge.git"


def test_multi_tenancy_layout():
    inferred = infer(FIXTURES / "flux2-multi-tenancy")
    assert inferred.answers["environments"] == ["staging", "production"]
    assert inferred.answers["clusters"] == [{"name": "staging", "environment": "staging"}, {"name": "production", "environment": "production"}]
    assert inferred.answers["teams"] == [{"name": "dev-team", "groups": []}]
    assert inferred.answers["apps"] == []
    # The tenant's RoleBinding names a User and a ServiceAccount, no identity-provider group.
    assert "dev-team" in next(q.why for q in inferred.questions if q.name == "teams")


def test_argocd_app_of_apps_layout():
    inferred = infer(FIXTURES / "argocd-app-of-apps")
    assert inferred.answers["engine"] == "argocd"
    assert (inferred.answers["git_url"], inferred.answers["default_branch"]) == ("https://github.com/example/deploy.git", "main")
    assert inferred.answers["environments"] == ["staging", "prod"]
    assert inferred.answers["clusters"] == [{"name": "stg-eu", "environment": "staging"}, {"name": "prod-eu", "environment": "prod"}]
    assert inferred.answers["apps"] == [{"name": "guestbook", "image": "ghcr.io/example/guestbook:0.1.0", "port": 8080}]
    asked = {q.name for q in inferred.questions}
    assert {"teams", "apps", "secrets", "monitoring", "ci"} <= asked


def test_argocd_helm_chart_app_of_apps_layout(tmp_path):
    # argocd-example-apps: the Applications are a Helm chart's templates (apps/), the apps plain directories,
    # kustomize bases without overlays and Helm charts.
    repo = tmp_path / "example-apps"
    shutil.copytree(FIXTURES / "argocd-helm-app-of-apps", repo)
    inferred = infer(repo)
    assert inferred.answers["engine"] == "argocd" and "apps/templates/applications.yaml" in inferred.evidence["engine"]
    assert (inferred.answers["git_url"], inferred.answers["default_branch"]) == ("https://github.com/example/example-apps", "master")
    asked = {q.name: q.why for q in inferred.questions}
    # The apps are there but in no layout the template knows: asked, not taken for "no apps".
    assert "apps" not in inferred.answers
    assert "guestbook/" in asked["apps"] and "sock-shop/base/" in asked["apps"] and "helm-guestbook/ (a Helm chart)" in asked["apps"]
    assert "apps/ (a Helm chart)" not in asked["apps"]  # the app-of-apps chart is not an app
    assert {"environments", "clusters", "teams"} <= set(asked)
    refused = runner.invoke(app, ["adopt", str(repo)])
    assert refused.exit_code == 2 and "not inferable" in refused.output


def test_clusters_named_partly_like_environments_ask_for_the_environments(tmp_path):
    # d2-fleet: clusters/staging, clusters/prod-eu, clusters/prod-us; only one name is an environment.
    repo = tmp_path / "fleet"
    shutil.copytree(FIXTURES / "flux2-multi-tenancy", repo)
    shutil.rmtree(repo / "tenants")
    (repo / "clusters/production").rename(repo / "clusters/prod-eu")
    for path in repo.glob("clusters/*/*.yaml"):
        path.write_text(path.read_text().replace("./tenants/production", "./tenants").replace("./tenants/staging", "./tenants"))
    inferred = infer(repo)
    asked = {q.name: q.why for q in inferred.questions}
    assert inferred.answers["environments"] == ["staging"] and "clusters/prod-eu name no environment" in asked["environments"]
    assert inferred.evidence["environments"] == "cluster directories clusters/staging/"
    assert "prod-eu" in asked["clusters"]
