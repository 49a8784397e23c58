"""The CI, Renovate and pre-commit files of generated repos: valid for their tools, least privilege,
present only for the chosen provider, and their checks really catch what they claim to catch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

from .variants import CI_PROVIDERS, SHAPES, VARIANTS, render, variant_id

BIN = Path(sys.executable).parent
GITHUB_FILES = {".github/workflows/validate.yaml", ".github/workflows/template-update.yaml", ".github/workflows/diff.yaml",
                ".github/pull_request_template.md"}
# Promotion needs a second environment.
PROMOTE_WORKFLOW = ".github/workflows/promote.yaml"
GITLAB_FILES = {".gitlab-ci.yml", ".gitlab/merge_request_templates/Default.md"}
EVERY_PROVIDER = {"renovate.json", ".pre-commit-config.yaml", ".yamllint", "scripts/check-alert-rules.py", "docs/ci.md"}
# Where Copier writes its conflict markers (copier/_main.py, `git merge-file -L ...`).
COPIER_MARKERS = ("<<<<<<< before updating", ">>>>>>> after updating")


@pytest.fixture(scope="module", params=VARIANTS, ids=variant_id)
def generated(request, tmp_path_factory):
    ci, shape = request.param
    repo, answers = render(tmp_path_factory, ci, shape)
    return ci, repo, answers


def repo_of(tmp_path_factory, ci: str) -> tuple[Path, dict]:
    return render(tmp_path_factory, ci, "defaults")


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess:
    # A proxy that refuses every connection: the built-in schemas must validate offline.
    offline = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True, env=offline
    )


def files_of(repo: Path) -> set[str]:
    return {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts[:1]}


# --- presence -------------------------------------------------------------------------------------


def test_ci_files_exist_only_for_the_chosen_provider(generated):
    ci, repo, answers = generated
    files = files_of(repo)
    assert EVERY_PROVIDER <= files
    assert GITHUB_FILES & files == (GITHUB_FILES if ci == "github" else set())
    assert GITLAB_FILES & files == (GITLAB_FILES if ci == "gitlab" else set())
    if ci != "github":
        assert not [name for name in files if name.startswith(".github/workflows/")]
    assert (PROMOTE_WORKFLOW in files) == (ci == "github" and len(answers["environments"]) > 1)


def test_the_review_checklist_is_the_same_on_both_providers():
    root = Path(__file__).resolve().parents[2] / "template"
    github = root / ".github" / "{% if ci == 'github' %}pull_request_template.md{% endif %}.jinja"
    gitlab = root / "{% if ci == 'gitlab' %}.gitlab{% endif %}" / "merge_request_templates" / "Default.md.jinja"
    assert github.read_text() == gitlab.read_text()


# --- schemas and lint -----------------------------------------------------------------------------


def test_yamllint_passes_on_every_generated_file(generated):
    _, repo, _ = generated
    run = subprocess.run([str(BIN / "yamllint"), "--strict", "-c", str(repo / ".yamllint"), str(repo)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_github_workflows_match_the_github_schema(tmp_path_factory):
    repo, _ = repo_of(tmp_path_factory, "github")
    workflows = sorted((repo / ".github" / "workflows").glob("*.yaml"))
    assert len(workflows) == 4
    run = check_jsonschema("vendor.github-workflows", *workflows)
    assert run.returncode == 0, run.stdout + run.stderr


def test_gitlab_ci_matches_the_gitlab_schema(tmp_path_factory):
    repo, _ = repo_of(tmp_path_factory, "gitlab")
    run = check_jsonschema("vendor.gitlab-ci", repo / ".gitlab-ci.yml")
    assert run.returncode == 0, run.stdout + run.stderr


def test_renovate_config_matches_the_renovate_schema(generated):
    _, repo, _ = generated
    run = check_jsonschema("vendor.renovate", repo / "renovate.json")
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_schema_checks_can_fail(tmp_path):
    broken = tmp_path / "workflow.yaml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    assert check_jsonschema("vendor.github-workflows", broken).returncode == 1
    renovate = tmp_path / "renovate.json"
    renovate.write_text('{"automerge": "yes"}')
    assert check_jsonschema("vendor.renovate", renovate).returncode == 1


# --- GitHub workflows -----------------------------------------------------------------------------


def load_workflow(repo: Path, name: str) -> dict:
    data = yaml.safe_load((repo / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def test_actions_are_pinned_by_commit_with_their_release(tmp_path_factory):
    repo, _ = repo_of(tmp_path_factory, "github")
    uses = [
        step["uses"]
        for name in ("validate.yaml", "template-update.yaml", "diff.yaml", "promote.yaml")
        for job in load_workflow(repo, name)["jobs"].values()
        for step in job["steps"]
        if "uses" in step
    ]
    assert len(uses) >= 8
    for ref in uses:  # a tag can be moved; a commit cannot
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{ref} is not pinned to a commit"
    lines = [line for name in ("validate.yaml", "template-update.yaml", "diff.yaml", "promote.yaml")
             for line in (repo / ".github/workflows" / name).read_text().splitlines() if "uses:" in line]
    assert len(lines) == len(uses)
    for line in lines:  # the release each commit is, for people and Renovate
        assert re.search(r"@[0-9a-f]{40}  # v\d+\.\d+\.\d+$", line), line


def test_workflow_permissions_are_least_privilege(tmp_path_factory):
    repo, _ = repo_of(tmp_path_factory, "github")
    validate = load_workflow(repo, "validate.yaml")
    assert validate["permissions"] == {"contents": "read"}
    for name, job in validate["jobs"].items():
        granted = job.get("permissions", {})
        writes = {scope for scope, level in granted.items() if level == "write"}
        uploads_sarif = any("upload-sarif" in step.get("uses", "") for step in job["steps"])
        assert writes == ({"security-events"} if uploads_sarif else set()), name
    update = load_workflow(repo, "template-update.yaml")
    assert update["permissions"] == {"contents": "read"}
    assert update["jobs"]["update"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    diff = load_workflow(repo, "diff.yaml")
    assert diff["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert [job.get("permissions") for job in diff["jobs"].values()] == [None]
    promote = load_workflow(repo, "promote.yaml")
    assert promote["permissions"] == {"contents": "read"}
    assert promote["jobs"]["promote"]["permissions"] == {"contents": "write", "pull-requests": "write"}


@pytest.mark.parametrize("shape", SHAPES)
def test_validate_runs_on_pull_requests_and_the_default_branch(shape, tmp_path_factory):
    repo, answers = render(tmp_path_factory, "github", shape)
    on = load_workflow(repo, "validate.yaml")["on"]
    assert "pull_request" in on
    assert on["push"]["branches"] == [answers["default_branch"]]


def test_validate_workflow_runs_every_check(tmp_path_factory):
    repo, _ = repo_of(tmp_path_factory, "github")
    text = (repo / ".github" / "workflows" / "validate.yaml").read_text()
    for expected in (
        "yamllint --strict .",
        "gitops-forge validate --kubernetes-version \"$KUBERNETES_VERSION\"",
        "--schema-location \"$SCHEMA_LOCATION\"",
        "--format sarif",
        "scripts/check-alert-rules.py",
        "flux migrate -f . --yes",
        "git diff --exit-code",
        "gitleaks/gitleaks-action@",
    ):
        assert expected in text, expected


@pytest.mark.parametrize("shape", SHAPES)
def test_template_update_runs_weekly_and_opens_a_pull_request(shape, tmp_path_factory):
    repo, answers = render(tmp_path_factory, "github", shape)
    workflow = load_workflow(repo, "template-update.yaml")
    assert "workflow_dispatch" in workflow["on"]
    (schedule,) = workflow["on"]["schedule"]
    assert schedule["cron"].split()[2:] == ["*", "*", "1"]  # weekly, on Mondays
    steps = workflow["jobs"]["update"]["steps"]
    assert steps[0]["with"]["ref"] == answers["default_branch"]
    assert "gitops-forge update" in steps[1]["run"]
    assert steps[2]["uses"].startswith("peter-evans/create-pull-request@")
    assert steps[-1]["if"] == "steps.update.outputs.status != '0'"  # conflicts fail the run visibly


# --- GitLab pipeline ------------------------------------------------------------------------------


def test_gitlab_pipeline_has_the_checks_and_a_scheduled_update(tmp_path_factory):
    repo, _ = repo_of(tmp_path_factory, "gitlab")
    pipeline = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    checks = {"yamllint", "update-leftovers", "validate", "alert-rules", "deprecated-apis", "secret-scan"}
    assert checks <= set(pipeline)
    for name in checks:
        assert pipeline[name]["extends"] == ".checks"
    assert pipeline[".checks"]["rules"][0] == {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"}
    update = pipeline["template-update"]
    assert all("GITOPS_FORGE_TEMPLATE_UPDATE" in rule["if"] for rule in update["rules"])
    script = "\n".join(update["script"])
    assert "gitops-forge update" in script and "merge_request.create" in script and "exit 1" in script
    for image in [job["image"] for job in pipeline.values() if isinstance(job, dict) and "image" in job]:
        name = image["name"] if isinstance(image, dict) else image
        assert re.search(r":[\w.-]*\d", name), f"image {name} is not pinned to a version"


# --- the leftover checks really catch Copier's conflicts ------------------------------------------


def leftover_script(ci: str, repo: Path) -> str:
    if ci == "github":
        steps = load_workflow(repo, "validate.yaml")["jobs"]["lint"]["steps"]
        return next(step["run"] for step in steps if "conflict markers" in step.get("name", ""))
    return "\n".join(yaml.safe_load((repo / ".gitlab-ci.yml").read_text())["update-leftovers"]["script"])


def copier_markers_in_source() -> tuple[str, ...]:
    """The markers as the installed Copier writes them, read from its source."""
    import copier

    source = (Path(copier.__file__).parent / "_main.py").read_text()
    found = tuple(m for m in COPIER_MARKERS if f'b"{m}"' in source)
    assert found == COPIER_MARKERS, "Copier changed its conflict markers; update the checks and COPIER_MARKERS"
    return found


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_leftover_check_fails_on_copier_markers_and_rej_files(ci, tmp_path_factory, tmp_path):
    source, _ = repo_of(tmp_path_factory, ci)
    repo = tmp_path / "repo"
    shutil.copytree(source, repo)
    script = leftover_script(ci, repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)

    def run() -> int:
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        return subprocess.run(["bash", "-c", script], cwd=repo, capture_output=True, text=True).returncode

    assert run() == 0, "a freshly generated repo has no leftovers"
    before, after = copier_markers_in_source()
    readme = repo / "README.md"
    original = readme.read_text()
    readme.write_text(f"{original}\n{before}\nmine\n=======\ntheirs\n{after}\n")
    assert run() == 1
    readme.write_text(f"{original}\n{after}\n")  # half-resolved: one marker left
    assert run() == 1
    readme.write_text(original)
    (repo / "apps" / "x.yaml.rej").write_text("@@ -1 +1 @@\n")
    assert run() == 1


# --- pre-commit -----------------------------------------------------------------------------------


def hooks(repo: Path) -> dict[str, dict]:
    config = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())
    return {hook["id"]: {**hook, "repo": entry["repo"], "rev": entry.get("rev")} for entry in config["repos"] for hook in entry["hooks"]}


def test_pre_commit_hooks_cover_lint_conflicts_rejects_and_secrets(tmp_path_factory):
    repo, _ = repo_of(tmp_path_factory, "none")
    found = hooks(repo)
    assert {"yamllint", "check-merge-conflict", "gitleaks", "copier-conflict-markers", "forbid-rej-files"} <= set(found)
    for hook in found.values():
        assert hook["repo"] == "local" or re.fullmatch(r"v\d+\.\d+\.\d+", hook["rev"]), hook
    # Outside a git merge, check-merge-conflict checks nothing unless told to assume one; Copier's
    # conflicts are not a git merge.
    assert "--assume-in-merge" in found["check-merge-conflict"]["args"]


def test_pre_commit_local_hooks_match_what_copier_leaves(tmp_path_factory):
    repo, _ = repo_of(tmp_path_factory, "none")
    found = hooks(repo)
    markers = found["copier-conflict-markers"]
    assert markers["language"] == "pygrep"
    pattern = re.compile(markers["entry"])
    for marker in copier_markers_in_source():
        assert pattern.search(marker), marker
    for innocent in ("<<<<<<<< before updating", "text before updating", "# >>>>>>> after updating"):
        assert not pattern.search(innocent), innocent
    rejects = found["forbid-rej-files"]
    assert rejects["language"] == "fail"
    assert re.search(rejects["files"], "apps/dev/web/kustomization.yaml.rej")
    assert not re.search(rejects["files"], "apps/dev/web/kustomization.yaml")


# --- Renovate -------------------------------------------------------------------------------------


def js_regex(pattern: str) -> re.Pattern:
    assert pattern.startswith("/") and pattern.endswith("/"), pattern
    return re.compile(pattern[1:-1])


def rule_applies(rule: dict, path: str, manager: str) -> bool:
    if "matchFileNames" in rule and not any(fnmatch(path, glob) for glob in rule["matchFileNames"]):
        return False
    return "matchManagers" not in rule or manager in rule["matchManagers"]


def test_renovate_covers_chart_versions_and_kustomizations(generated):
    _, repo, answers = generated
    config = json.loads((repo / "renovate.json").read_text())
    if answers["engine"] == "flux":
        assert "argocd" not in config
        flux = [js_regex(p) for p in config["flux"]["managerFilePatterns"]]
        assert any(p.search("infrastructure/controllers/sealed-secrets/helmrelease.yaml") for p in flux)
    else:
        # The chart versions are pinned per environment (tests/generated/test_platform_envs.py): Renovate's
        # argocd manager, which would bump the overridden ones of infrastructure/controllers/, is off.
        assert "flux" not in config and config["argocd"]["enabled"] is False
    first = f"infrastructure/environments/{answers['environments'][0]}/controllers/kustomization.yaml"
    assert any(js_regex(p).search(first) for manager in config["customManagers"] for p in manager["managerFilePatterns"])
    kustomize = [js_regex(p) for p in config["kustomize"]["managerFilePatterns"]]
    for env in answers["environments"]:
        for app in answers["apps"]:
            assert any(p.search(f"apps/{env}/{app['name']}/kustomization.yaml") for p in kustomize)


def test_renovate_never_automerges_production(generated):
    _, repo, answers = generated
    rules = json.loads((repo / "renovate.json").read_text())["packageRules"]
    production = [f"apps/{answers['environments'][-1]}/web/kustomization.yaml", "apps/base/web/deployment.yaml",
                  "clusters/prod-1/apps.yaml", "infrastructure/controllers/sealed-secrets/helmrelease.yaml", "tenants/base/t/namespace.yaml"]
    for path in production:
        for manager in ("kustomize", "flux", "argocd", "copier"):
            automerge = False  # Renovate's default; later matching rules override earlier ones
            for rule in rules:
                if rule_applies(rule, path, manager) and "automerge" in rule:
                    automerge = rule["automerge"]
            assert automerge is False, (path, manager)
    if len(answers["environments"]) > 1:
        first = f"apps/{answers['environments'][0]}/web/kustomization.yaml"
        assert any(rule.get("automerge") and rule_applies(rule, first, "kustomize") for rule in rules)


def test_renovate_template_updates_come_from_one_place(generated):
    ci, repo, _ = generated
    copier_manager = json.loads((repo / "renovate.json").read_text())["copier"]
    # With a CI provider the scheduled template-update job proposes updates; Renovate would duplicate them.
    assert copier_manager["enabled"] is (ci == "none")


# --- alert rules ----------------------------------------------------------------------------------


GOOD_RULE = """apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: good
spec:
  groups:
    - name: example
      rules:
        - alert: TargetDown
          expr: up == 0
          for: 5m
