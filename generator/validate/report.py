"""Print a validation report: text for people (Rich), JSON for scripts, SARIF 2.1.0 for code scanning.

The same problem in an object that several entrypoints build (``infrastructure/`` applied by three clusters)
is one item here, listing its entrypoints; the JSON output keeps the report as it is (``Report.to_dict()``).
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import Finding, Report, catalog
from .checks import MISSING_SCHEMA, RENDER
from .kustomizations import DEPRECATED_FIELD

FORMATS = ("text", "json", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/gitops-forge/gitops-forge/blob/main/docs/validate.md"
# Checks GitHub code scanning should file under security (Pod Security, secrets, RBAC, Argo CD projects).
SECURITY_CHECKS = {f"GF{n:03d}" for n in (*range(1, 10), 12, 13, 14, 15, 16, 18)}


@dataclass
class Item:
    """One problem to show: a finding, a render error or a missing schema, with every entrypoint it came from."""

    check: str
    level: str  # "error" | "warning" | "note"
    source: str | None
    subject: str  # "Deployment shop/web", or the entrypoint for a render error
    message: str
    hint: str | None = None  # a word to find the line with (a field name, a container name)
    kind: str = ""
    name: str = ""
    entrypoints: list[str] = field(default_factory=list)


def _subject(kind: str, namespace: str | None, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


# The field whose line a finding of these checks points at.
_FIELDS = {
    "GF017": "replicas", "GF018": "project", "GF019": "apiVersion", "GF202": "dependsOn", "GF203": "path",
    "GF204": "selector", "GF205": "selector", "GF206": "scaleTargetRef", "GF207": "podSelector", "GF208": "project",
    "GF014": "rules", "GF015": "rules", "GF016": "subjects",
}


def _hint(f: Finding) -> str | None:
    """A word to find the line of the mistake with: a field name, or a container/volume name."""
    if f.check == "GF100":
        field = f.message.split(":", 1)[0]
        return re.split(r"[.\[]", field)[-1].strip('"]') or None
    if f.check == "GF021":
        return f.message.split(": ", 1)[1].split(" ", 1)[0]
    if f.check == "GF201":
        return f.message.split(": ", 1)[1].split(" ", 1)[0].rsplit(".", 1)[-1]
    if m := re.search(r"(?:container|volume) '([^']+)'", f.message):
        return m.group(1)
    return _FIELDS.get(f.check)


def items(report: Report) -> list[Item]:
    merged: dict[tuple, Item] = {}

    def add(item: Item, entrypoint: str) -> None:
        key = (item.check, item.source, item.subject, item.message, item.level)
        existing = merged.setdefault(key, item)
        if entrypoint not in existing.entrypoints:
            existing.entrypoints.append(entrypoint)

    for e in report.render_errors:
        add(Item(RENDER.id, "error", e.source, f"entrypoint {e.entrypoint}", e.message), e.entrypoint)
    for f in report.findings:
        subject = "kustomization" if f.check == DEPRECATED_FIELD.id else _subject(f.kind, f.namespace, f.name)
        add(Item(f.check, f.severity, f.source, subject, f.message, _hint(f), f.kind, f.name), f.entrypoint)
    level = "note" if report.ignore_missing_schemas else "error"
    for m in report.missing_schemas:
        add(Item(MISSING_SCHEMA.id, level, m.source, _subject(m.kind, m.namespace, m.name),
                 f"{m.api_version} {m.kind} was not validated: {m.reason}", None, m.kind, m.name), m.entrypoint)
    return sorted(merged.values(), key=lambda i: (i.source or "~", i.check, i.subject, i.message))


# --- text --------------------------------------------------------------------------------------------

_MARK = {"error": ("✗", "red"), "warning": ("!", "yellow"), "note": ("·", "cyan")}


def _schema_sources(report: Report) -> list[str]:
    """Where CRD schemas were looked up, in order."""
    return [*report.schema_locations, *(["bundled"] if report.bundled_schemas else []), "the repo's CRDs",
            *([report.schema_catalog] if report.schema_catalog else [])]


def format_text(report: Report, repo: str = ".", color: bool = False, width: int | None = None) -> str:
    from rich.console import Console
    from rich.markup import escape

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, highlight=False, soft_wrap=True,
                      width=width or 120)
    out = console.print
    c = report.counts
    out(f"[bold]gitops-forge validate[/] {escape(repo)}: {c['entrypoints']} entrypoint(s), {c['objects']} object(s); "
        f"schemas: Kubernetes {report.kubernetes_version}, {escape(', '.join(_schema_sources(report)))}")
    if report.skipped_checks:
        out(f"[dim]Skipped checks: {', '.join(report.skipped_checks)}[/]")
    all_items = items(report)
    problems = [i for i in all_items if i.check != MISSING_SCHEMA.id]
    by_source: dict[str, list[Item]] = {}
    for item in problems:
        by_source.setdefault(item.source or "(source unknown)", []).append(item)
    for source, group in by_source.items():
        out()
        out(f"[bold]{escape(source)}[/]")
        for item in group:
            mark, colour = _MARK[item.level]
            where = ""
            if item.entrypoints and item.check not in (RENDER.id, DEPRECATED_FIELD.id):
                label = "entrypoint" if len(item.entrypoints) == 1 else "entrypoints"
                where = f" [dim]({label} {escape(', '.join(item.entrypoints))})[/]"
            out(f"  [{colour}]{mark} {item.check}[/] {escape(item.subject)}: {escape(item.message)}{where}")
    missing = [i for i in all_items if i.check == MISSING_SCHEMA.id]
    if missing:
        out()
        state = "allowed by --ignore-missing-schemas" if report.ignore_missing_schemas else "an error"
        out(f"[bold]{len(missing)} object(s) had no schema and were not validated[/] ({state}):")
        for item in missing:
            out(f"  [cyan]·[/] {escape(item.subject)} ({escape(item.message.split(' was not', 1)[0])}) "
                f"in {escape(item.source or '?')}")
        reasons = sorted({m.reason for m in report.missing_schemas})
        for reason in reasons[:3]:
            out(f"  [dim]{escape(reason)}[/]")
        out(f"  Kinds that need a --schema-location (-s): {escape(', '.join(report.kinds_without_schema))}")
    seen = []
    for item in all_items:
        if item.check not in seen and (item.check != MISSING_SCHEMA.id or not report.ignore_missing_schemas):
            seen.append(item.check)
    if seen:
        checks = catalog()
        out()
        out("[bold]How to fix[/]")
        for check_id in sorted(seen):
            out(f"  {check_id} {escape(checks[check_id].message)}: {escape(checks[check_id].fix)}")
        out("  [dim]To accept a finding on purpose, annotate the object: gitops-forge.io/skip-checks: \"GF0xx\" "
            "(or pass --skip GF0xx for the whole run).[/]")
    out()
    errors = sum(i.level == "error" for i in all_items)
    warnings = sum(i.level == "warning" for i in all_items)
    if report.ok:
        tail = f", {warnings} warning(s)" if warnings else ""
        out(f"[green]✓ OK[/]: no errors in {c['entrypoints']} entrypoint(s){tail}.")
    else:
        out(f"[red]✗ {errors} error(s)[/], {warnings} warning(s) ({c['render_errors']} entrypoint(s) do not build, "
            f"{len(missing)} object(s) without schema).")
    return buffer.getvalue()


# --- JSON --------------------------------------------------------------------------------------------


def format_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


# --- SARIF -------------------------------------------------------------------------------------------


class _Lines:
    """Finds the line of an object (or of a field in it) in a source file, for SARIF regions."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.files: dict[str, list[str] | None] = {}

    def find(self, source: str | None, kind: str, name: str, hint: str | None) -> int | None:
        if not source:
            return None
        if source not in self.files:
            try:
                self.files[source] = (self.repo / source).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                self.files[source] = None
        lines = self.files[source]
        if not lines:
            return None
        # The document holding the object: the one with its kind and name.
        starts = [0] + [n + 1 for n, line in enumerate(lines) if line.startswith("---")]
        ends = starts[1:] + [len(lines)]
        start, end = 0, len(lines)
        for s, e in zip(starts, ends):
            doc = lines[s:e]
            if kind and any(re.match(rf"^kind:\s*['\"]?{re.escape(kind)}['\"]?\s*$", line) for line in doc) and (
                not name or any(re.search(rf"^\s+name:\s*['\"]?{re.escape(name)}['\"]?\s*(#.*)?$", line) for line in doc)
            ):
                start, end = s, e
                break
        patterns = []
        if hint:
            quoted = rf"['\"]?{re.escape(hint)}['\"]?\s*(#.*)?$"
            patterns += [rf"^\s*-\s+name:\s*{quoted}", rf"^\s*(- )?{re.escape(hint)}\s*:"]
        patterns.append(r"^kind:")
        for pattern in patterns:
            for n in range(start, end):
                if re.search(pattern, lines[n]):
                    return n + 1
        return start + 1 if (start, end) != (0, len(lines)) else None


