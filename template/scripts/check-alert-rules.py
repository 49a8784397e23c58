#!/usr/bin/env python3
"""Check the rule groups of every PrometheusRule in this repository with promtool.

Usage: python3 scripts/check-alert-rules.py [DIRECTORY]   (needs PyYAML and promtool on PATH)

A PrometheusRule's `spec` has the layout of a Prometheus rule file, so each one is written to a
temporary file and handed to `promtool check rules`. Exits 0 when there is no PrometheusRule,
1 when promtool rejects a rule, 2 when promtool is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


def prometheus_rules(root: Path) -> list[tuple[str, dict]]:
    """(where, spec) of every PrometheusRule under root; hidden directories are skipped."""
    found = []
    for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            documents = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError:
            continue  # yamllint reports files that do not parse
        for index, document in enumerate(documents):
            if (
                isinstance(document, dict)
                and document.get("kind") == "PrometheusRule"
                and str(document.get("apiVersion", "")).startswith("monitoring.coreos.com/")
            ):
                name = (document.get("metadata") or {}).get("name", "?")
                found.append((f"{path.relative_to(root)} (document {index + 1}, {name})", document.get("spec") or {}))
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else ".").resolve()
    rules = prometheus_rules(root)
    if not rules:
        print("No PrometheusRule found: nothing to check.")
        return 0
    promtool = shutil.which("promtool")
    if not promtool:
        print("promtool is not on PATH: install Prometheus' promtool and run again.", file=sys.stderr)
        return 2
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for number, (where, spec) in enumerate(rules):
            rule_file = Path(tmp) / f"rules-{number}.yaml"
            rule_file.write_text(yaml.safe_dump(spec, sort_keys=False))
            run = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True)
            if run.returncode == 0:
                print(f"ok      {where}")
            else:
                failed += 1
                print(f"FAILED  {where}")
                print((run.stdout + run.stderr).replace(str(rule_file), where).rstrip())
    print(f"{len(rules) - failed} of {len(rules)} PrometheusRule(s) passed promtool.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
