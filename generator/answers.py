"""The answers model: what a generated repo is made of, and the rules it obeys.

Answers are the single source of truth of a generated repo. The CLI validates
them here before Copier sees them, so a mistake costs one clear sentence
instead of a traceback; copier.yml repeats the essential rules for users of
plain `copier`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from . import yaml_loader

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
GIT_URL = re.compile(r"^(https|ssh)://[A-Za-z0-9@._-]+(:[0-9]+)?/[A-Za-z0-9._/-]+$")
IDP_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:/-]{0,127}$")
# [registry[:port]/]path[:tag][@digest]; a registry port needs the '/' after it,
# so "redis:7" is the repository "redis" with the tag "7".
IMAGE = re.compile(
    r"^(?P<repository>([a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?/)?[a-z0-9]+([._-]{1,2}[a-z0-9]+)*(/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@sha256:[a-f0-9]{64})?$"
)
BRANCH_CHARS = re.compile(r"^[A-Za-z0-9._/-]+$")
HTTP_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
DNS_DOMAIN = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# argocd.<cluster>. goes in front of argocd_domain; DNS names end at 253 characters.
MAX_DOMAIN = 200
# A URL a tenant's Flux source may fetch from; it is written into a CEL string, so no quotes or spaces.
SOURCE_URL = re.compile(r"^(https|ssh|oci)://[A-Za-z0-9@._~:/-]+$")

ENGINES = ("flux", "argocd")
# How Flux is installed and upgraded: the Flux Operator with a FluxInstance, or `flux bootstrap`.
FLUX_INSTALLS = ("operator", "bootstrap")
CI_PROVIDERS = ("github", "gitlab", "none")
# How secrets are committed: SealedSecrets (kubeseal) or SOPS-encrypted Secrets (age).
SECRETS_BACKENDS = ("sealed-secrets", "sops")
# Commit signature verification of the GitRepositories: off, OpenPGP or SSH signatures.
VERIFY_MODES = ("none", "gpg", "ssh")
# Where alerts go; github-status posts deployment results as commit statuses only.
ALERT_CHANNELS = ("slack", "msteams", "github-status", "none")
# Who is paged for critical alerts; none only without monitoring.
PAGERS = ("pagerduty", "opsgenie", "none")
# managed control planes (EKS, GKE, AKS) expose no scheduler, controller-manager or etcd metrics.
CLUSTER_FLAVORS = ("managed", "self-managed")
# Environment names that mark production besides the last environment.
PRODUCTION_NAMES = ("prod", "production")
# Longest generated name is "<project>-<name>-..."; 40 leaves room for suffixes
# such as "-allow-ingress" within the 63-character label limit.
MAX_NAME = 40
# Names that would collide with a layout directory or a system namespace.
# Namespaces and directories the template creates itself, and the names of its own Argo CD
# Applications and AppProjects (one namespace holds them all, next to the per-app Applications).
RESERVED = {
    "base", "default", "flux-system", "kube-system", "kube-public", "kube-node-lease", "monitoring",
    "monitoring-node-exporter", "argocd", "platform", "root", "apps", "tenants", "infra-controllers",
    "infra-configs", "argo-cd", "sealed-secrets", "kube-prometheus-stack",
}

LIST_FIELDS = {"environments", "clusters", "teams", "apps", "tenant_source_allowlist"}
BOOL_FIELDS = {"monitoring", "argocd_ha"}
# Asked (and recorded in .copier-answers.yml) only with engine argocd, like copier.yml's `when`.
ARGOCD_ONLY = {"argocd_domain", "argocd_ha"}
# The words Copier casts to a bool answer.
_BOOL_WORDS = {**dict.fromkeys(("y", "yes", "t", "true", "on", "1"), True), **dict.fromkeys(("n", "no", "f", "false", "off", "0"), False)}
ITEM_KEYS = {
    "clusters": ({"name", "environment"}, set()),
    "teams": ({"name", "groups"}, set()),
    "apps": ({"name", "team", "image", "port"}, {"health_path", "ready_path"}),
}
KNOWN = ("project_name", "git_url", "default_branch", "engine", "flux_install", "environments", "clusters", "teams", "apps", "secrets",
         "verify", "tenant_source_allowlist", "monitoring", "alerts_to", "pager", "cluster_flavor", "ci", "argocd_domain", "argocd_ha")


class AnswersError(ValueError):
    """An answer breaks a rule. The message names the field and the rule."""


def _fail(field: str, rule: str) -> None:
    raise AnswersError(f"{field}: {rule}")


def _check_text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        _fail(field, "must be a non-empty string")
    # Answers are rendered into YAML and Jinja; these would change their meaning.
    for marker in ("{{", "}}", "{%", "%}", "{#", "#}", "#", ": ", "\n", "\r", "\t", '"', "'", "`", "\\", "$", "*", "&", "!", "|", ">", "<"):
        if marker in value:
            _fail(field, f"must not contain {marker!r} (YAML or template syntax)")
    return value


def check_name(field: str, value: Any, *, reserved: Iterable[str] = RESERVED) -> str:
    """A DNS-1123 label usable as a directory, a namespace and a resource name."""
    value = _check_text(field, value)
    if "/" in value or ".." in value:
        _fail(field, f"{value!r} must not contain path separators or '..'")
    if not DNS_LABEL.match(value):
        _fail(field, f"{value!r} must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending alphanumeric")
    if len(value) > MAX_NAME:
        _fail(field, f"{value!r} is {len(value)} characters; at most {MAX_NAME} leave room for generated suffixes")
    if value in reserved:
        _fail(field, f"{value!r} is reserved; choose another name")
    return value


def check_branch(value: Any) -> str:
    """git check-ref-format rules for a branch name, over a charset that is plain in YAML and shells."""
    value = _check_text("default_branch", value)
    bad = (
        not BRANCH_CHARS.match(value)
        or value.startswith(("-", "/", "."))
        or value.endswith(("/", ".", ".lock"))
        or any(part in value for part in ("..", "//", "@{", "~", "^", ":", "?", "[", " "))
        or any(segment.startswith(".") or segment.endswith(".lock") for segment in value.split("/"))
        or value == "@"
        or any(ord(char) < 32 or ord(char) == 127 for char in value)
    )
    if bad:
        _fail("default_branch", f"{value!r} is not a valid git branch name")
    return value


def validate_git_url(value: Any) -> str:
    value = _check_text("git_url", value)
    if not GIT_URL.match(value):
        _fail("git_url", f"{value!r} must be an https:// or ssh:// URL such as ssh://git@github.com/org/repo.git")
    return value


def check_group(field: str, value: Any) -> str:
    if not IDP_GROUP.match(_check_text(field, value)):
        _fail(field, f"{value!r} must be a group name of letters, digits and . _ @ : / -")
    return value


def check_image(field: str, value: Any) -> str:
    value = _check_text(field, value)
    match = IMAGE.match(value)
    if not match:
        _fail(field, f"{value!r} is not an image reference like registry.example.com/team/app:1.2.3")
    if not match.group("tag"):
        _fail(field, f"{value!r} has no tag; pin a version such as :1.2.3")
    if match.group("tag") == "latest":
        _fail(field, f"{value!r} uses ':latest'; pin a version such as :1.2.3 so rollouts are reproducible")
    return value


def check_port(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        _fail(field, f"{value!r} must be a port number between 1 and 65535")
    return value


def _unique(field: str, names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            _fail(field, f"{name!r} appears more than once; names must be unique")
        seen.add(name)


def _items(field: str, value: Any, *, allow_empty: bool = False) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or (not value and not allow_empty):
        _fail(field, "must be a non-empty list" if not allow_empty else "must be a list")
    if field == "environments":
        return value
    required, optional = ITEM_KEYS[field]
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            _fail(where, f"must be a mapping with keys {', '.join(sorted(required))}")
        missing = required - item.keys()
        if missing:
            _fail(where, f"is missing {', '.join(sorted(missing))}")
        unknown = item.keys() - required - optional
        if unknown:
            _fail(where, f"has unknown key {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(required | optional))}")
    return value


def reject_unknown(answers: Mapping[str, Any]) -> None:
    """A misspelt answer name must not be silently ignored."""
    unknown = [key for key in answers if key not in KNOWN and not str(key).startswith("_")]
    if unknown:
        _fail(str(unknown[0]), f"is not a known answer; known answers are {', '.join(KNOWN)}")


def validate(answers: Mapping[str, Any]) -> dict[str, Any]:
    """Check a complete set of answers; return them unchanged or raise AnswersError."""
    reject_unknown(answers)
    needed = [key for key in KNOWN if key not in ARGOCD_ONLY or answers.get("engine") == "argocd"]
    missing = [key for key in needed if key not in answers]
    if missing:
        _fail(missing[0], "is required")
    for field in KNOWN:
        if field in answers:
            check_field(field, answers)
    return dict(answers)


def check_field(field: str, answers: Mapping[str, Any]) -> None:
    """Check one answer against its rules and the answers before it (copier.yml order).

    Questions are checked in order, like Copier does, so a later default is only
    ever rendered from answers that passed their own rules. A field without
    rules here is left to `validate`, which rejects unknown answers.
    """
    if field in _FIELD_CHECKS:
        _FIELD_CHECKS[field](answers)


def _check_engine(answers: Mapping[str, Any]) -> None:
    if answers["engine"] not in ENGINES:
        _fail("engine", f"{answers['engine']!r} is not supported; choose one of: {', '.join(ENGINES)}")


def _check_flux_install(answers: Mapping[str, Any]) -> None:
    # Asked for Flux only; an Argo CD repo carries the default, which nothing reads.
    if answers["flux_install"] not in FLUX_INSTALLS:
        _fail("flux_install", f"{answers['flux_install']!r} is not supported; choose one of: {', '.join(FLUX_INSTALLS)}")


def _check_environments(answers: Mapping[str, Any]) -> None:
    environments = _items("environments", answers["environments"])
    for index, env in enumerate(environments):
        check_name(f"environments[{index}]", env)
    _unique("environments", environments)


def _check_clusters(answers: Mapping[str, Any]) -> None:
    environments = answers["environments"]
    clusters = _items("clusters", answers["clusters"])
    for index, cluster in enumerate(clusters):
        check_name(f"clusters[{index}].name", cluster["name"])
        if cluster["environment"] not in environments:
            _fail(f"clusters[{index}].environment", f"{cluster['environment']!r} is not one of the environments ({', '.join(environments)})")
    _unique("clusters", [cluster["name"] for cluster in clusters])


def _check_teams(answers: Mapping[str, Any]) -> None:
    teams = _items("teams", answers["teams"])
    for index, team in enumerate(teams):
        check_name(f"teams[{index}].name", team["name"], reserved=RESERVED | set(answers["environments"]))
        groups = team["groups"]
        if not isinstance(groups, list) or not groups:
            _fail(f"teams[{index}].groups", "must be a non-empty list of identity-provider group names")
        for group_index, group in enumerate(groups):
            check_group(f"teams[{index}].groups[{group_index}]", group)
    _unique("teams", [team["name"] for team in teams])


def _check_apps(answers: Mapping[str, Any]) -> None:
    team_names = [team["name"] for team in answers["teams"]]
    apps = _items("apps", answers["apps"], allow_empty=True)
    for index, app in enumerate(apps):
        check_name(f"apps[{index}].name", app["name"], reserved=RESERVED | set(answers["environments"]))
        if app["team"] not in team_names:
            _fail(f"apps[{index}].team", f"{app['team']!r} is not one of the teams ({', '.join(team_names)})")
        check_image(f"apps[{index}].image", app["image"])
        check_port(f"apps[{index}].port", app["port"])
        for key in ("health_path", "ready_path"):
            if key in app and not HTTP_PATH.match(_check_text(f"apps[{index}].{key}", app[key])):
                _fail(f"apps[{index}].{key}", f"{app[key]!r} must be an HTTP path such as /healthz")
    _unique("apps", [app["name"] for app in apps])


def commit_status_type(git_url: str) -> str | None:
    """The Flux commit-status provider for git_url's host ("github" or "gitlab"), None for other hosts.
    copier.yml's alerts_to reads the host the same way."""
    host = git_url.split("/")[2].split("@")[-1].split(":")[0]
    return "github" if "github" in host else "gitlab" if "gitlab" in host else None


