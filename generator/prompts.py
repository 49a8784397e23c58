"""Interactive questionnaire: list answers are asked item by item, never as YAML.

Each prompt validates with the same rules as answers.py and re-asks with the
reason; the person confirms a summary before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from . import answers as rules
from .answers import AnswersError
from .questions import default_for


def _ask(label: str, check: Callable[[Any], Any], default: Any = None, convert: Callable[[str], Any] = str) -> Any:
    if options := getattr(check, "options", None):
        label = f"{label} ({', '.join(options)})"  # e.g. "engine (flux, argocd) [flux]:"
    while True:
        raw = typer.prompt(label, default=default)
        try:
            return check(convert(raw))
        except (AnswersError, ValueError) as error:
            typer.secho(f"  {error}", fg=typer.colors.YELLOW)


def _ask_names(label: str, field: str, defaults: list[str], reserved: set[str] = rules.RESERVED) -> list[str]:
    def check(raw: str) -> list[str]:
        names = [name.strip() for name in raw.split(",") if name.strip()]
        if not names:
            raise AnswersError(f"{field}: give at least one name")
        for index, name in enumerate(names):
            rules.check_name(f"{field}[{index}]", name, reserved=reserved)
        if len(set(names)) != len(names):
            raise AnswersError(f"{field}: names must be unique")
        return names

    return _ask(f"{label} (comma-separated)", check, default=", ".join(defaults))


def _choice(field: str, options: list[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in options:
            raise AnswersError(f"{field}: choose one of {', '.join(options)}")
        return value

    check.options = list(options)  # type: ignore[attr-defined] - shown in the prompt
    return check


def _ask_scalar(name: str, check: Callable[[Any], Any]) -> Callable[[dict, dict], Any]:
    def ask(answers: dict[str, Any], spec: dict[str, Any]) -> Any:
        typer.secho(spec.get("help", name), dim=True)
        return _ask(name, check, default=default_for(spec, answers))

    return ask


def _ask_environments(answers: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    return _ask_names("Environments in promotion order", "environments", default_for(spec, answers))


def _ask_clusters(answers: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, str]]:
    clusters = []
    for env in answers["environments"]:
        count = _ask(f"How many clusters run {env}?", lambda n: n if 0 <= n <= 20 else _bad("a number from 0 to 20"), default=1, convert=int)
        for number in range(count):
            suggestion = env if count == 1 else f"{env}-{number + 1}"
            name = _ask(f"  name of cluster {number + 1} of {env}", lambda v: rules.check_name("clusters.name", v), default=suggestion)
            clusters.append({"name": name, "environment": env})
    return clusters


def _ask_teams(answers: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    teams = []
    for name in _ask_names("Teams", "teams", ["dev-team"], reserved=rules.RESERVED | set(answers["environments"])):
        groups = _ask(
            f"  identity-provider groups of {name} (comma-separated)",
            lambda raw: [rules.check_group("teams.groups", g.strip()) for g in raw.split(",") if g.strip()] or _bad("at least one group"),
            default=name,
        )
        teams.append({"name": name, "groups": groups})
    return teams


def _ask_apps(answers: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    team_names = [team["name"] for team in answers["teams"]]
    reserved = rules.RESERVED | set(answers["environments"])
    apps: list[dict[str, Any]] = []
    count = _ask("How many apps?", lambda n: n if 0 <= n <= 100 else _bad("a number from 0 to 100"), default=1, convert=int)
    for number in range(count):
        typer.echo(f"App {number + 1}:")
        first = number == 0
        apps.append(
            {
                "name": _ask("  name", lambda v: rules.check_name("apps.name", v, reserved=reserved), default="podinfo" if first else None),
                "team": _ask("  team", _choice("apps.team", team_names), default=team_names[0]),
                "image": _ask("  image (with a pinned tag)", lambda v: rules.check_image("apps.image", v), default="ghcr.io/stefanprodan/podinfo:6.7.1" if first else None),
                "port": _ask("  port", lambda v: rules.check_port("apps.port", v), default=9898 if first else 8080, convert=int),
            }
        )
    return apps


def _ask_monitoring(answers: dict[str, Any], spec: dict[str, Any]) -> bool:
    typer.secho(spec.get("help", "monitoring"), dim=True)
    return typer.confirm("monitoring", default=default_for(spec, answers))


def _ask_alerts_to(answers: dict[str, Any], spec: dict[str, Any]) -> str:
    if not answers["monitoring"]:
        return "none"  # nothing to send alerts from
    return _ask_scalar("alerts_to", _choice("alerts_to", list(rules.ALERT_CHANNELS)))(answers, spec)


def _ask_pager(answers: dict[str, Any], spec: dict[str, Any]) -> str:
    if not answers["monitoring"]:
        return "none"  # no alerts to page for
    return _ask_scalar("pager", _choice("pager", [pager for pager in rules.PAGERS if pager != "none"]))(answers, spec)


def _ask_cluster_flavor(answers: dict[str, Any], spec: dict[str, Any]) -> str:
    if not answers["monitoring"]:
        return default_for(spec, answers)  # only monitoring reads it
    return _ask_scalar("cluster_flavor", _choice("cluster_flavor", list(rules.CLUSTER_FLAVORS)))(answers, spec)


def _ask_secrets(answers: dict[str, Any], spec: dict[str, Any]) -> str:
    if answers["engine"] == "argocd":
        return "sealed-secrets"  # the only backend Argo CD decrypts without a plugin
    return _ask_scalar("secrets", _choice("secrets", list(rules.SECRETS_BACKENDS)))(answers, spec)


def _ask_flux_install(answers: dict[str, Any], spec: dict[str, Any]) -> str:
    if answers["engine"] != "flux":
        return default_for(spec, answers)  # not asked: Argo CD installs itself from its chart
    return _ask_scalar("flux_install", _choice("flux_install", list(rules.FLUX_INSTALLS)))(answers, spec)


def _ask_verify(answers: dict[str, Any], spec: dict[str, Any]) -> str:
    # Argo CD verifies OpenPGP signatures only.
    modes = [mode for mode in rules.VERIFY_MODES if not (answers["engine"] == "argocd" and mode == "ssh")]
    return _ask_scalar("verify", _choice("verify", modes))(answers, spec)


def _ask_argocd_domain(answers: dict[str, Any], spec: dict[str, Any]) -> str:
    if answers["engine"] != "argocd":
        return default_for(spec, answers)  # not used by Flux; Copier does not ask it either

    def check(value: str) -> str:
        rules.check_field("argocd_domain", {**answers, "argocd_domain": value})
        return value

    return _ask_scalar("argocd_domain", check)(answers, spec)


def _ask_argocd_ha(answers: dict[str, Any], spec: dict[str, Any]) -> bool:
    if answers["engine"] != "argocd":
        return default_for(spec, answers)
    typer.secho(spec.get("help", "argocd_ha"), dim=True)
    return typer.confirm("argocd_ha", default=default_for(spec, answers))
def _ask_tenant_source_allowlist(answers: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    if answers["engine"] != "flux":
        return []  # Argo CD teams deploy from this repository only

    def check(raw: str) -> list[str]:
        urls = [url.strip() for url in raw.split(",") if url.strip()]
        for index, url in enumerate(urls):
            rules.check_source_url(f"tenant_source_allowlist[{index}]", url)
        return urls

    typer.secho(spec.get("help", "tenant_source_allowlist"), dim=True)
    return _ask("Other URLs teams' Flux sources may use (comma-separated, empty for none)", check, default="")


ASKERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]] = {
    "project_name": _ask_scalar("project_name", lambda value: rules.check_name("project_name", value, reserved=())),
    "git_url": _ask_scalar("git_url", rules.validate_git_url),
    "default_branch": _ask_scalar("default_branch", rules.check_branch),
    "engine": _ask_scalar("engine", _choice("engine", list(rules.ENGINES))),
    "flux_install": _ask_flux_install,
    "environments": _ask_environments,
    "clusters": _ask_clusters,
    "teams": _ask_teams,
    "apps": _ask_apps,
    "secrets": _ask_secrets,
    "verify": _ask_verify,
    "tenant_source_allowlist": _ask_tenant_source_allowlist,
    "monitoring": _ask_monitoring,
    "alerts_to": _ask_alerts_to,
    "pager": _ask_pager,
    "cluster_flavor": _ask_cluster_flavor,
    "ci": _ask_scalar("ci", _choice("ci", list(rules.CI_PROVIDERS))),
    "argocd_domain": _ask_argocd_domain,
    "argocd_ha": _ask_argocd_ha,
}


def ask_missing(given: dict[str, Any], specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ask a person for every answer not already given, in copier.yml order; returns the completed answers.

    Given answers are checked as they come, so a later question never builds on a bad one.
    """
    answers = dict(given)
    asked = False
    for name, spec in specs.items():
        if name not in answers:
            try:
                answers[name] = ASKERS[name](answers, spec)
            except typer.Abort:  # end of input, e.g. piped answers ran out
                typer.echo()
                raise AnswersError(f"{name}: no answer given; pass --defaults, --data {name}=… or --data-file") from None
            asked = True
        rules.check_field(name, answers)
    if asked:
        _summary(answers)
        if not typer.confirm("Generate the repository?", default=True):
            raise AnswersError("generation cancelled; nothing was written")
    return answers


