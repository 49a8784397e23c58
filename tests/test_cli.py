"""The CLI's successful paths: generate, report, version, help, and the questionnaire."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from generator.cli import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("isolated_user")


def test_version_and_help():
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("gitops-forge ")
    help_text = runner.invoke(app, ["--help"]).output
    for command in ("new", "update", "check-update", "add", "remove", "promote", "diff"):
        assert command in help_text


def test_new_with_defaults_writes_commits_and_prints_next_steps(tmp_path):
    destination = tmp_path / "my-platform"
    result = runner.invoke(app, ["new", str(destination), "--defaults"])
    assert result.exit_code == 0, result.output
    assert "Created" in result.output and "install Flux on each cluster with the Flux Operator: clusters/dev/flux-system/README.md" in result.output
    answers = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    assert answers["project_name"] == "my-platform"
    assert answers["environments"] == ["dev", "staging", "prod"]
    log = subprocess.run(["git", "log", "--oneline"], cwd=destination, capture_output=True, text=True, check=True).stdout
    assert len(log.splitlines()) == 1
    assert subprocess.run(["git", "status", "--porcelain"], cwd=destination, capture_output=True, text=True).stdout == ""


def test_new_from_data_file_and_data(tmp_path):
    answers_file = tmp_path / "answers.yml"
    answers_file.write_text(yaml.safe_dump({
        "project_name": "shop",
        "environments": ["staging", "production"],
        "clusters": [{"name": "stg-eu", "environment": "staging"}, {"name": "prd-eu", "environment": "production"}],
        "teams": [{"name": "checkout", "groups": ["checkout-devs"]}],
        "apps": [{"name": "cart", "team": "checkout", "image": "ghcr.io/acme/cart:3.1.0", "port": 8080}],
    }))
    destination = tmp_path / "out"
    result = runner.invoke(app, ["new", str(destination), "--data-file", str(answers_file), "--data", "default_branch=trunk", "--defaults", "--no-git"])
    assert result.exit_code == 0, result.output
    assert (destination / "apps/production/cart/kustomization.yaml").is_file()
    assert (destination / "clusters/prd-eu/apps.yaml").is_file()
    assert not (destination / ".git").exists()
    assert yaml.safe_load((destination / ".copier-answers.yml").read_text())["default_branch"] == "trunk"


def test_interactive_questionnaire_asks_item_by_item_and_re_asks(tmp_path):
    destination = tmp_path / "interactive"
    answers = "\n".join([
        "",                      # git_url default (project_name comes from the directory name)
        "",                      # default_branch default
        "",                      # engine default
        "helm", "bootstrap",     # flux_install: an unknown way is re-asked
        "dev, prod",             # environments
        "1", "",                 # dev: one cluster, default name
        "2", "prod-eu", "prod-us",
        "Web_App, web",         # teams: first answer is invalid and re-asked
        "web",
        "web-devs",              # groups of web
        "1",                     # one app
        "shop", "", "ghcr.io/acme/shop:latest", "ghcr.io/acme/shop:1.0.0", "99999", "8080",
        "vault", "sops",         # secrets: an unknown backend is re-asked
        "",                      # verify: default none
        "",                      # tenant_source_allowlist: none besides this repository
        "",                      # monitoring: default yes
        "pager", "slack",        # alerts_to: an unknown channel is re-asked
        "none", "opsgenie",      # pager: nobody to page is not offered with monitoring
        "self-managed",          # cluster_flavor
        "jenkins", "gitlab",     # ci: an unsupported provider is re-asked
        "y",                     # confirm the summary
    ]) + "\n"
    result = runner.invoke(app, ["new", str(destination), "--no-git"], input=answers)
    assert result.exit_code == 0, result.output
    assert "DNS-1123" in result.output            # the bad team name was explained
    assert ":latest" in result.output              # the :latest image was explained
    assert "between 1 and 65535" in result.output  # the bad port was explained
    assert "choose one of github, gitlab, none" in result.output  # the bad CI provider was explained
    assert "Summary" in result.output
    recorded = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    assert recorded["clusters"] == [
        {"name": "dev", "environment": "dev"},
        {"name": "prod-eu", "environment": "prod"},
        {"name": "prod-us", "environment": "prod"},
    ]
    assert recorded["apps"] == [{"name": "shop", "team": "web", "image": "ghcr.io/acme/shop:1.0.0", "port": 8080}]
    assert recorded["ci"] == "gitlab" and recorded["flux_install"] == "bootstrap"
    assert "choose one of operator, bootstrap" in result.output
    assert recorded["secrets"] == "sops" and recorded["verify"] == "none"
    assert recorded["monitoring"] is True and recorded["alerts_to"] == "slack"
    assert "choose one of pagerduty, opsgenie" in result.output  # pager: none was explained
    assert (recorded["pager"], recorded["cluster_flavor"]) == ("opsgenie", "self-managed")
    assert recorded["tenant_source_allowlist"] == []


def test_interactive_argocd_offers_only_what_argo_cd_supports(tmp_path):
    destination = tmp_path / "argo"
    answers = "\n".join([
        "", "",                  # git_url, default_branch
        "argocd",                # engine
        "prod", "", "",          # environments, one cluster with the default name
        "web", "web-devs",       # one team
        "0",                     # no apps
        # secrets is not asked: Sealed Secrets is the only choice with Argo CD
        "ssh", "gpg",            # verify: SSH signatures are re-asked
        "", "",                  # monitoring, alerts_to
        "", "",                  # pager, cluster_flavor
        "",                      # ci
        "localhost", "gitops.acme.example",  # argocd_domain: a single label is re-asked
        "y",                     # argocd_ha
        "y",
    ]) + "\n"
    result = runner.invoke(app, ["new", str(destination), "--no-git"], input=answers)
    assert result.exit_code == 0, result.output
    assert "choose one of none, gpg" in result.output
    recorded = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    assert (recorded["engine"], recorded["secrets"], recorded["verify"]) == ("argocd", "sealed-secrets", "gpg")
    assert (recorded["argocd_domain"], recorded["argocd_ha"]) == ("gitops.acme.example", True)
    assert "argocd_domain: 'localhost' must be a DNS domain" in result.output
    assert "flux_install" not in recorded  # not asked, not recorded: nothing of Argo CD reads it
    assert (destination / "clusters/prod/root.yaml").is_file() and "bootstrap Argo CD" in result.output


def test_questions_with_choices_show_them_and_accept_only_them(tmp_path):
    destination = tmp_path / "choices"
    answers = "\n".join([
        "", "",                  # git_url, default_branch
        "helm", "Argocd", "argocd",  # engine: not a choice, wrong case, then a choice
        "prod", "", "",          # environments, one cluster with the default name
        "web", "web-devs",       # one team
        "1", "shop", "nobody", "web", "ghcr.io/acme/shop:1.0.0", "8080",  # app team: an unknown team is re-asked
        "", "", "",              # verify, monitoring, alerts_to
        "", "",                  # pager, cluster_flavor
        "",                      # ci
        "", "",                  # argocd_domain, argocd_ha
        "y",
    ]) + "\n"
    result = runner.invoke(app, ["new", str(destination), "--no-git"], input=answers)
    assert result.exit_code == 0, result.output
    assert "engine (flux, argocd) [flux]:" in result.output
    assert result.output.count("engine (flux, argocd) [flux]:") == 3  # asked again after each wrong answer
    assert "team (web) [web]:" in result.output
    assert "verify (none, gpg) [none]:" in result.output  # Argo CD's choices only
    assert "ci (github, gitlab, none)" in result.output
    recorded = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    assert recorded["engine"] == "argocd" and recorded["apps"][0]["team"] == "web"


def test_declining_the_summary_writes_nothing(tmp_path):
    destination = tmp_path / "declined"
    result = runner.invoke(app, ["new", str(destination), "--data", "apps=[]"], input="\n" * 21 + "n\n")  # every default (21 prompts), then decline
    assert result.exit_code == 2
    assert "cancelled" in result.output
    assert not destination.exists()


def test_defaults_take_the_project_name_from_the_directory_and_check_it(tmp_path):
    destination = tmp_path / "My_Platform"
    result = runner.invoke(app, ["new", str(destination), "--defaults"])
    assert result.exit_code == 2
    assert "project_name: 'My_Platform'" in result.output and "DNS-1123" in result.output
    assert not destination.exists()