def _check_secrets(answers: Mapping[str, Any]) -> None:
    if answers["secrets"] not in SECRETS_BACKENDS:
        _fail("secrets", f"{answers['secrets']!r} is not supported; choose one of: {', '.join(SECRETS_BACKENDS)}")
    if answers["secrets"] == "sops" and answers["engine"] == "argocd":
        # Argo CD decrypts SOPS only through a plugin, which its own docs advise against.
        _fail("secrets", "'sops' needs engine flux (Argo CD has no built-in SOPS decryption); choose sealed-secrets")


def _check_verify(answers: Mapping[str, Any]) -> None:
    if answers["verify"] not in VERIFY_MODES:
        _fail("verify", f"{answers['verify']!r} is not supported; choose one of: {', '.join(VERIFY_MODES)}")
    if answers["verify"] == "ssh" and answers["engine"] == "argocd":
        _fail("verify", "'ssh' needs engine flux (Argo CD verifies OpenPGP signatures only); choose gpg or none")


def check_source_url(field: str, value: Any) -> str:
    if not isinstance(value, str) or not SOURCE_URL.match(value):
        _fail(field, f"{value!r} must be an https://, ssh:// or oci:// URL without spaces or quotes")
    return value


def _check_tenant_source_allowlist(answers: Mapping[str, Any]) -> None:
    urls = answers["tenant_source_allowlist"]
    if not isinstance(urls, list):
        _fail("tenant_source_allowlist", "must be a list of URLs (empty: this repository only)")
    for index, url in enumerate(urls):
        check_source_url(f"tenant_source_allowlist[{index}]", url)
        if url in urls[:index]:
            _fail("tenant_source_allowlist", f"{url!r} appears more than once; names must be unique")
    if urls and answers["engine"] == "argocd":
        _fail("tenant_source_allowlist", "needs engine flux (Argo CD teams deploy from this repository only); leave it empty")


