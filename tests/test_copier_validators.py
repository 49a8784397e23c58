"""copier.yml validators give users of plain `copier` the rules of generator/answers.py.

Two levels: the validators' actual Jinja text, rendered in order the way Copier
does, must agree with answers.py on a table of answers (same verdict, same
"field: rule" message); and a sample goes through real `copier.run_copy`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jinja2.sandbox import SandboxedEnvironment

from generator import answers, questions

ROOT = Path(__file__).resolve().parents[1]
COPIER_YML = ROOT / "copier.yml"
# Copier's Jinja environment: sandboxed, with the jinja2-ansible-filters extension (regex_search).
ENV = SandboxedEnvironment(extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"])


def copier_error(given: dict[str, Any]) -> str | None:
    """First validator message, asking questions in copier.yml order as Copier does."""
    specs = questions.load(COPIER_YML)
    context: dict[str, Any] = {}
    for name, spec in specs.items():
        context[name] = given[name] if name in given else questions.default_for(spec, context)
        if "choices" in spec and context[name] not in spec["choices"].values():
            return f"{name}: not a choice"
        message = ENV.from_string(spec.get("validator", "")).render(context).strip()
        if message:
            return message
    return None


def model_error(given: dict[str, Any]) -> str | None:
    try:
        answers.validate(questions.complete(given, check=answers.check_field))
    except answers.AnswersError as error:
        return str(error)
    return None


def app_item(**changes: Any) -> dict[str, Any]:
    return {"name": "web", "team": "dev-team", "image": "ghcr.io/org/web:1.0.0", "port": 8080, **changes}


def many(envs: int, apps: int) -> dict[str, Any]:
    names = ["dev", "staging", "prod", "perf", "dr"][:envs]
    return {
        "environments": names,
        "clusters": [{"name": f"{env}-1", "environment": env} for env in names],
        "teams": [{"name": "payments", "groups": ["okta:payments", "payments@example.com"]}, {"name": "search", "groups": ["search"]}],
        "apps": [
            app_item(name=f"app-{index}", team=("payments", "search")[index % 2], port=8000 + index, health_path="/healthz")
            for index in range(apps)
        ],
    }


VALID = {
    "defaults": {},
    "one-env-no-apps": many(1, 0),
    "five-envs-ten-apps": many(5, 10),
    "probes": {"apps": [app_item(health_path="/livez", ready_path="/api/ready")]},
    "numeric-tag": {"apps": [app_item(image="redis:7")]},
    "registry-port-and-digest": {"apps": [app_item(image=f"registry.example.com:5000/team/web:1.2@sha256:{'0' * 64}")]},
    "branch-with-slash": {"default_branch": "release/1.x"},
    "https-url": {"git_url": "https://gitlab.example.com:8443/group/sub/repo.git"},
    "forty-chars": {"project_name": "a" * 40},
    "monitoring-off": {"monitoring": False},
    "other-git-host-alerts-nowhere": {"git_url": "https://git.example.com/org/repo.git"},
    "alerts-to-teams": {"alerts_to": "msteams"},
    "pager-opsgenie-self-managed": {"pager": "opsgenie", "cluster_flavor": "self-managed"},
    "argocd": {"engine": "argocd"},
    "argocd-gpg": {"engine": "argocd", "verify": "gpg"},
    "sops-with-ssh-signatures": {"secrets": "sops", "verify": "ssh"},
    "gpg-signatures": {"verify": "gpg"},
    "argocd-domain-and-ha": {"engine": "argocd", "argocd_domain": "platform.acme-corp.example", "argocd_ha": True},
    "source-allowlist": {"tenant_source_allowlist": ["https://charts.example.com/", "oci://ghcr.io/acme/charts/web"]},
    "flux-bootstrap": {"flux_install": "bootstrap"},
    "flux-operator": {"flux_install": "operator"},
}

LONG = "a" * 41
INVALID = {
    "source-allowlist-not-a-list": {"tenant_source_allowlist": "https://charts.example.com/"},
    "source-allowlist-space": {"tenant_source_allowlist": ["https://example.com/x || true"]},
    "source-allowlist-http": {"tenant_source_allowlist": ["http://charts.example.com/"]},
    "source-allowlist-twice": {"tenant_source_allowlist": ["oci://ghcr.io/a/", "oci://ghcr.io/a/"]},
    "source-allowlist-argocd": {"engine": "argocd", "tenant_source_allowlist": ["oci://ghcr.io/a/"]},
    "project-not-dns": {"project_name": "Bad_Name"},
    "project-too-long": {"project_name": LONG},
    "project-slash": {"project_name": "a/b"},
    "git-url-scp": {"git_url": "git@github.com:org/repo.git"},
    "git-url-jinja": {"git_url": "https://github.com/org/{{ x }}.git"},
    "git-url-newline": {"git_url": "https://github.com/org/repo.git\n"},
    "branch-dotdot": {"default_branch": "feature..x"},
    "branch-space": {"default_branch": "a b"},
    "branch-dash": {"default_branch": "-x"},
    "branch-lock": {"default_branch": "x.lock"},
    "branch-trailing-slash": {"default_branch": "x/"},
    "branch-comma": {"default_branch": "a,b"},
    "branch-hash": {"default_branch": "a#b"},
    "engine": {"engine": "jenkins"},
    "argocd-sops": {"engine": "argocd", "secrets": "sops"},
    "argocd-ssh-signatures": {"engine": "argocd", "verify": "ssh"},
    "envs-empty": {"environments": []},
    "envs-string": {"environments": "dev"},
    "env-not-dns": {"environments": ["dev", "Prod"]},
    "env-too-long": {"environments": [LONG]},
    "env-duplicate": {"environments": ["dev", "dev"]},
    "env-reserved": {"environments": ["dev", "monitoring"]},
    "env-not-string": {"environments": ["dev", 5]},
    "env-trailing-newline": {"environments": ["dev\n"]},
    "env-jinja": {"environments": ["{{ x }}"]},
    "cluster-env-missing": {"clusters": [{"name": "eu", "environment": "qa"}]},
    "cluster-missing-key": {"clusters": [{"name": "eu"}]},
    "cluster-unknown-key": {"clusters": [{"name": "eu", "environment": "dev", "region": "eu"}]},
    "cluster-duplicate": {"clusters": [{"name": "eu", "environment": "dev"}, {"name": "eu", "environment": "prod"}]},
    "cluster-not-mapping": {"clusters": ["eu"]},
    "clusters-empty": {"clusters": []},
    "teams-empty": {"teams": []},
    "team-not-dns": {"teams": [{"name": "Team", "groups": ["g"]}]},
    "team-reserved-env-name": {"teams": [{"name": "dev", "groups": ["g"]}]},
    "team-duplicate": {"teams": [{"name": "t", "groups": ["a"]}, {"name": "t", "groups": ["b"]}]},
    "team-no-groups": {"teams": [{"name": "t", "groups": []}]},
    "team-group-hash": {"teams": [{"name": "t", "groups": ["ok", "a#b"]}]},
    "team-group-colon-space": {"teams": [{"name": "t", "groups": ["a: b"]}]},
    "team-unknown-key": {"teams": [{"name": "t", "groups": ["g"], "quota": 1}]},
    "apps-mapping": {"apps": {"name": "web"}},
    "app-not-dns": {"apps": [app_item(name="Web")]},
    "app-too-long": {"apps": [app_item(name=LONG)]},
    "app-team-missing": {"apps": [app_item(team="ghost")]},
    "app-duplicate": {"apps": [app_item(), app_item(port=9090)]},
    "app-unknown-key": {"apps": [app_item(replicas=2)]},
    "app-missing-key": {"apps": [{"name": "web", "team": "dev-team", "image": "x:1"}]},
    "image-no-tag": {"apps": [app_item(image="nginx")]},
    "image-digest-only": {"apps": [app_item(image=f"nginx@sha256:{'0' * 64}")]},
    "image-registry-port-no-tag": {"apps": [app_item(image="registry.example.com:5000/web")]},
    "image-latest": {"apps": [app_item(image="nginx:latest")]},
    "image-uppercase": {"apps": [app_item(image="Nginx:1")]},
    "port-0": {"apps": [app_item(port=0)]},
    "port-65536": {"apps": [app_item(port=65536)]},
    "port-string": {"apps": [app_item(port="http")]},
    "port-bool": {"apps": [app_item(port=True)]},
    "health-path-relative": {"apps": [app_item(health_path="healthz")]},
    "ready-path-jinja": {"apps": [app_item(ready_path="/{{ x }}")]},
    "ci-unknown": {"ci": "jenkins"},
    "secrets-unknown": {"secrets": "vault"},
    "verify-unknown": {"verify": "cosign"},
    "flux-install-unknown": {"flux_install": "helm"},
    "monitoring-not-bool": {"monitoring": "maybe"},
    "alerts-unknown": {"alerts_to": "pager"},
    "alerts-without-monitoring": {"monitoring": False, "alerts_to": "slack"},
    "commit-status-unknown-host": {"git_url": "https://git.example.com/org/repo.git", "alerts_to": "github-status"},
    "pager-unknown": {"pager": "victorops"},
    "pager-none-with-production": {"alerts_to": "github-status", "pager": "none"},
    "pager-none-named-prod-first": {"environments": ["prod", "dr"], "clusters": [{"name": "p1", "environment": "prod"}], "pager": "none"},
    "pager-without-monitoring": {"monitoring": False, "alerts_to": "none", "pager": "opsgenie"},
    "cluster-flavor-unknown": {"cluster_flavor": "eks"},
    "argocd-domain-not-dns": {"engine": "argocd", "argocd_domain": "Argo_CD.example"},
    "argocd-domain-one-label": {"engine": "argocd", "argocd_domain": "localhost"},
    "argocd-domain-url": {"engine": "argocd", "argocd_domain": "https://argocd.example.org"},
    "argocd-domain-too-long": {"engine": "argocd", "argocd_domain": ".".join(["a" * 40] * 5) + ".org"},
    "argocd-ha-not-bool": {"engine": "argocd", "argocd_ha": "maybe"},
}

# Cases where answers.py names a more specific rule (metacharacters, path
# separators) than the validator's regex; both still name the same field.
SAME_FIELD_ONLY = {
    "project-slash",
    "git-url-jinja",
    "git-url-newline",
    "branch-hash",
    "env-trailing-newline",
    "env-jinja",
    "team-group-hash",
    "team-group-colon-space",
    "port-string",
    "ready-path-jinja",
    "engine",  # Copier's own choices check answers before any validator
    "ci-unknown",  # likewise
    "alerts-unknown",  # likewise
    "secrets-unknown",  # likewise
    "verify-unknown",  # likewise
    "pager-unknown",  # likewise
    "cluster-flavor-unknown",  # likewise
    "flux-install-unknown",  # likewise
}


@pytest.mark.parametrize("given", VALID.values(), ids=VALID.keys())
def test_valid_answers_pass_both(given: dict[str, Any]) -> None:
    assert model_error(given) is None
    assert copier_error(given) is None


@pytest.mark.parametrize("case", INVALID)
def test_invalid_answers_fail_both_with_the_same_message(case: str) -> None:
    given = INVALID[case]
    expected, got = model_error(given), copier_error(given)
    assert expected is not None and got is not None, (expected, got)
    assert got.split(": ", 1)[0] == expected.split(": ", 1)[0]
    if case not in SAME_FIELD_ONLY:
        assert got == expected


def test_every_validator_is_folded_multiline_jinja() -> None:
    specs = questions.load(COPIER_YML)
    with_validator = [name for name, spec in specs.items() if "validator" in spec]
    assert set(with_validator) == set(specs) - {"engine"}  # engine is checked by its choices
    assert COPIER_YML.read_text().count("validator: >-") == len(with_validator)


def test_reserved_names_match_the_model() -> None:
    for name in sorted(answers.RESERVED):
        assert copier_error({"environments": ["dev", name]}) == f"environments[1]: '{name}' is reserved; choose another name"
        assert copier_error({"apps": [app_item(name=name)]}) == f"apps[0].name: '{name}' is reserved; choose another name"


# --- real Copier ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory) -> Path:
    """copier.yml of this checkout plus a one-file template, committed (Copier reads git sources)."""
    repo = tmp_path_factory.mktemp("template")
    shutil.copy(COPIER_YML, repo / "copier.yml")
    (repo / "template").mkdir()
    (repo / "template" / "README.md.jinja").write_text("{{ project_name }}\n")
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    for args in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-qm", "template"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def run_copier(template_repo: Path, destination: Path, data: dict[str, Any]) -> None:
    import copier

    copier.run_copy(
        str(template_repo),
        str(destination),
        data=data,
        defaults=True,
        pretend=True,
        quiet=True,
        vcs_ref="HEAD",
        settings=copier.Settings(),
    )


def test_copier_accepts_defaults_and_a_large_valid_set(template_repo, tmp_path) -> None:
    run_copier(template_repo, tmp_path / "a", {})
    run_copier(template_repo, tmp_path / "b", {**many(5, 10), "default_branch": "release/1.x"})
    assert not (tmp_path / "a").exists()  # pretend


COPIER_SAMPLE = [
    "project-not-dns",
    "branch-dotdot",
    "env-duplicate",
    "cluster-env-missing",
    "team-group-hash",
    "app-team-missing",
    "app-unknown-key",
    "image-latest",
    "image-no-tag",
    "port-bool",
]


@pytest.mark.parametrize("case", COPIER_SAMPLE)
def test_copier_refuses_bad_answers(template_repo, tmp_path, case: str) -> None:
    given = INVALID[case]
    field = next(iter(given))
    with pytest.raises(ValueError) as caught:
        run_copier(template_repo, tmp_path / "out", given)
    message = str(caught.value)
    assert message == f"Validation error for question '{field}': {copier_error(given)}"
    assert message.split(": ", 1)[1].split(": ", 1)[0] == model_error(given).split(": ", 1)[0]


def test_copier_parses_yaml_data_strings_like_the_cli(template_repo, tmp_path) -> None:
    """`copier copy --data apps=...` passes YAML text; the validators see the parsed list."""
    text = json.dumps([app_item(port=0)])
    assert yaml.safe_load(text)[0]["port"] == 0
    with pytest.raises(ValueError, match=r"apps\[0\]\.port: 0 must be a port number between 1 and 65535"):
        run_copier(template_repo, tmp_path / "out", {"apps": text})


def test_ci_validator_agrees_with_the_model_behind_copiers_choice_check() -> None:
    """Copier checks `choices` first; the validator still guards answers files edited by hand."""
    validator = questions.load(COPIER_YML)["ci"]["validator"]
    for value in ("github", "gitlab", "none"):
        assert ENV.from_string(validator).render(ci=value).strip() == ""
    assert ENV.from_string(validator).render(ci="jenkins").strip() == model_error({"ci": "jenkins"})


@pytest.mark.parametrize(
    ("name", "values", "bad"),
    [
        ("secrets", ("sealed-secrets", "sops"), "vault"),
        ("verify", ("none", "gpg", "ssh"), "cosign"),
        ("cluster_flavor", ("managed", "self-managed"), "eks"),
        ("flux_install", ("operator", "bootstrap"), "helm"),
    ],
)
def test_choice_validators_agree_with_the_model(name: str, values: tuple[str, ...], bad: str) -> None:
    """Like `ci`: Copier checks `choices` first, the validator guards hand-edited answers files."""
    validator = questions.load(COPIER_YML)[name]["validator"]
    for value in values:
        assert ENV.from_string(validator).render({name: value}).strip() == ""
    assert ENV.from_string(validator).render({name: bad}).strip() == model_error({name: bad})
