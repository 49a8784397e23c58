"""Generated repos for the CI and documentation tests: one per CI provider, plus shapes that switch
the templates' conditional branches (a single environment without apps, the Argo CD engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

_rendered: dict[tuple[str, str], tuple[Path, dict[str, Any]]] = {}


def variant_id(variant: tuple[str, str]) -> str:
    return "-".join(variant)


def render(tmp_path_factory, ci: str, shape: str) -> tuple[Path, dict[str, Any]]:
    """The generated repo for (ci, shape) and its answers, rendered once per test session."""
    key = (ci, shape)
    if key not in _rendered:
        from pytest_copie.plugin import Copie

        workdir = tmp_path_factory.mktemp(f"{ci}-{shape}")
        copie = Copie(default_template_dir=TEMPLATE, test_dir=workdir, config_file=workdir / "none.yml")
        result = copie.copy(extra_answers={"project_name": "acme-platform", "ci": ci, **SHAPES[shape]})
        assert result.exit_code == 0, result.exception
        _rendered[key] = (result.project_dir, result.answers)
    return _rendered[key]