def _check_monitoring(answers: Mapping[str, Any]) -> None:
    if not isinstance(answers["monitoring"], bool):
        _fail("monitoring", f"{answers['monitoring']!r} must be true or false")


def _check_alerts_to(answers: Mapping[str, Any]) -> None:
    value = answers["alerts_to"]
    if value not in ALERT_CHANNELS:
        _fail("alerts_to", f"{value!r} is not supported; choose one of: {', '.join(ALERT_CHANNELS)}")
    if value != "none" and not answers["monitoring"]:
        _fail("alerts_to", f"{value!r} needs monitoring: true; choose none or turn monitoring on")
    if value == "github-status" and commit_status_type(answers["git_url"]) is None:
        host = answers["git_url"].split("/")[2].split("@")[-1].split(":")[0]
        _fail("alerts_to", f"'github-status' needs a git_url on a GitHub or GitLab host, not {host!r}; choose slack, msteams or none")


def production_environments(environments: list[str]) -> list[str]:
    """The environments whose alerts page: the last one (production targets in apps/<env>/<app>/alerts.yaml)
    and any named prod or production. copier.yml's pager validator reads them the same way."""
    return environments[-1:] + [env for env in environments if env in PRODUCTION_NAMES and env != environments[-1]]


def _check_pager(answers: Mapping[str, Any]) -> None:
    value = answers["pager"]
    if value not in PAGERS:
        _fail("pager", f"{value!r} is not supported; choose one of: {', '.join(PAGERS)}")
    if value != "none" and not answers["monitoring"]:
        _fail("pager", f"{value!r} needs monitoring: true; choose none or turn monitoring on")
    if value == "none" and answers["monitoring"]:
        production = "', '".join(production_environments(answers["environments"]))
        _fail("pager", f"'none' leaves the critical alerts of production environment '{production}' with nobody to page; choose pagerduty or opsgenie")


