"""Write docs/answers.md from copier.yml, so the answers reference cannot drift from the questions.

    python -m generator.docs_answers > docs/answers.md

Everything comes from copier.yml: the order, help texts, types, choices and defaults of the questions, the
comment block written directly above a question (its longer explanation), and the messages of its validator
(the rules it enforces). tests/test_docs.py fails when the committed file differs from this output.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from . import questions, template_source

REGENERATE = "python -m generator.docs_answers > docs/answers.md"
_QUESTION_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*):\s*$")
_EXPRESSION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_TAG = re.compile(r"\{%-?.*?-?%\}")
_TYPES = {"str": "text", "yaml": "YAML", "bool": "yes/no", "int": "integer", "float": "number", "json": "JSON"}


def copier_yml() -> Path:
    """The checkout's copier.yml when run from a checkout, else the one this installation ships."""
    checkout = template_source.CHECKOUT_ROOT / "copier.yml"
    return checkout if checkout.exists() else template_source.questions_file()


def explanations(text: str) -> dict[str, str]:
    """The comment block directly above each top-level question (no blank line between), as one paragraph."""
    lines = text.splitlines()
    found: dict[str, str] = {}
    for number, line in enumerate(lines):
        match = _QUESTION_LINE.match(line)
        if not match or match.group(1).startswith("_"):
            continue
        block: list[str] = []
        for previous in reversed(lines[:number]):
            if not previous.startswith("#"):
                break
            block.insert(0, previous.lstrip("#").strip())
        if block:
            found[match.group(1)] = " ".join(part for part in block if part)
    return found


def rules(name: str, validator: str) -> list[str]:
    """The messages a validator can produce, with the answer's value shown as `…`, in order, once each.

    A validator is Jinja whose text between the tags is its messages; copier.yml folds it onto one line.
    """
    messages: list[str] = []
    for segment in _TAG.split(validator):
        message = " ".join(segment.split())
        if not _EXPRESSION.sub("", message).strip():
            continue  # whitespace, or a bare expression such as {{- ns.error -}}
        message = _EXPRESSION.sub("…", message.replace("{{ where }}", f"{name}[i]"))
        if message not in messages:
            messages.append(message)
    return messages


def _kind(spec: dict[str, Any]) -> str:
    if "choices" in spec:
        return "choice"
    return _TYPES.get(str(spec.get("type", "str")), str(spec.get("type")))


def _inline(value: Any) -> str:
    if isinstance(value, str):
        return value
    dumped = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return dumped.removesuffix("...").strip()  # YAML ends a bare scalar with a document-end marker


def _default(spec: dict[str, Any], computed: Any) -> str:
    default = spec.get("default")
    if isinstance(default, str) and "{{" in default:
        return f"computed from earlier answers: `{' '.join(default.split())}`"
    return f"`{_inline(computed)}`"


def render(path: Path | None = None) -> str:
    path = path or copier_yml()
    text = path.read_text()
    specs = questions.load(path)
    prose = explanations(text)
    defaults = questions.complete({}, specs)

    out = [
        "# Answers reference",
        "",
        f"<!-- Generated from copier.yml by `{REGENERATE}`. Do not edit by hand. -->",
        "",
        "Every question of the gitops-forge template, in the order it is asked. A generated repository records",
        "its answers in `.copier-answers.yml`; change them with `gitops-forge add …` and `gitops-forge remove …`,",
        "never by hand. To answer without prompts, pass `--data NAME=VALUE` (YAML for list answers, text",
        "otherwise) or `--data-file answers.yml` to `gitops-forge new`; `--defaults` takes the default of every",
        "answer not given (`project_name` then defaults to the destination directory's name).",
        "",
        "| Answer | Type | Asks |",
        "| --- | --- | --- |",
    ]
    for name, spec in specs.items():
        out.append(f"| [`{name}`](#{name}) | {_kind(spec)} | {spec.get('help', '')} |")
    for name, spec in specs.items():
        out += ["", f"## `{name}`", "", f"{spec.get('help', '').rstrip('.')}.", ""]
        if name in prose:
            out += [prose[name], ""]
        out.append(f"- Type: {_kind(spec)}{' (' + _TYPES.get(str(spec.get('type')), '') + ')' if 'choices' in spec else ''}")
        if "choices" in spec:
            listed = ", ".join(f"`{value}` ({label})" for label, value in spec["choices"].items())
            out.append(f"- Choices: {listed}")
        out.append(f"- Default: {_default(spec, defaults[name])}")
        messages = rules(name, spec.get("validator", ""))
        if messages:
            out.append("- Rejected with one of these messages:")
            out += [f"  - `{message}`" for message in messages]
        elif "choices" in spec:
            out.append("- Any other value is rejected.")
    out += [
        "",
        "## Example answers file",
        "",
        "The defaults of every question, as a file for `gitops-forge new DIR --data-file answers.yml`:",
        "",
        "```yaml",
        yaml.safe_dump(defaults, sort_keys=False, default_flow_style=None, width=100).rstrip(),
        "```",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.stdout.write(render(Path(argv[0]) if argv else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
