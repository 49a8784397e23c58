"""Promote a released version from one environment's overlay to the next.

Both engines keep the version an environment runs in the same place: the ``images:`` entry of
``apps/<environment>/<app>/kustomization.yaml`` (Flux Kustomizations and Argo CD Applications point at that
directory and add no image of their own). Promoting copies each entry's ``newTag`` and ``digest`` to the
target overlay; ``newName`` stays, because it names the environment's registry mirror, and so does
everything else in the file (sizing, patches, comments).

The overlay is parsed with ruamel.yaml's round-trip loader, which knows the line and column of every key
and value; only those value spans are rewritten, so every other byte of the file, comments and quoting
included, stays exactly as it was.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

ANSWERS_FILE = ".copier-answers.yml"
VERSION_KEYS = ("newTag", "digest")


class PromoteError(Exception):
    """A refusal: one sentence saying what is wrong and how to go on (exit code 2)."""


@dataclass
class ImageChange:
    image: str  # the entry's `name`
    before: dict[str, str]  # newTag/digest in the target before the promotion (absent keys left out)
    after: dict[str, str]  # ...and after


@dataclass
class AppPromotion:
    app: str
    file: str  # repo-relative target overlay
    version: str  # what the source runs, e.g. "6.7.2" or "6.7.2@sha256:…"
    images: list[ImageChange] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.images)


@dataclass
class PromoteResult:
    source: str
    target: str
    apps: list[AppPromotion]
    dry_run: bool = False
    commit: str | None = None  # the commit made with --commit
    charts: list[ChartPromotion] = field(default_factory=list)

    @property
    def changed(self) -> list[AppPromotion]:
        return [a for a in self.apps if a.changed]

    @property
    def unchanged(self) -> list[AppPromotion]:
        return [a for a in self.apps if not a.changed]

    def to_dict(self) -> dict:
        data = {
            "from": self.source,
            "to": self.target,
            "dry_run": self.dry_run,
            "commit": self.commit,
            "changed": [{**asdict(a), "images": [asdict(i) for i in a.images]} for a in self.changed],
            "already": [{"app": a.app, "file": a.file, "version": a.version} for a in self.unchanged],
        }
        if self.charts:
            data["charts"] = {"changed": [asdict(c) for c in self.charts if c.changed],
                              "already": [asdict(c) for c in self.charts if not c.changed]}
        return data


@dataclass
class ChartPromotion:
    chart: str  # the patch target's name, e.g. "sealed-secrets"
    file: str  # repo-relative target overlay (infrastructure/environments/<env>/<layer>/kustomization.yaml)
    version: str  # what the source runs
    before: str  # what the target ran

    @property
    def changed(self) -> bool:
        return self.before != self.version


def overlay(env: str, app: str) -> str:
    return f"apps/{env}/{app}/kustomization.yaml"


def promote(
    repo: Path,
    apps: list[str],
    *,
    source: str,
    target: str | None = None,
    all_apps: bool = False,
    charts: list[str] | None = None,
    allow_backwards: bool = False,
    dry_run: bool = False,
    commit: bool = False,
) -> PromoteResult:
    """Copy the released version of ``apps`` (or every app of ``source`` with ``all_apps``) from the
    ``source`` environment's overlays to ``target``'s (default: the next environment); with ``charts``, the
    version of those platform charts instead. Raises PromoteError."""
    repo = repo.resolve()
    environments = _environments(repo)
    if source not in environments:
        raise PromoteError(f"Unknown environment {source!r}; the environments are {', '.join(environments)}.")
    position = environments.index(source)
    if not target:  # not given (CI passes an empty --to for "the next one")
        if position + 1 == len(environments):
            raise PromoteError(f"{source!r} is the last environment, so there is nothing after it to promote to; "
                               "name the target with --to.")
        target = environments[position + 1]
    if target not in environments:
        raise PromoteError(f"Unknown environment {target!r}; the environments are {', '.join(environments)}.")
    if target == source:
        raise PromoteError(f"--from and --to are both {source!r}; promote to another environment.")
    if environments.index(target) < position and not allow_backwards:
        raise PromoteError(f"{target!r} comes before {source!r} in the promotion order "
                           f"({' → '.join(environments)}); pass --allow-backwards to roll it back on purpose.")

    if charts:
        if apps or all_apps:
            raise PromoteError("Promote apps or --chart, not both in one run.")
        return _promote_charts(repo, list(dict.fromkeys(charts)), source, target,
                               dry_run=dry_run, commit=commit)

    available = _apps_of(repo, source)
    if all_apps:
        if apps:
            raise PromoteError("Name apps or pass --all, not both.")
        apps = available
        if not apps:
            raise PromoteError(f"Environment {source!r} has no app overlays (apps/{source}/<app>/kustomization.yaml).")
    elif not apps:
        raise PromoteError("Name at least one app to promote, or pass --all.")
    for app in apps:
        if app not in available:
            known = ", ".join(available) or "none"
            raise PromoteError(f"Unknown app {app!r} in {source!r}; its apps are {known}.")
    apps = list(dict.fromkeys(apps))
    for app in apps:
        if not (repo / overlay(target, app)).is_file():
            raise PromoteError(f"App {app!r} has no overlay in {target!r} ({overlay(target, app)}); "
                               f"add it there first, then promote.")

    git = _is_git(repo)
    if commit and not git:
        raise PromoteError(f"{repo} is not a git repository, so --commit cannot commit; promote without it.")
    files = [overlay(target, app) for app in apps]
    if git and (dirty := _dirty(repo, files)):
        raise PromoteError(f"{', '.join(dirty)} has uncommitted changes; commit or stash them first.")

    results: list[AppPromotion] = []
    new_texts: dict[str, str] = {}
    for app in apps:
        promotion, text = _promote_app(repo, app, source, target)
        results.append(promotion)
        if promotion.changed:
            new_texts[promotion.file] = text
    result = PromoteResult(source, target, results, dry_run=dry_run)
    if dry_run or not new_texts:
        return result
    for name, text in new_texts.items():
        (repo / name).write_bytes(text.encode("utf-8"))
    if commit:
        result.commit = _commit(repo, list(new_texts), commit_message(result))
    return result


def commit_message(result: PromoteResult) -> str:
    """Conventional commit: `chore(promote): podinfo 6.7.2 from dev to staging`."""
    what = ", ".join([f"{a.app} {a.version}" for a in result.changed]
                     + [f"{c.chart} chart {c.version}" for c in result.charts if c.changed])
    return f"chore(promote): {what} from {result.source} to {result.target}"


# --- reading the repo --------------------------------------------------------------------------------


def _environments(repo: Path) -> list[str]:
    answers_file = repo / ANSWERS_FILE
    try:
        answers = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PromoteError(f"{repo} has no {ANSWERS_FILE}; run promote in a repository generated by gitops-forge.") from None
    except (OSError, yaml.YAMLError) as error:
        raise PromoteError(f"{answers_file} cannot be read ({error}); fix it and run again.") from None
    environments = answers.get("environments") if isinstance(answers, dict) else None
    if not isinstance(environments, list) or not environments:
        raise PromoteError(f"{ANSWERS_FILE} lists no environments; run promote in a repository generated by gitops-forge.")
    return [str(e) for e in environments]


def _apps_of(repo: Path, env: str) -> list[str]:
    """Apps with an overlay in the environment (sub-directories of apps/<env>/ with a kustomization.yaml)."""
    directory = repo / "apps" / env
    if not directory.is_dir():
        return []
    return sorted(d.name for d in directory.iterdir() if (d / "kustomization.yaml").is_file())


def _load(path: Path, text: str):
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="rt").load(text)
    except YAMLError as error:
        raise PromoteError(f"{path} is not valid YAML ({str(error).splitlines()[0]}); fix it first.") from None


def _images(path: Path, repo: Path, text: str) -> list:
    data = _load(path, text)
    entries = data.get("images") if isinstance(data, dict) else None
    rel = path.relative_to(repo).as_posix()
    if not entries:
        raise PromoteError(f"{rel} has no `images:` entry, so there is no version to promote.")
    return [e for e in entries if isinstance(e, dict) and e.get("name")]


def _versions(entry) -> dict[str, str]:
    return {key: str(entry[key]) for key in VERSION_KEYS if entry.get(key) not in (None, "")}


def _label(versions: dict[str, str]) -> str:
    tag, digest = versions.get("newTag", ""), versions.get("digest", "")
    return f"{tag}@{digest}" if tag and digest else tag or digest or "(no tag)"


def _promote_app(repo: Path, app: str, source: str, target: str) -> tuple[AppPromotion, str]:
    src_path, dst_path = repo / overlay(source, app), repo / overlay(target, app)
    src_entries = _images(src_path, repo, src_path.read_text(encoding="utf-8"))
    text = dst_path.read_bytes().decode("utf-8")
    dst_entries = {str(e["name"]): e for e in _images(dst_path, repo, text)}
    version = _label(_versions(src_entries[0])) if src_entries else "(no tag)"
    promotion = AppPromotion(app, overlay(target, app), version)
    edits: list[_Edit] = []
    for entry in src_entries:
        name = str(entry["name"])
        if name not in dst_entries:
            raise PromoteError(f"{overlay(target, app)} has no `images:` entry named {name!r}; "
                               f"add one like {overlay(source, app)}'s first.")
        wanted, have = _versions(entry), _versions(dst_entries[name])
        if wanted == have:
            continue
        promotion.images.append(ImageChange(name, have, wanted))
        edits += _entry_edits(dst_entries[name], wanted, text)
    return promotion, _apply(text, edits)


# --- editing text in place ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edit:
    start: int  # offset in the text
    end: int
    replacement: str


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for match in re.finditer("\n", text):
        offsets.append(match.end())
    return offsets


def _scalar_end(line: str, col: int) -> int:
    """End column of the scalar that starts at ``col`` (a quoted string, or a plain one up to a comment)."""
    quote = line[col] if col < len(line) else ""
    if quote in "\"'":
        end = line.find(quote, col + 1)
        while quote == "'" and end != -1 and line[end + 1 : end + 2] == "'":  # '' escapes a quote
            end = line.find(quote, end + 2)
        return len(line) if end == -1 else end + 1
    comment = re.search(r"\s#", line[col:])
    stop = col + comment.start() if comment else len(line.rstrip("\r\n"))
    return col + len(line[col:stop].rstrip())


def _styled(value: str, old_token: str) -> str:
    """The new value written the way the old one was: same quotes, or plain when that stays a string."""
    if old_token.startswith('"'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if old_token.startswith("'"):
        return "'" + value.replace("'", "''") + "'"
    try:
        plain = yaml.safe_load(value) == value and not re.search(r":\s|\s#|^\s|\s$", value)
    except yaml.YAMLError:
        plain = False
    if plain and old_token:
        return value
    return '"' + value + '"'


def _entry_edits(entry, wanted: dict[str, str], text: str) -> list[_Edit]:
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # ruamel counts lines by "\n" only
    offsets = _line_offsets(text)
    edits: list[_Edit] = []
    keys = list(entry.keys())
    for key in VERSION_KEYS:
        if key in entry and key in wanted:  # change the value in place
            line_no, col = entry.lc.value(key)
            line = lines[line_no]
            if line[col:col + 1] in ("|", ">"):
                raise PromoteError(f"The {key} of image {entry['name']!r} is a block scalar; write it on one line.")
            end = _scalar_end(line, col)
            token = line[col:end]
            edits.append(_Edit(offsets[line_no] + col, offsets[line_no] + end, _styled(wanted[key], token)))
        elif key in entry:  # the source has none: drop the line (a stale digest would win over the tag)
            line_no, _ = entry.lc.key(key)
            edits.append(_Edit(offsets[line_no], offsets[line_no] + len(lines[line_no]), ""))
    # A new tag is quoted (1.10 would read as a number), a new digest is written plain, as Renovate does.
    styles = {"newTag": '"', "digest": "plain"}
    added = [f"{key}: {_styled(wanted[key], styles[key])}" for key in VERSION_KEYS if key in wanted and key not in entry]
    if added:  # under the entry's last key, indented like it
        line_no, key_col = entry.lc.key(keys[-1])
        line = lines[line_no]
        at = offsets[line_no] + len(line)
        newline = "" if line.endswith("\n") else "\n"
        edits.append(_Edit(at, at, newline + "".join(f"{' ' * key_col}{item}\n" for item in added)))
    return edits


def _apply(text: str, edits: list[_Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.replacement + text[edit.end :]
    return text


# --- platform charts ---------------------------------------------------------------------------------
# infrastructure/environments/<env>/<layer>/kustomization.yaml pins each chart with one JSON patch whose
# target is the chart's HelmRelease/OCIRepository (Flux) or Application (Argo CD) and whose `op: replace`
# carries the version. The patch is a block scalar (`patch: |-`): its lines are file lines, so the value
# is found from ruamel's position of the block and rewritten on that one line.


def _chart_overlays(repo: Path, env: str) -> list[str]:
    directory = repo / "infrastructure" / "environments" / env
    if not directory.is_dir():
        return []
    return sorted(p.relative_to(repo).as_posix() for p in directory.glob("*/kustomization.yaml"))


@dataclass
class _ChartPin:
    file: str
    version: str
    line: int  # 0-based file line of the `value:` line
    lines: list[str] = field(repr=False, default_factory=list)


def _chart_pins(repo: Path, env: str) -> dict[str, _ChartPin]:
    pins: dict[str, _ChartPin] = {}
    for rel in _chart_overlays(repo, env):
        path = repo / rel
        text = path.read_bytes().decode("utf-8")
        data = _load(path, text)
        patches = data.get("patches") if isinstance(data, dict) else None
        lines = re.findall(r"[^\n]*\n|[^\n]+$", text)
        for entry in patches or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("patch"), str):
                continue
            target = entry.get("target")
            name = target.get("name") if isinstance(target, dict) else None
            if not name:
                continue
            try:
                ops = yaml.safe_load(entry["patch"])
            except yaml.YAMLError:
                continue
            replaces = [op for op in ops or [] if isinstance(op, dict) and op.get("op") == "replace"] \
                if isinstance(ops, list) else []
            if len(replaces) != 1 or not isinstance(replaces[0].get("value"), str):
                continue
            line_no, col = entry.lc.value("patch")
            if lines[line_no][col:col + 1] != "|":
                raise PromoteError(f"The patch of {name!r} in {rel} is not a `|` block; write it as `patch: |-`.")
            block = entry["patch"].split("\n")
            replace_at = next(i for i, line in enumerate(block) if re.match(r"\s*-\s*op:\s*['\"]?replace\b", line))
            value_at = next((i for i in range(replace_at, len(block))
                             if re.match(r"\s*(-\s*)?value:", block[i])), None)
            if value_at is None:
                continue
            pins[str(name)] = _ChartPin(rel, replaces[0]["value"], line_no + 1 + value_at, lines)
    return pins


def _promote_charts(repo: Path, charts: list[str], source: str, target: str,
                    *, dry_run: bool, commit: bool) -> PromoteResult:
    source_pins, target_pins = _chart_pins(repo, source), _chart_pins(repo, target)
    for chart in charts:
        if chart not in source_pins:
            known = ", ".join(sorted(source_pins)) or "none"
            raise PromoteError(f"Unknown chart {chart!r} in {source!r}; its charts are {known}.")
        if chart not in target_pins:
            raise PromoteError(f"Chart {chart!r} has no version patch in {target!r} "
                               f"(infrastructure/environments/{target}/); add one like {source!r}'s first.")
    git = _is_git(repo)
    if commit and not git:
        raise PromoteError(f"{repo} is not a git repository, so --commit cannot commit; promote without it.")
    files = list(dict.fromkeys(target_pins[c].file for c in charts))
    if git and (dirty := _dirty(repo, files)):
        raise PromoteError(f"{', '.join(dirty)} has uncommitted changes; commit or stash them first.")

    result = PromoteResult(source, target, [], dry_run=dry_run)
    edits: dict[str, list[_Edit]] = {}
    for chart in charts:
        pin, version = target_pins[chart], source_pins[chart].version
        result.charts.append(ChartPromotion(chart, pin.file, version, pin.version))
        if version == pin.version:
            continue
        offsets = _line_offsets("".join(pin.lines))
        line = pin.lines[pin.line]
        col = re.match(r"\s*(-\s*)?value:\s*", line).end()
        end = _scalar_end(line, col)
        start = offsets[pin.line]
        edits.setdefault(pin.file, []).append(_Edit(start + col, start + end, _styled(version, line[col:end])))
    if dry_run or not edits:
        return result
    for name, file_edits in edits.items():
        text = (repo / name).read_bytes().decode("utf-8")
        (repo / name).write_bytes(_apply(text, file_edits).encode("utf-8"))
    if commit:
        result.commit = _commit(repo, list(edits), commit_message(result))
    return result


# --- git ---------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def _is_git(repo: Path) -> bool:
    return _git(repo, "rev-parse", "--is-inside-work-tree").stdout.strip() == "true"


def _dirty(repo: Path, files: list[str]) -> list[str]:
    status = _git(repo, "status", "--porcelain", "--", *files).stdout
    return [line[3:] for line in status.splitlines() if line.strip()]


def _commit(repo: Path, files: list[str], message: str) -> str:
    done = _git(repo, "commit", "--quiet", "-m", message, "--", *files)
    if done.returncode != 0:
        raise PromoteError(f"git commit failed ({(done.stderr or done.stdout).strip().splitlines()[-1]}); "
                           "the overlays are changed, commit them by hand.")
    return _git(repo, "rev-parse", "HEAD").stdout.strip()