"""


def test_alert_rule_script_is_a_no_op_without_rules_and_catches_bad_ones(tmp_path_factory, tmp_path):
    source, _ = repo_of(tmp_path_factory, "github")
    repo = tmp_path / "repo"
    shutil.copytree(source, repo)
    script = [sys.executable, "scripts/check-alert-rules.py", "."]
    run = subprocess.run(script, cwd=repo, capture_output=True, text=True)
    if "No PrometheusRule found" in run.stdout:
        assert run.returncode == 0
    else:  # the template ships alert rules of its own: they must pass
        assert run.returncode == 0, run.stdout + run.stderr
    rules = repo / "infrastructure" / "configs" / "test-rules.yaml"
    rules.write_text(GOOD_RULE)
    run = subprocess.run(script, cwd=repo, capture_output=True, text=True)
    assert run.returncode == 0 and "ok " in run.stdout, run.stdout + run.stderr
    rules.write_text(GOOD_RULE + "---\n" + GOOD_RULE.replace("name: good", "name: bad").replace("up == 0", "sum(rate(up[5m]) by"))
    run = subprocess.run(script, cwd=repo, capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED  infrastructure/configs/test-rules.yaml (document 2, bad)" in run.stdout


@pytest.mark.parametrize("ci", CI_PROVIDERS)
def test_ci_guards_the_alert_rule_check_with_a_search(ci, tmp_path_factory):
    repo, _ = repo_of(tmp_path_factory, ci)
    if ci == "none":
        assert "scripts/check-alert-rules.py" in (repo / "docs" / "ci.md").read_text()
        return
    text = (repo / (".github/workflows/validate.yaml" if ci == "github" else ".gitlab-ci.yml")).read_text()
    assert "grep -rqE --include='*.yaml' --include='*.yml' '^kind: *PrometheusRule' ." in text


@pytest.mark.parametrize("shape", SHAPES)
def test_branch_protection_requires_exactly_the_validate_jobs(shape, tmp_path_factory):
    repo, _ = render(tmp_path_factory, "github", shape)
    jobs = {job["name"] for job in load_workflow(repo, "validate.yaml")["jobs"].values()}
    guide = (repo / "docs" / "branch-protection.md").read_text()
    contexts = set(re.findall(r'\{"context": "([^"]+)"\}', guide))
    assert contexts == jobs
    for name in jobs:
        assert f"`{name}`" in guide, name


# --- the engine decides the engine-specific checks ------------------------------------------------


def ci_text(ci: str, repo: Path) -> str:
    return (repo / (".github/workflows/validate.yaml" if ci == "github" else ".gitlab-ci.yml")).read_text()


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_argocd_ci_checks_the_rbac_policy_and_nothing_of_flux(ci, tmp_path_factory):
    flux_repo, _ = repo_of(tmp_path_factory, ci)
    argocd_repo, answers = render(tmp_path_factory, ci, "argocd")
    assert answers["engine"] == "argocd"
    assert "flux migrate -f . --yes" in ci_text(ci, flux_repo) and "argocd" not in ci_text(ci, flux_repo).lower()
    text = ci_text(ci, argocd_repo)
    assert "flux" not in text.lower()
    assert "python scripts/check-argocd-rbac.py ." in text
    assert "cli_checksums.txt" in text and "sha256sum --check" in text  # the CLI download is verified
    assert (argocd_repo / "scripts/check-argocd-rbac.py").is_file() and not (flux_repo / "scripts/check-argocd-rbac.py").exists()
    if ci == "gitlab":
        pipeline = yaml.safe_load(text)
        assert "deprecated-apis" not in pipeline and pipeline["argocd-rbac"]["extends"] == ".checks"


FAKE_ARGOCD = """#!/bin/sh
# Stands in for the argocd CLI: `rbac validate` succeeds, `rbac can` answers $ANSWER.
printf '%s\\n' "$*" >> "$CALLS"
case "$4" in
  validate) echo "Policy is valid." ;;
  can) echo "$ANSWER"; [ "$ANSWER" = Yes ] ;;
