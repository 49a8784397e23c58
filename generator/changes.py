"""Answer edits behind `add` and `remove`: one item in, one item out, references kept whole."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from .answers import KNOWN, LIST_FIELDS, AnswersError

KINDS = ("app", "env", "cluster", "team")


def _names(answers: dict[str, Any], kind: str) -> list[str]:
    if kind == "env":
        return list(answers["environments"])
    return [item["name"] for item in answers[f"{kind}s"]]


def add(answers: dict[str, Any], kind: str, item: Any) -> dict[str, Any]:
    """Answers with one more app/env/cluster/team; the caller validates the result."""
    name = item if kind == "env" else item["name"]
    if name in _names(answers, kind):
        raise AnswersError(f"{kind} {name!r} already exists")
    changed = deepcopy(answers)
    key = "environments" if kind == "env" else f"{kind}s"
    changed[key] = [*changed[key], item]
    return {key: changed[key]}


def remove(answers: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """Answers without one item; refuses when something still refers to it."""
    if name not in _names(answers, kind):
        existing = ", ".join(_names(answers, kind)) or "none"
        raise AnswersError(f"{kind} {name!r} does not exist (existing: {existing})")
    if kind == "env":
        users = [cluster["name"] for cluster in answers["clusters"] if cluster["environment"] == name]
        if users:
            raise AnswersError(f"env {name!r} is used by cluster(s) {', '.join(users)}; remove or move them first")
        if len(answers["environments"]) == 1:
            raise AnswersError(f"env {name!r} is the last environment; a repo needs at least one")
        return {"environments": [env for env in answers["environments"] if env != name]}
    if kind == "team":
        users = [app["name"] for app in answers["apps"] if app["team"] == name]
        if users:
            raise AnswersError(f"team {name!r} still owns app(s) {', '.join(users)}; remove or reassign them first")
    key = f"{kind}s"
    remaining = [item for item in answers[key] if item["name"] != name]
    if not remaining and kind in ("cluster", "team"):
        raise AnswersError(f"{kind} {name!r} is the last {kind}; a repo needs at least one")
    return {key: remaining}


# Answers that shape the repo so deeply that re-rendering cannot convert it.
FIXED = {"engine": "changing the engine of an existing repo is not supported; generate a new repo with the other engine and move your apps over"}


def set_values(answers: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """Changed scalar answers (branch, secrets, monitoring, ci, …); lists change through add/remove."""
    if not updates:
        raise AnswersError("set: give at least one KEY=VALUE")
    for key in updates:
        if key in FIXED:
            raise AnswersError(f"{key}: {FIXED[key]}")
        if key in LIST_FIELDS:
            raise AnswersError(f"{key}: change lists with `gitops-forge add` / `gitops-forge remove`")
        if key not in KNOWN:
            raise AnswersError(f"{key}: is not a known answer; known answers are {', '.join(k for k in KNOWN if k not in LIST_FIELDS)}")
        if key not in answers:
            raise AnswersError(f"{key}: this repo's template version does not have this answer yet; run `gitops-forge update` first")
    return {key: value for key, value in updates.items() if answers.get(key) != value}