def _check_cluster_flavor(answers: Mapping[str, Any]) -> None:
    if answers["cluster_flavor"] not in CLUSTER_FLAVORS:
        _fail("cluster_flavor", f"{answers['cluster_flavor']!r} is not supported; choose one of: {', '.join(CLUSTER_FLAVORS)}")


def _check_ci(answers: Mapping[str, Any]) -> None:
    if answers["ci"] not in CI_PROVIDERS:
        _fail("ci", f"{answers['ci']!r} is not supported; choose one of: {', '.join(CI_PROVIDERS)}")


def _check_argocd_domain(answers: Mapping[str, Any]) -> None:
    value = answers["argocd_domain"]
    if not isinstance(value, str) or not DNS_DOMAIN.fullmatch(value):
        _fail("argocd_domain", f"{value!r} must be a DNS domain such as platform.example.org: lowercase labels of letters, digits and '-', joined by dots")
    if len(value) > MAX_DOMAIN:
        _fail("argocd_domain", f"{value!r} is {len(value)} characters; at most {MAX_DOMAIN} leave room for argocd.<cluster>.")


def _check_argocd_ha(answers: Mapping[str, Any]) -> None:
    if not isinstance(answers["argocd_ha"], bool):
        _fail("argocd_ha", f"{answers['argocd_ha']!r} must be true or false")


