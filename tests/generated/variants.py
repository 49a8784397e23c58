"""Generated repos for the CI and documentation tests: one per CI provider, plus shapes that switch
the templates' conditional branches (a single environment without apps, the Argo CD engine)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from generator.render import RenderResult, render_repo

TEMPLATE = Path(__file__).resolve().parents[2]
CI_PROVIDERS = ("github", "gitlab", "none")

SHAPES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "single-env": {
        "environments": ["live"],
        "clusters": [{"name": "live-1", "environment": "live"}],
        "teams": [{"name": "solo", "groups": ["solo-devs"]}],
        "apps": [],
        "default_branch": "trunk",
    },
    # Argo CD: its own docs, CI checks, code owners and Renovate manager; the second shape switches the
    # branches for an HTTPS URL on GitLab, signed commits and a single environment without apps.
    "argocd": {"engine": "argocd"},
    "argocd-single-env": {
        "engine": "argocd",
        "git_url": "https://gitlab.example.com/platform/acme-platform.git",
        "environments": ["live"],
        "clusters": [{"name": "live-1", "environment": "live"}],
        "teams": [{"name": "solo", "groups": ["solo-devs"]}],
        "apps": [],
        "verify": "gpg",
        "alerts_to": "none",
    },
}

# (ci, shape) pairs worth rendering: every provider with the defaults, every provider with the other shape.
VARIANTS = [(ci, shape) for ci in CI_PROVIDERS for shape in SHAPES]

def variant_id(variant: tuple[str, str]) -> str:
    return "-".join(variant)


@dataclass
class Generated:
    repo: Path
    answers: dict[str, Any]  # as Copier recorded them, defaults filled in

    @cached_property
    def rendered(self) -> list[RenderResult]:
        """Every entrypoint, built the way `gitops-forge validate` builds it; each builds without errors."""
        results = render_repo(self.repo)
        assert [r.error for r in results if r.error] == []
        return results


_generated: dict[str, Generated] = {}


def generate(tmp_path_factory, answers: dict[str, Any]) -> Generated:
    """The repo these answers generate (project acme-platform unless they say otherwise), once per session for
    the same answers: the tests only read generated repos and write their own files to tmp_path."""
    answers = {"project_name": "acme-platform", **answers}
    key = json.dumps(answers, sort_keys=True)
    if key not in _generated:
        from pytest_copie.plugin import Copie

        workdir = tmp_path_factory.mktemp("generated")
        copie = Copie(default_template_dir=TEMPLATE, test_dir=workdir, config_file=workdir / "none.yml")
        result = copie.copy(extra_answers=answers)
        assert result.exit_code == 0, result.exception
        _generated[key] = Generated(result.project_dir, result.answers)
    return _generated[key]


def render(tmp_path_factory, ci: str, shape: str) -> tuple[Path, dict[str, Any]]:
    """The generated repo for (ci, shape) and its answers."""
    generated = generate(tmp_path_factory, {"ci": ci, **SHAPES[shape]})
    return generated.repo, generated.answers