def format_sarif(report: Report, repo: str | Path = ".", version: str = "") -> str:
    checks = catalog()
    rule_ids = list(checks)
    rules = [
        {
            "id": c.id,
            "name": re.sub(r"[^A-Za-z0-9]+", " ", c.message).title().replace(" ", ""),
            "shortDescription": {"text": c.message},
            "fullDescription": {"text": f"{c.message}. {c.fix}"},
            "help": {"text": c.fix, "markdown": f"**{c.id}: {c.message}**\n\n{c.fix}"},
            "helpUri": f"{INFORMATION_URI}#{c.id.lower()}",
            "defaultConfiguration": {"level": c.severity},
            "properties": {"tags": ["gitops", "kubernetes"] + (["security"] if c.id in SECURITY_CHECKS else [])},
        }
        for c in checks.values()
    ]
    lines = _Lines(Path(repo))
    results = []
    for item in items(report):
        location: dict = {"artifactLocation": {"uri": item.source or (item.entrypoints[0] if item.entrypoints else "."),
                                               "uriBaseId": "%SRCROOT%"}}
        line = lines.find(item.source, item.kind if item.kind else "", item.name, item.hint)
        if line:
            location["region"] = {"startLine": line}
        results.append({
            "ruleId": item.check,
            "ruleIndex": rule_ids.index(item.check),
            "level": item.level,
            "message": {"text": f"{item.subject}: {item.message}"},
            "locations": [{"physicalLocation": location}],
            "properties": {"entrypoints": item.entrypoints},
        })
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "gitops-forge",
                "semanticVersion": version or None,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }},
            "results": results,
            "properties": {"counts": report.counts, "ok": report.ok},
        }],
    }
    if not version:
        del sarif["runs"][0]["tool"]["driver"]["semanticVersion"]
    return json.dumps(sarif, indent=2) + "\n"


def render(report: Report, fmt: str, repo: str | Path = ".", color: bool | None = None, version: str = "") -> str:
    """The report in one of FORMATS. Text is coloured when ``color`` says so; by default when stdout is a
    terminal and NO_COLOR is not set."""
    if fmt == "json":
        return format_json(report)
    if fmt == "sarif":
        return format_sarif(report, repo, version)
    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return format_text(report, str(repo), color=color)
