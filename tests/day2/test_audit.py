"""audit: a generated repo passes every check; each check fails on a repo changed to break exactly it; repos shaped
like the reference layouts score lower, for reasons that are true of them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.audit import CHECKS, audit
from generator.cli import app
from generator.validate import validate_repo
from tests.generated.variants import generate

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE_SHAPED = [
    Path(__file__).parents[1] / "validate" / "fixtures" / "flux2-kustomize-helm-example",
    FIXTURES / "flux2-multi-tenancy",
    FIXTURES / "argocd-app-of-apps",
    FIXTURES / "argocd-helm-app-of-apps",  # argocd-example-apps' shape
]


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


def _drop(repo: Path, app_file: str) -> None:
    (repo / "apps/base/podinfo" / app_file).unlink()
    _edit(repo / "apps/base/podinfo/kustomization.yaml", f"  - {app_file}\n", "")


def _no_markdown(repo: Path) -> None:
    for page in repo.rglob("*.md"):
        page.unlink()


def _all_clusters(repo: Path, name: str, old: str, new: str) -> None:
    for path in sorted(repo.glob(f"clusters/*/{name}")):
        _edit(path, old, new, count=-1)


PLAINTEXT = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\nstringData:\n  token: hunter2\n"

# check id -> how a generated (flux, defaults) repo is changed to break exactly that check
BREAK = {
    "AU101": lambda r: _edit(r / "apps/base/podinfo/kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - missing.yaml\n"),
    "AU102": lambda r: [shutil.rmtree(p) for p in [r / "apps/base"]] and None or _edit_overlays(r),
    "AU103": lambda r: [p.write_text(re.sub(r"  dependsOn:\n(    (- |# ).*\n(      .*\n)*)+", "", p.read_text()))
                        for p in sorted(r.rglob("*.yaml")) if "  dependsOn:" in p.read_text()],
    "AU201": lambda r: _edit(r / "apps/base/podinfo/deployment.yaml", "runAsNonRoot: true", "runAsNonRoot: false", count=-1),
    "AU202": lambda r: _edit(r / "tenants/base/dev-team/namespace.yaml", "    pod-security.kubernetes.io/enforce: restricted\n", ""),
    "AU203": lambda r: _add_secret(r),
    "AU204": lambda r: [p.unlink() for p in r.rglob("*.yaml") if "kind: NetworkPolicy" in p.read_text() and "dev-team" in str(p) + p.read_text()]
                       and _scrub_resources(r),
    "AU205": lambda r: [_edit(p, "  serviceAccountName: dev-team\n", "") for p in sorted(r.glob("apps/*/deploy-podinfo.yaml"))],
    "AU301": lambda r: _edit(r / "apps/base/podinfo/deployment.yaml", "readinessProbe:", "readinessCheck:"),
    "AU302": lambda r: _drop(r, "pdb.yaml"),
    "AU303": lambda r: _all_clusters(r, "apps.yaml", "prune: true", "prune: false"),
    "AU304": lambda r: _all_clusters(r, "apps.yaml", "  wait: true\n", ""),
    "AU401": lambda r: [p.unlink() for p in r.rglob("*.yaml") if re.search(r"^kind: (ServiceMonitor|PodMonitor)$", p.read_text(), re.M)]
                       and _scrub_resources(r),
    "AU402": lambda r: [p.unlink() for p in r.rglob("*.yaml") if re.search(r"^kind: PrometheusRule$", p.read_text(), re.M)]
                       and _scrub_resources(r)
                       or _edit(r / "infrastructure/controllers/kube-prometheus-stack/helmrelease.yaml", "\n  values:\n",
                                "\n  values:\n    defaultRules:\n      create: false\n"),
    "AU403": lambda r: [p.unlink() for p in r.rglob("*.yaml") if re.search(r"^kind: (AlertmanagerConfig|Provider|Alert)$", p.read_text(), re.M)]
                       and _scrub_resources(r),
    "AU501": lambda r: _scrub_words(r, ("rollback", "roll back")),
    "AU502": lambda r: _scrub_words(r, ("disaster recovery", "disaster-recovery")),
    "AU503": lambda r: _scrub_words(r, ("rotate", "rotation")),
    "AU504": lambda r: _scrub_words(r, ("onboarding", "add a team", "new team")),
    "AU601": lambda r: (r / ".github/workflows/validate.yaml").unlink(),
    "AU602": lambda r: (r / "renovate.json").unlink(),
    "AU603": lambda r: (r / ".copier-answers.yml").unlink(),
}


def _add_secret(repo: Path) -> None:
    (repo / "apps/base/podinfo/token.yaml").write_text(PLAINTEXT)
    _edit(repo / "apps/base/podinfo/kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - token.yaml\n")


def _edit_overlays(repo: Path) -> None:
    """Without bases, the overlays point at manifests of their own (the repo still builds)."""
    for kfile in repo.glob("apps/*/podinfo/kustomization.yaml"):
        kfile.write_text("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n")
    for source in repo.glob("apps/*/source-dev-team.yaml"):
        _edit(source, "    - apps/base/podinfo\n", "")


def _scrub_resources(repo: Path) -> None:
    """Take deleted files out of the kustomizations that list them."""
    for kfile in repo.rglob("kustomization.yaml"):
        lines = kfile.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not (re.match(r"^\s+- [\w./-]+\.ya?ml\s*$", line)
                                               and not (kfile.parent / line.strip()[2:]).exists())]
        kfile.write_text("".join(kept))
    # A kustomization left without resources is taken out with its directory.
    for kfile in sorted(repo.rglob("kustomization.yaml"), key=lambda p: -len(p.parts)):
        if kfile.exists() and re.search(r"^resources:\s*\Z", kfile.read_text(), re.M):
            shutil.rmtree(kfile.parent)
            parent = kfile.parent.parent / "kustomization.yaml"
            if parent.exists():
                _edit(parent, f"  - {kfile.parent.name}\n", "")


def _scrub_words(repo: Path, words: tuple[str, ...]) -> None:
    for page in repo.rglob("*.md"):
        text = page.read_text()
        for word in words:
            text = re.sub(re.escape(word), "x", text, flags=re.IGNORECASE)
        page.write_text(text)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate(tmp_path_factory, {}).repo


def _failing(repo: Path) -> set[str]:
    return {r.id for r in audit(repo).results if not r.passed}


def test_every_check_has_a_breaking_change():
    assert sorted(BREAK) == sorted(id for id, *_ in CHECKS)


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_generated_repo_passes_every_check(tmp_path_factory, engine):
    repo = generate(tmp_path_factory, {"engine": engine}).repo
    card = audit(repo)
    assert [(r.id, r.evidence) for r in card.results if not r.passed] == []
    assert card.score == 100


@pytest.mark.parametrize("check_id", sorted(BREAK))
def test_each_check_fails_on_the_repo_that_breaks_it(generated, tmp_path, check_id):
    repo = tmp_path / "repo"
    shutil.copytree(generated, repo)
    BREAK[check_id](repo)
    assert _failing(repo) == {check_id}
    result = next(r for r in audit(repo).results if r.id == check_id)
    assert result.evidence and result.fix


@pytest.mark.parametrize("reference", REFERENCE_SHAPED, ids=lambda p: p.name)
def test_reference_shaped_repos_score_lower_for_true_reasons(generated, reference):
    card = audit(reference)
    assert card.score < audit(generated).score
    failing = {r.id for r in card.results if not r.passed}
    # None of them has CI validation, runbooks or an answers file; each is checked for what it is.
    assert {"AU501", "AU502", "AU601", "AU603"} <= failing
    assert "AU101" not in failing  # every entrypoint of these layouts builds


def test_cli_formats_and_min_score():
    fixture = str(REFERENCE_SHAPED[2])
    as_json = json.loads(runner.invoke(app, ["audit", fixture, "--format", "json"]).output)
    assert set(as_json["areas"]) == {"organisation", "security", "reliability", "monitoring", "documentation", "ci"}
    assert as_json["checks"][0].keys() >= {"id", "weight", "evidence", "fix", "passed"}
    sarif = json.loads(runner.invoke(app, ["audit", fixture, "--format", "sarif"]).output)
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    markdown = runner.invoke(app, ["audit", fixture, "--format", "markdown"]).output
    assert markdown.startswith("# Audit of") and "## Security" in markdown
    low = runner.invoke(app, ["audit", fixture, "--min-score", "90"])
    assert low.exit_code == 1
    assert runner.invoke(app, ["audit", fixture, "--min-score", "0"]).exit_code == 0
    bad = runner.invoke(app, ["audit", fixture, "--format", "xml"])
    assert bad.exit_code == 2 and "--format" in bad.output


def test_resourceset_templates_and_chart_default_rules_are_seen(tmp_path):
    shapes = Path(__file__).parents[1] / "validate" / "fixtures" / "real-repo-shapes"
    psa = next(r for r in audit(shapes).results if r.id == "AU202")
    # The Namespace the ResourceSet creates per tenant is judged like any other.
    assert not psa.passed and psa.evidence == ["clusters/production/flux-operator.yaml: Namespace << inputs.tenant >> — no pod-security enforce label"]

    repo = tmp_path / "repo"
    (repo / "monitoring").mkdir(parents=True)
    release = ("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: kube-prometheus-stack\n  namespace: monitoring\n"
               "spec:\n  interval: 1h\n  chartRef:\n    kind: OCIRepository\n    name: kube-prometheus-stack\n")
    (repo / "monitoring/release.yaml").write_text(release)
    (repo / "monitoring/kustomization.yaml").write_text("resources:\n  - release.yaml\n")
    assert next(r for r in audit(repo).results if r.id == "AU402").passed
    (repo / "monitoring/release.yaml").write_text(release + "  values:\n    defaultRules:\n      create: false\n")
    assert not next(r for r in audit(repo).results if r.id == "AU402").passed


def _result(repo: Path, check_id: str):
    return next(r for r in audit(repo).results if r.id == check_id)


def test_tenant_branch_of_this_repository_is_not_built_when_the_bootstrap_sync_is_not_committed(tmp_path, schema_locations):
    # flux2-multi-tenancy as published: gotk-sync.yaml is flux bootstrap's placeholder, and the tenant's
    # GitRepository is this repository's `dev-team` branch, its Kustomization without a path (that branch's root).
    repo = tmp_path / "flux2-multi-tenancy"
    shutil.copytree(FIXTURES / "flux2-multi-tenancy", repo)
    for sync in repo.glob("clusters/*/flux-system/gotk-sync.yaml"):
        sync.write_text("# This file will be generated automatically by flux boostrap.\n")
    _edit(repo / "tenants/base/dev-team/sync.yaml", "url: https://github.com/example/flux2-multi-tenancy-dev-team\n  ref:\n    branch: main",
          "url: https://github.com/example/flux2-multi-tenancy\n  ref:\n    branch: dev-team")
    builds, ordered = _result(repo, "AU101"), _result(repo, "AU103")
    assert builds.passed, builds.evidence  # the root of this checkout is not what the tenant applies
    assert ordered.passed and ordered.evidence  # so the clusters' dependsOn chain is seen
    # validate agrees: the tenant's `./staging` and `./production` are paths of the dev-team branch, not of this tree.
    report = validate_repo(repo, schema_locations=schema_locations, schema_catalog="")
    assert [f.check for f in report.findings if f.check in ("GF101", "GF203")] == [] and report.render_errors == []

    # A tenant GitRepository on main is this tree (Flux syncs the default branch): its path is built from here.
    _edit(repo / "tenants/base/dev-team/sync.yaml", "branch: dev-team", "branch: main")
    _edit(repo / "tenants/base/dev-team/sync.yaml", "  prune: true", "  path: ./tenants/missing\n  prune: true")
    assert not _result(repo, "AU101").passed


def test_ci_validation_through_flux_schema_or_a_validation_script(tmp_path):
    helm_example = Path(__file__).parents[1] / "validate" / "fixtures" / "flux2-kustomize-helm-example"
    repo = tmp_path / "repo"
    shutil.copytree(helm_example, repo)
    workflows = repo / ".github/workflows"
    workflows.mkdir(parents=True)
    # flux2-kustomize-helm-example: an end-to-end run on kind does not validate the manifests on a pull request...
    (workflows / "e2e.yaml").write_text("on: push\njobs:\n  e2e:\n    runs-on: ubuntu-latest\n    steps:\n"
                                        "      - run: flux install\n")
    assert not _result(repo, "AU601").passed
    # ...its test workflow does, with the Flux Schema action.
    (workflows / "test.yaml").write_text("on: pull_request\njobs:\n  manifests:\n    runs-on: ubuntu-latest\n    steps:\n"
                                         "      - uses: fluxcd/flux-schema/actions/validate@main\n        with:\n          path: '.'\n")
    assert _result(repo, "AU601").evidence == [".github/workflows/test.yaml"]
    # flux2-multi-tenancy, flux2-monitoring-example: the workflow runs the repo's script, the script validates.
    (workflows / "test.yaml").write_text("on: pull_request\njobs:\n  manifests:\n    runs-on: ubuntu-latest\n    steps:\n"
                                         "      - run: ./scripts/validate.sh\n")
    assert not _result(repo, "AU601").passed
    (repo / "scripts").mkdir()
    (repo / "scripts/validate.sh").write_text("#!/usr/bin/env bash\nkustomize build ./clusters/staging | kubeconform -strict\n")
    assert _result(repo, "AU601").evidence == [".github/workflows/test.yaml"]


def test_app_overlays_are_not_asked_of_repos_without_apps_or_with_one_environment(tmp_path):
    # flux2-multi-tenancy and d2-fleet hold no app manifests: the tenants' repositories do.
    tenancy = _result(FIXTURES / "flux2-multi-tenancy", "AU102")
    assert tenancy.passed and tenancy.evidence[0].startswith("not applicable: no app manifests")
    # flux2-monitoring-example: one cluster, nothing to overlay per environment.
    repo = tmp_path / "monitoring"
    (repo / "clusters/test").mkdir(parents=True)
    (repo / "clusters/test/monitoring.yaml").write_text(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: monitoring\n  namespace: flux-system\n"
        "spec:\n  interval: 1h\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  path: ./monitoring/configs\n")
    (repo / "monitoring/configs").mkdir(parents=True)
    (repo / "monitoring/configs/kustomization.yaml").write_text("resources:\n  - podmonitor.yaml\n")
    (repo / "monitoring/configs/podmonitor.yaml").write_text(
        "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata:\n  name: flux\n  namespace: monitoring\n"
        "spec:\n  podMetricsEndpoints:\n    - port: http-prom\n  selector:\n    matchLabels:\n      app: flux\n")
    single = _result(repo, "AU102")
    assert single.passed and single.evidence == ["not applicable: one environment or none (test)"]
    # A second cluster makes it a finding: the app manifests are not shared through a base.
    shutil.copytree(repo / "clusters/test", repo / "clusters/production")
    assert not _result(repo, "AU102").passed
