"""`gitops-forge diff` on generated repos of both engines: after a promotion it reports exactly the changed
Deployment in the target environment's clusters; secret values never appear in any format; the Markdown
and JSON outputs have the structure CI relies on; --exit-code; bad input."""

from __future__ import annotations

import base64
import json
import re
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from generator.cli import app
from generator.diff import MARKER, diff_repo, format_markdown

from ..generated.variants import generate
from .conftest import APP, git, overlay, set_tag

runner = CliRunner()
FORMATS = ("text", "markdown", "json")


def diff(repo, *args: str):
    return runner.invoke(app, ["diff", str(repo), *args])


def clusters_of(repo, env: str) -> list[str]:
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    return sorted(c["name"] for c in answers["clusters"] if c["environment"] == env)


def flat(data: dict) -> list[tuple]:
    return [(c["name"], e["path"], o["change"], o["kind"], o["namespace"], o["name"])
            for c in data["clusters"] for e in c["entrypoints"] for o in e["objects"]]


def diff_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_diff_after_a_promotion_reports_exactly_the_changed_deployment(repo):
    set_tag(repo, "dev", "6.8.0")
    assert runner.invoke(app, ["promote", APP, "--from", "dev", "--path", str(repo)]).exit_code == 0
    result = diff(repo, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = [(cluster, f"apps/staging/{APP}", "changed", "Deployment", "dev-team", APP) for cluster in clusters_of(repo, "staging")]
    assert flat(data) == expected
    assert data["totals"] == {"added": 0, "removed": 0, "changed": 1, "clusters": len(expected)}
    (obj,) = data["clusters"][0]["entrypoints"][0]["objects"]
    assert diff_lines(obj["diff"]) == ["-      - image: ghcr.io/stefanprodan/podinfo:6.7.1",
                                       "+      - image: ghcr.io/stefanprodan/podinfo:6.8.0"]
    assert data["base"]["commit"] == git(repo, "rev-parse", "HEAD").strip() and data["head"]["commit"] is None
    # Only what the change can reach was rendered, not every entrypoint twice.
    assert 0 < data["entrypoints"]["rendered"] < data["entrypoints"]["total"]

    # The same change between two commits, and the worktrees are gone afterwards.
    git(repo, "commit", "-qam", "promote")
    committed = json.loads(diff(repo, "--base", "HEAD~1", "--head", "HEAD", "--format", "json").output)
    assert flat(committed) == expected and committed["head"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_a_promotion_is_reported_under_each_cluster_of_the_target_environment_and_no_other(
        engine, tmp_path_factory, tmp_path, isolated_user):
    """Two staging clusters apply the same apps/staging (one entrypoint for both): both are named, dev's and
    prod's are not."""
    clusters = [{"name": "dev-1", "environment": "dev"}, {"name": "staging-eu", "environment": "staging"},
                {"name": "staging-us", "environment": "staging"}, {"name": "prod-1", "environment": "prod"}]
    generated = generate(tmp_path_factory, {"ci": "github", "environments": ["dev", "staging", "prod"],
                                            "clusters": clusters, **({"engine": engine} if engine == "argocd" else {})})
    repo = tmp_path / "repo"
    shutil.copytree(generated.repo, repo, ignore=shutil.ignore_patterns(".git"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Generate repository with gitops-forge")
    set_tag(repo, "dev", "6.8.0")
    assert runner.invoke(app, ["promote", APP, "--from", "dev", "--path", str(repo)]).exit_code == 0
    data = json.loads(diff(repo, "--format", "json").output)
    assert flat(data) == [(cluster, f"apps/staging/{APP}", "changed", "Deployment", "dev-team", APP)
                          for cluster in ("staging-eu", "staging-us")]
    assert data["totals"] == {"added": 0, "removed": 0, "changed": 1, "clusters": 2}


def test_a_change_every_cluster_applies_is_reported_under_every_cluster(repo):
    path = repo / "infrastructure/configs/tenancy/clusterrole-sealedsecrets-view.yaml"
    path.write_text(path.read_text().replace("      - watch\n", "      - watch\n      - delete\n", 1))
    data = json.loads(diff(repo, "--format", "json").output)
    names = yaml.safe_load((repo / ".copier-answers.yml").read_text())["clusters"]
    assert sorted(c["name"] for c in data["clusters"]) == sorted(c["name"] for c in names)
    assert {o[1:] for o in flat(data)} == {
        ("infrastructure/configs", "changed", "ClusterRole", None, "gitops-forge:sealedsecrets-view")}
    for cluster in data["clusters"]:
        (entrypoint,) = cluster["entrypoints"]
        assert [diff_lines(o["diff"]) for o in entrypoint["objects"]] == [["+  - delete"]]


SECRET = """apiVersion: v1
kind: Secret
metadata:
  name: {name}
type: Opaque
data:
  token: {token}
stringData:
  password: {password}
"""


def plant(repo, name: str, token: str, password: str) -> None:
    """A Secret in the staging overlay (listed in its kustomization)."""
    encoded = base64.b64encode(token.encode()).decode()
    (repo / f"apps/staging/{APP}/{name}.yaml").write_text(SECRET.format(name=name, token=encoded, password=password))
    list_in_overlay(repo, f"{name}.yaml")


def list_in_overlay(repo, file: str) -> None:
    """Add a file to the staging overlay's resources, as the seal script does once a secret is real."""
    kustomization = repo / overlay("staging")
    text = kustomization.read_text()
    if f"- {file}\n" not in text:
        kustomization.write_text(text.replace("resources:\n", f"resources:\n  - {file}\n", 1))


def test_secret_values_never_appear_in_any_output(repo):
    plant(repo, "planted", "token-before-1f3a", "password-before-9c2e")
    list_in_overlay(repo, "sealedsecret.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "planted secret")
    plant(repo, "planted", "token-after-77b1", "password-after-5d0c")
    plant(repo, "fresh", "token-new-42aa", "password-new-e3b9")
    sealed = repo / f"apps/staging/{APP}/sealedsecret.yaml"
    sealed.write_text(sealed.read_text().replace("PLACEHOLDER-NOT-ENCRYPTED-run-scripts-seal-secret.sh", "AgBy3sealed-after-0d9f"))
    values = ["token-before-1f3a", "password-before-9c2e", "token-after-77b1", "password-after-5d0c",
              "token-new-42aa", "password-new-e3b9", "AgBy3sealed-after-0d9f", "PLACEHOLDER-NOT-ENCRYPTED"]
    values += [base64.b64encode(v.encode()).decode() for v in values]
    outputs = {fmt: diff(repo, "--format", fmt) for fmt in FORMATS}
    for fmt, result in outputs.items():
        assert result.exit_code == 0, result.output
        leaked = [v for v in values if v in result.output]
        assert leaked == [], f"{fmt} output shows secret values"
    data = json.loads(outputs["json"].output)
    changes = {(o["change"], o["kind"], o["name"]): o["diff"] for c in data["clusters"] for e in c["entrypoints"] for o in e["objects"]}
    assert set(changes) == {("changed", "Secret", "planted"), ("added", "Secret", "fresh"), ("changed", "SealedSecret", APP)}
    assert sorted(diff_lines(changes["changed", "Secret", "planted"])) == [
        "+  password: '<masked: changed>'", "+  token: '<masked: changed>'",
        "-  password: <masked>", "-  token: <masked>"]
    assert diff_lines(changes["changed", "SealedSecret", APP]) == [
        "-    placeholder: <masked>", "+    placeholder: '<masked: changed>'"]
    assert "<masked: changed>" in outputs["text"].output and "<masked: changed>" in outputs["markdown"].output


def test_markdown_is_one_comment_with_a_section_per_cluster(repo):
    set_tag(repo, "staging", "6.8.0", commit=False)
    set_tag(repo, "dev", "6.8.0", commit=False)
    result = diff(repo, "--format", "markdown")
    assert result.exit_code == 0
    text = result.output
    assert text.splitlines()[0] == MARKER
    touched = clusters_of(repo, "dev") + clusters_of(repo, "staging")
    assert f"clusters touched: {', '.join(sorted(touched))}." in text
    sections = re.findall(r"<details><summary><b>([^<]+)</b>: ([^<]+)</summary>(.*?)</details>", text, re.S)
    assert [name for name, _, _ in sections] == sorted(touched)
    for name, counts, body in sections:
        assert counts == "1 changed"
        env = "dev" if name in clusters_of(repo, "dev") else "staging"
        assert f"#### `apps/{env}/{APP}`" in body and f"- **changed** `Deployment dev-team/{APP}`" in body
        assert body.count("```diff") == 1 and body.count("```") == 2
        assert "+      - image: ghcr.io/stefanprodan/podinfo:6.8.0" in body
    assert text.count("<details>") == text.count("</details>") == len(touched)


def test_markdown_past_the_size_limit_keeps_the_totals(repo):
    for env in ("dev", "staging", "prod"):
        set_tag(repo, env, "6.8.0", commit=False)
    report = diff_repo(repo)
    full = format_markdown(report)
    assert full.count("```diff") == 3
    small = format_markdown(report, limit=len(full) - 200)
    assert len(small) <= len(full) - 200
    assert "3 changed, 0 added, 0 removed object(s)" in small
    assert small.count("```diff") < 3 and "diff left out" in small
    tiny = format_markdown(report, limit=600)
    assert "3 changed, 0 added, 0 removed object(s)" in tiny and "more object change(s) not listed" in tiny
    assert tiny.count("<details>") == tiny.count("</details>")


def test_exit_code_and_an_unchanged_tree(repo):
    clean = diff(repo, "--exit-code")
    assert clean.exit_code == 0 and "No rendered object changes." in clean.output
    data = json.loads(diff(repo, "--format", "json").output)
    assert data["changed"] is False and data["clusters"] == [] and data["entrypoints"]["rendered"] == 0
    # A change outside every entrypoint (docs) changes no object.
    (repo / "docs/promotion.md").write_text("edited\n")
    assert diff(repo, "--exit-code").exit_code == 0
    set_tag(repo, "prod", "6.8.0", commit=False)
    changed = diff(repo, "--exit-code")
    assert changed.exit_code == 1 and f"apps/prod/{APP}" in changed.output
    assert diff(repo).exit_code == 0


@pytest.mark.parametrize("args, message", [
    (["--base", "no-such-ref"], "'no-such-ref' is not a commit of this repository"),
    (["--format", "html"], "--format must be one of text, markdown, json, not 'html'."),
])
def test_bad_input_is_one_sentence_and_exit_2(repo, args, message):
    result = diff(repo, *args)
    assert result.exit_code == 2 and message in result.output


def test_outside_git_is_refused(tmp_path):
    result = diff(tmp_path)
    assert result.exit_code == 2 and "is not inside a git repository" in result.output


def test_an_app_removed_from_an_environment_is_reported_removed_in_its_clusters(repo, engine):
    git(repo, "rm", "-rq", f"apps/staging/{APP}", f"apps/staging/deploy-{APP}.yaml")
    listing = repo / "apps/staging/kustomization.yaml"
    listing.write_text(listing.read_text().replace(f"  - deploy-{APP}.yaml\n", ""))
    data = json.loads(diff(repo, "--format", "json").output)
    assert sorted({c["name"] for c in data["clusters"]}) == clusters_of(repo, "staging")
    found = flat(data)
    assert {change for _, _, change, *_ in found} == {"removed"}
    removed = {(path, kind, name) for _, path, _, kind, _, name in found}
    assert {(f"apps/staging/{APP}", "Deployment", APP), (f"apps/staging/{APP}", "Service", APP)} <= removed
    if engine == "flux":
        assert {path for path, _, _ in removed} == {"apps/staging", f"apps/staging/{APP}"}
        assert ("apps/staging", "Kustomization", APP) in removed
    else:  # the only app gone, apps/staging lists nothing and does not build: reported, not compared
        assert {path for path, _, _ in removed} == {f"apps/staging/{APP}"}
        assert [(e["revision"], e["entrypoint"]) for e in data["errors"]] == [("head", "apps/staging")]


def _flux_kustomization(name: str, path: str) -> str:
    return f"""apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
  interval: 10m
  path: {path}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def committed_repo(repo, files: dict[str, str]) -> None:
    """A git repository at `repo` with `files` (path: text) in its one commit."""
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "fleet")


def test_a_build_two_tenants_declare_alike_is_reported_under_both_clusters(tmp_path, isolated_user):
    """Discovery merges identical declarations into one entrypoint; diff still follows each of them up to its
    cluster (hand-written Flux repo: each cluster's tenant directory declares the same shared app)."""
    repo = tmp_path / "fleet"
    files = {"shared/app/kustomization.yaml": "resources:\n  - configmap.yaml\n",
             "shared/app/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: default\n"
                                          "data:\n  colour: blue\n"}
    for cluster in ("east", "west"):
        files[f"clusters/{cluster}/tenants.yaml"] = _flux_kustomization("tenants", f"./tenants/{cluster}")
        files[f"tenants/{cluster}/app.yaml"] = _flux_kustomization("shared-app", "./shared/app")
    committed_repo(repo, files)
    (repo / "shared/app/configmap.yaml").write_text(files["shared/app/configmap.yaml"].replace("blue", "green"))
    data = json.loads(diff(repo, "--format", "json").output)
    assert flat(data) == [(cluster, "shared/app", "changed", "ConfigMap", "default", "shared") for cluster in ("east", "west")]


def test_a_base_build_reading_a_file_of_another_directory_is_compared(tmp_path, isolated_user):
    """The base is checked out only as far as its builds seem to read it; a patch named from another directory
    (Flux builds without kustomize's load restrictions) is found all the same (hand-written Flux repo)."""
    repo = tmp_path / "fleet"
    deployment = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n"
                  "  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n"
                  "      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n"
                  "          image: nginx:1.27.0\n")
    files = {"app/kustomization.yaml": "resources:\n  - deployment.yaml\npatches:\n  - path: ../patches/replicas.yaml\n",
             "app/deployment.yaml": deployment,
             "patches/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\n"
                                      "spec:\n  replicas: 3\n",
             "clusters/east/app.yaml": _flux_kustomization("app", "./app")}
    committed_repo(repo, files)
    (repo / "app/deployment.yaml").write_text(deployment.replace("1.27.0", "1.27.1"))
    data = json.loads(diff(repo, "--format", "json").output)
    assert data["errors"] == []
    assert flat(data) == [("east", "app", "changed", "Deployment", "default", "web")]
    (obj,) = data["clusters"][0]["entrypoints"][0]["objects"]
    assert diff_lines(obj["diff"]) == ["-      - image: nginx:1.27.0", "+      - image: nginx:1.27.1"]
