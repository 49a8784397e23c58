"""The answers model (generator.answers) and answer edits (generator.changes), without Copier."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import pytest

from generator import answers, changes, questions
from generator.answers import AnswersError

ENV_NAMES = ["dev", "staging", "prod", "perf", "dr"]


def make_answers(envs: int = 3, apps: int = 1, **app_extra: Any) -> dict[str, Any]:
    environments = ENV_NAMES[:envs]
    return {
        "project_name": "platform-gitops",
        "git_url": "ssh://git@github.com/example-org/platform-gitops.git",
        "default_branch": "main",
        "engine": "flux",
        "environments": environments,
        "clusters": [{"name": f"{env}-eu-1", "environment": env} for env in environments],
        "teams": [{"name": "payments", "groups": ["okta:payments"]}, {"name": "search", "groups": ["search@example.com"]}],
        "apps": [
            {"name": f"app-{index}", "team": ("payments", "search")[index % 2], "image": f"ghcr.io/org/app-{index}:1.{index}.0", "port": 8080 + index, **app_extra}
            for index in range(apps)
        ],
        "flux_install": "operator",
        "secrets": "sealed-secrets",
        "verify": "none",
        "tenant_source_allowlist": [],
        "monitoring": True,
        "alerts_to": "github-status",
        "pager": "pagerduty",
        "cluster_flavor": "managed",
        "ci": "github",
    }


def error_of(value: dict[str, Any]) -> str:
    with pytest.raises(AnswersError) as caught:
        answers.validate(value)
    return str(caught.value)


# --- valid variants -------------------------------------------------------------------------------


@pytest.mark.parametrize("envs", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("apps", [0, 1, 3, 10])
def test_valid_variants(envs: int, apps: int) -> None:
    value = make_answers(envs, apps)
    assert answers.validate(value) == value


@pytest.mark.parametrize(
    "extra",
    [{}, {"health_path": "/healthz"}, {"ready_path": "/readyz"}, {"health_path": "/live", "ready_path": "/api/v1/ready"}],
    ids=["no-probes", "health", "ready", "both"],
)
def test_optional_probe_paths(extra: dict[str, str]) -> None:
    answers.validate(make_answers(apps=2, **extra))


@pytest.mark.parametrize(
    "image",
    ["nginx:1.27", "redis:7", "ghcr.io/org/app:v1.2.3", "registry.example.com:5000/team/app:2024-01-01", f"nginx:1.27@sha256:{'a' * 64}"],
)
def test_pinned_images_are_accepted(image: str) -> None:
    value = make_answers()
    value["apps"][0]["image"] = image
    answers.validate(value)


@pytest.mark.parametrize("branch", ["main", "trunk", "release/1.x", "feature/JIRA-12_fix"])
def test_branch_names_are_accepted(branch: str) -> None:
    answers.validate({**make_answers(), "default_branch": branch})


def test_defaults_of_copier_yml_are_valid() -> None:
    completed = questions.complete({}, check=answers.check_field)
    assert answers.validate(completed)["environments"] == ["dev", "staging", "prod"]


def test_every_known_answer_has_checks_in_copier_order() -> None:
    assert tuple(answers._FIELD_CHECKS) == answers.KNOWN
    assert tuple(questions.load()) == answers.KNOWN


# --- invalid answers ------------------------------------------------------------------------------


def _set(path: str, value: Any):
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_set("project_name", "Platform"), "project_name: 'Platform' must be a DNS-1123 label"),
        (_set("environments", []), "environments: must be a non-empty list"),
        (_set("environments", ["dev", "dev", "prod"]), "environments: 'dev' appears more than once"),
        (_set("clusters.0.environment", "qa"), "clusters[0].environment: 'qa' is not one of the environments"),
        (_set("apps.0.team", "ghost"), "apps[0].team: 'ghost' is not one of the teams (payments, search)"),
        (_set("apps.0.image", "nginx:latest"), "apps[0].image: 'nginx:latest' uses ':latest'"),
        (_set("apps.0.image", "registry.example.com:5000/app"), "apps[0].image: 'registry.example.com:5000/app' has no tag"),
        (_set("apps.0.port", 65536), "apps[0].port: 65536 must be a port number between 1 and 65535"),
        (_set("apps.0.health_path", "healthz"), "apps[0].health_path: 'healthz' must be an HTTP path"),
        (_set("teams.0.name", "dev"), "teams[0].name: 'dev' is reserved"),
        (_set("teams.0.groups", []), "teams[0].groups: must be a non-empty list"),
        (_set("default_branch", "a,b"), "default_branch: 'a,b' is not a valid git branch name"),
        (_set("git_url", "git@github.com:org/repo.git"), "git_url: 'git@github.com:org/repo.git' must be an https:// or ssh:// URL"),
        (_set("environments", ["dev", "base"]), "environments[1]: 'base' is reserved"),
        (_set("apps.0.name", "a" * 41), "is 41 characters; at most 40"),
        (_set("monitoring", "maybe"), "monitoring: 'maybe' must be true or false"),
        (_set("alerts_to", "pager"), "alerts_to: 'pager' is not supported; choose one of: slack, msteams, github-status, none"),
        (_set("monitoring", False), "alerts_to: 'github-status' needs monitoring: true"),
        (_set("git_url", "https://git.example.com/org/repo.git"), "alerts_to: 'github-status' needs a git_url on a GitHub or GitLab host, not 'git.example.com'"),
        (_set("pager", "pagerdutty"), "pager: 'pagerdutty' is not supported; choose one of: pagerduty, opsgenie, none"),
        (_set("pager", "none"), "pager: 'none' leaves the critical alerts of production environment 'prod' with nobody to page; choose pagerduty or opsgenie"),
        (_set("cluster_flavor", "eks"), "cluster_flavor: 'eks' is not supported; choose one of: managed, self-managed"),
        (_set("ci", "jenkins"), "ci: 'jenkins' is not supported; choose one of: github, gitlab, none"),
        (_set("secrets", "vault"), "secrets: 'vault' is not supported; choose one of: sealed-secrets, sops"),
        (_set("verify", True), "verify: True is not supported; choose one of: none, gpg, ssh"),
    ],
)
def test_invalid_answers(edit, expected: str) -> None:
    value = make_answers(apps=1)
    edit(value)
    assert expected in error_of(value)


def test_a_pager_is_needed_with_monitoring_and_only_with_monitoring() -> None:
    """Critical alerts page: with monitoring on, a repository always has a production environment (its last
    one, plus any named prod or production) and cannot go without a pager; without monitoring there is
    nothing to page for."""
    assert answers.production_environments(["dev", "staging"]) == ["staging"]
    assert answers.production_environments(["prod", "dr"]) == ["dr", "prod"]
    for pager in ("pagerduty", "opsgenie"):
        answers.validate({**make_answers(), "pager": pager})
    answers.validate({**make_answers(), "monitoring": False, "alerts_to": "none", "pager": "none"})
    assert error_of({**make_answers(), "monitoring": False, "alerts_to": "none"}) == (
        "pager: 'pagerduty' needs monitoring: true; choose none or turn monitoring on"
    )
    for alerts_to in ("github-status", "none", "slack"):
        assert error_of({**make_answers(envs=2), "alerts_to": alerts_to, "pager": "none"}).startswith(
            "pager: 'none' leaves the critical alerts of production environment 'staging' with nobody to page"
        )


def test_missing_and_unknown_answers() -> None:
    value = make_answers()
    del value["teams"]
    assert error_of(value) == "teams: is required"
    assert error_of({**make_answers(), "enviroments": ["dev"]}).startswith("enviroments: is not a known answer")


def test_check_field_checks_in_order_before_later_defaults_render() -> None:
    # teams=[] would break the apps default ({{ teams[0].name }}); the teams rule must speak first.
    with pytest.raises(AnswersError, match=r"^teams: must be a non-empty list$"):
        questions.complete({"teams": []}, check=answers.check_field)


def test_text_data_pairs_are_verbatim_and_list_pairs_are_yaml() -> None:
    parsed = answers.parse_data_pairs(["project_name=123", "git_url={{ x }}", "environments=[dev, prod]", "apps=[]"])
    assert parsed == {"project_name": "123", "git_url": "{{ x }}", "environments": ["dev", "prod"], "apps": []}


# --- changes: add / remove ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "item", "expected"),
    [
        ("env", "dev", "env 'dev' already exists"),
        ("cluster", {"name": "dev-eu-1", "environment": "dev"}, "cluster 'dev-eu-1' already exists"),
        ("team", {"name": "payments", "groups": ["g"]}, "team 'payments' already exists"),
        ("app", {"name": "app-0", "team": "payments", "image": "x:1", "port": 80}, "app 'app-0' already exists"),
    ],
)
def test_add_refuses_duplicates(kind: str, item: Any, expected: str) -> None:
    with pytest.raises(AnswersError, match=expected):
        changes.add(make_answers(apps=1), kind, item)


def test_add_returns_only_the_changed_list_and_keeps_input() -> None:
    current = make_answers(apps=1)
    before = deepcopy(current)
    app = {"name": "billing", "team": "search", "image": "ghcr.io/org/billing:1.0.0", "port": 9000}
    changed = changes.add(current, "app", app)
    assert changed == {"apps": [*before["apps"], app]}
    assert current == before
    answers.validate({**current, **changed})


def test_add_env_then_cluster_validates() -> None:
    current = make_answers(envs=1)
    current.update(changes.add(current, "env", "qa"))
    current.update(changes.add(current, "cluster", {"name": "qa-eu-1", "environment": "qa"}))
    answers.validate(current)


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("env", "dev", "env 'dev' is used by cluster\\(s\\) dev-eu-1"),
        ("team", "payments", "team 'payments' still owns app\\(s\\) app-0, app-2"),
        ("app", "ghost", "app 'ghost' does not exist \\(existing: app-0, app-1, app-2\\)"),
        ("cluster", "ghost", "cluster 'ghost' does not exist"),
    ],
)
def test_remove_refuses_referenced_or_missing(kind: str, name: str, expected: str) -> None:
    with pytest.raises(AnswersError, match=expected):
        changes.remove(make_answers(apps=3), kind, name)


def test_remove_refuses_the_last_env_cluster_and_team() -> None:
    one = make_answers(envs=1, apps=0)
    one["teams"] = one["teams"][:1]
    with pytest.raises(AnswersError, match="cluster 'dev-eu-1' is the last cluster"):
        changes.remove(one, "cluster", "dev-eu-1")
    with pytest.raises(AnswersError, match="team 'payments' is the last team"):
        changes.remove(one, "team", "payments")
    without_clusters = {**one, "clusters": []}
    with pytest.raises(AnswersError, match="env 'dev' is the last environment"):
        changes.remove(without_clusters, "env", "dev")


def test_remove_unreferenced_items() -> None:
    current = make_answers(envs=3, apps=1)
    assert changes.remove(current, "app", "app-0") == {"apps": []}
    assert changes.remove(current, "team", "search") == {"teams": [current["teams"][0]]}
    after_cluster = {**current, **changes.remove(current, "cluster", "prod-eu-1")}
    assert changes.remove(after_cluster, "env", "prod") == {"environments": ["dev", "staging"]}
    answers.validate({**after_cluster, **changes.remove(after_cluster, "env", "prod")})
