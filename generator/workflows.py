"""What each command does, start to finish, without any printing.

The CLI parses options and prints results; everything between lives here so
it can be called and tested without a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import answers as answers_model
from . import changes, questions, scaffold, staging, template_source
from .answers import AnswersError
from .template_source import CANONICAL_URL, TemplateSource

Prompter = Callable[[dict[str, Any], dict[str, dict[str, Any]]], dict[str, Any]]


@dataclass
class NewResult:
    destination: Path
    answers: dict[str, Any]
    written: list[str]
    version: str
    committed: bool


@dataclass
class UpdateCheck:
    current: str
    latest: str
    available: bool = field(init=False)

    def __post_init__(self) -> None:
        self.available = _version(self.latest) > _version(self.current)


def _version(tag: str):
    from packaging.version import InvalidVersion, Version

    try:
        return Version(tag.split("-", 1)[0])
    except InvalidVersion:
        return Version("0")


def gather_answers(
    destination: Path,
    *,
    data: dict[str, Any],
    use_defaults: bool,
    prompter: Prompter | None,
) -> dict[str, Any]:
    """Complete the given answers from defaults or a person, then validate them."""
    specs = questions.load()
    given = dict(data)
    answers_model.reject_unknown(given)
    # The directory names the project; a person can still pick another name at the prompt.
    if "project_name" not in given and (use_defaults or answers_model.DNS_LABEL.match(destination.name)):
        given["project_name"] = destination.name
    if not use_defaults:
        if prompter is None:
            missing = [name for name in specs if name not in given]
            if missing:
                raise AnswersError(f"{missing[0]}: no answer given; pass --defaults, --data {missing[0]}=… or --data-file")
        else:
            given = prompter(given, specs)
    return answers_model.validate(questions.complete(given, specs, check=answers_model.check_field))


def new_repo(destination: Path, answers: dict[str, Any], *, source: TemplateSource | None = None, force: bool = False, git: bool = True) -> NewResult:
    source = source or template_source.builtin()
    branch = answers["default_branch"]
    parent = destination.absolute().parent
    scaffold.check_destination(destination.absolute(), force=force)
    parent.mkdir(parents=True, exist_ok=True)
    # Git packs the files on the other core while Copier writes them.
    with (staging.BlobStream(parent, branch) if git else nullcontext()) as blobs:
        written = scaffold.new(destination, answers, source, force=force, blobs=blobs)
        committed = git and scaffold.init_git(destination, branch, blobs)
    version = str(scaffold.read_answers(destination).get("_commit", "unknown"))
    return NewResult(destination, answers, written, version, committed)


def source_for(repo: Path, *, template: str | None = None, trust: bool = False) -> TemplateSource:
    """The template a generated repo came from: ours, unless it records another URL."""
    if template:
        return template_source.from_user(template, trust=trust)
    recorded = scaffold.read_answers(repo).get("_src_path", CANONICAL_URL)
    if recorded == CANONICAL_URL:
        return template_source.builtin()
    return template_source.from_user(str(recorded), trust=trust)


def check_update(repo: Path) -> UpdateCheck:
    current = str(scaffold.read_answers(repo).get("_commit", "v0"))
    return UpdateCheck(current=current, latest=f"v{source_for(repo).latest()}")


def update_repo(repo: Path, *, to_version: str | None, conflict: scaffold.Conflict, pretend: bool, trust: bool = False) -> scaffold.UpdateResult:
    source = source_for(repo, trust=trust)
    if to_version:
        wanted = to_version.removeprefix("v")
        available = [str(version) for version in source.versions()]
        if wanted not in available:
            raise AnswersError(f"--to: template version {to_version} does not exist (available: {', '.join(available)})")
    return scaffold.update(repo, source, to_version=to_version, conflict=conflict, pretend=pretend)


def add_item(repo: Path, kind: str, item: Any) -> scaffold.UpdateResult:
    current = scaffold.user_answers(scaffold.read_answers(repo))
    return scaffold.rerender(repo, changes.add(current, kind, item), source_for(repo))


def remove_item(repo: Path, kind: str, name: str) -> scaffold.UpdateResult:
    current = scaffold.user_answers(scaffold.read_answers(repo))
    return scaffold.rerender(repo, changes.remove(current, kind, name), source_for(repo))


def after_removal(repo: Path, kind: str, name: str) -> str | None:
    """What a person must still do after `remove <kind> <name>`, or None."""
    if kind != "team":
        return None
    from .offboarding import remove_team_runbook

    return remove_team_runbook(scaffold.read_answers(repo), name)


def set_answers(repo: Path, updates: dict[str, Any]) -> scaffold.UpdateResult:
    recorded = scaffold.read_answers(repo)
    changed = changes.set_values(scaffold.user_answers(recorded), updates)
    if not changed:
        version = str(recorded.get("_commit", "unknown"))
        return scaffold.UpdateResult(version, version)
    return scaffold.rerender(repo, changed, source_for(repo))
