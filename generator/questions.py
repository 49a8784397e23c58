"""The questions in copier.yml, answered from defaults, data or a person.

copier.yml is the one place questions and defaults are written; this module
reads it so the CLI can complete and validate answers before Copier runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from jinja2.sandbox import SandboxedEnvironment

from . import yaml_loader
from .template_source import questions_file


def load(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Questions by name, in the order copier.yml asks them. Values computed for the templates
    (`when: false`: never asked, never recorded) are not questions and are left out."""
    config = yaml_loader.safe_load((path or questions_file()).read_text())
    return {name: spec for name, spec in config.items() if not name.startswith("_") and spec.get("when") is not False}


def default_for(spec: dict[str, Any], answered: dict[str, Any]) -> Any:
    """A question's default, rendered against the answers so far (as Copier does)."""
    default = spec.get("default")
    if not isinstance(default, str):
        return default
    rendered = SandboxedEnvironment().from_string(default).render(**answered)
    return yaml.safe_load(rendered) if spec.get("type") == "yaml" else rendered


def complete(
    given: dict[str, Any],
    questions: dict[str, dict[str, Any]] | None = None,
    *,
    check: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fill every unanswered question with its default.

    With `check`, each answer is checked in question order before any later
    default is rendered from it (a bad answer must not break a default's template).
    """
    questions = questions or load()
    answers = dict(given)
    for name, spec in questions.items():
        if name not in answers:
            answers[name] = default_for(spec, answers)
        if check:
            check(name, answers)
    return answers