esac
"""


def test_argocd_rbac_script_passes_the_generated_policy_and_catches_an_open_default(tmp_path_factory, tmp_path):
    source, _ = render(tmp_path_factory, "none", "argocd")
    repo = tmp_path / "repo"
    shutil.copytree(source, repo)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "argocd").write_text(FAKE_ARGOCD)
    (bin_dir / "argocd").chmod(0o755)
    calls = tmp_path / "calls"

    def run(answer: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ANSWER": answer, "CALLS": str(calls)}
        return subprocess.run([sys.executable, "scripts/check-argocd-rbac.py", "."], cwd=repo, capture_output=True, text=True, env=env)

    passed = run("No")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "rbac validate --policy-file" in calls.read_text() and "rbac can someone-without-groups" in calls.read_text()
    opened = run("Yes")  # a policy.default that grants something
    assert opened.returncode == 1 and "FAILED" in opened.stdout
    values = repo / "infrastructure/controllers/argo-cd/values.yaml"
    values.write_text(values.read_text().replace("policy.csv: |", "policy.csv: |\n      # emptied\n    unused: |", 1))
    emptied = run("No")
    assert emptied.returncode == 1 and "policy.csv" in emptied.stdout
    without_cli = subprocess.run([sys.executable, "scripts/check-argocd-rbac.py", "."], cwd=repo, capture_output=True, text=True,
                                 env={**os.environ, "PATH": "/nonexistent"})
    assert without_cli.returncode == 2 and "argocd CLI" in without_cli.stdout