def _bad(rule: str):
    raise ValueError(f"expected {rule}")


def _summary(answers: dict[str, Any]) -> None:
    typer.secho("\nSummary", bold=True)
    typer.echo(f"  project  {answers['project_name']}  ({answers['git_url']}, branch {answers['default_branch']}, {answers['engine']}{', ' + answers['flux_install'] if answers['engine'] == 'flux' else ''})")
    typer.echo(f"  envs     {', '.join(answers['environments'])}")
    typer.echo("  clusters " + ", ".join(f"{c['name']} ({c['environment']})" for c in answers["clusters"]))
    typer.echo("  teams    " + ", ".join(f"{t['name']} [{', '.join(t['groups'])}]" for t in answers["teams"]))
    typer.echo("  apps     " + (", ".join(f"{a['name']} ({a['team']}, {a['image']}, :{a['port']})" for a in answers["apps"]) or "none"))
    typer.echo(f"  secrets  {answers['secrets']}, signed commits: {answers['verify']}")
    typer.echo(f"  alerts   {'to ' + answers['alerts_to'] + ', critical pages ' + answers['pager'] + ' (' + answers['cluster_flavor'] + ' clusters)' if answers['monitoring'] else 'no monitoring'}")
    typer.echo(f"  ci       {answers['ci']}")
    if answers["engine"] == "argocd":
        typer.echo(f"  argocd   https://argocd.<cluster>.{answers['argocd_domain']}{', highly available' if answers['argocd_ha'] else ''}")