_FIELD_CHECKS = {
    "project_name": lambda answers: check_name("project_name", answers["project_name"], reserved=()),
    "git_url": lambda answers: validate_git_url(answers["git_url"]),
    "default_branch": lambda answers: check_branch(answers["default_branch"]),
    "engine": _check_engine,
    "flux_install": _check_flux_install,
    "environments": _check_environments,
    "clusters": _check_clusters,
    "teams": _check_teams,
    "apps": _check_apps,
    "secrets": _check_secrets,
    "verify": _check_verify,
    "tenant_source_allowlist": _check_tenant_source_allowlist,
    "monitoring": _check_monitoring,
    "alerts_to": _check_alerts_to,
    "pager": _check_pager,
    "cluster_flavor": _check_cluster_flavor,
    "ci": _check_ci,
    "argocd_domain": _check_argocd_domain,
    "argocd_ha": _check_argocd_ha,
}


def parse_data_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """`--data KEY=VALUE` options, typed as Copier types them: text answers are
    taken verbatim, yes/no answers as Copier casts them, list answers (and unknown
    keys, rejected later) are YAML."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise AnswersError(f"--data {pair!r}: expected KEY=VALUE")
        if key in BOOL_FIELDS:
            data[key] = _BOOL_WORDS.get(raw.strip().lower(), raw)  # anything else fails its check
            continue
        if key in KNOWN and key not in LIST_FIELDS:
            data[key] = raw
            continue
        try:
            data[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as error:
            raise AnswersError(f"--data {key}: value is not valid YAML ({_first_line(error)})") from None
    return data


def load_data_file(path: Path) -> dict[str, Any]:
    """`--data-file`: a YAML mapping of answers."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise AnswersError(f"--data-file {path}: file not found") from None
    except OSError as error:
        raise AnswersError(f"--data-file {path}: cannot be read ({error.strerror})") from None
    try:
        data = yaml_loader.safe_load(text)
    except yaml.YAMLError as error:
        raise AnswersError(f"--data-file {path}: not valid YAML ({_first_line(error)})") from None
    if not isinstance(data, dict):
        raise AnswersError(f"--data-file {path}: must contain a YAML mapping of answer names to values")
    return data


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())

