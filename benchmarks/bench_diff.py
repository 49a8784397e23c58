"""Time `gitops-forge diff` where one app changed, against what issue 14 says it may cost: validating that app's
entrypoints plus setting up the git worktree of the base.

    python benchmarks/bench_diff.py [--apps 200] [--repeat 3] [--schemas DIR]

Repo: `gitops-forge new --data-file` with N apps over 3 teams, 3 environments and one cluster per environment,
committed; then app-0's dev tag changes (committed, as a release pipeline would) and `gitops-forge promote app-0
--from dev` promotes it to staging in the working tree.

Measured in the same run, interleaved, median of --repeat runs; each command is a subprocess, interpreter
start-up included:
  diff       `gitops-forge diff REPO --format json`
  validate   `validate_repo` of app-0's entrypoints (every environment's overlay): discovery narrowed to them,
             then everything validate does (schemas, render, references, policy), no cache, no schema catalog
  worktree   `git worktree add --detach` of HEAD and its removal: the set-up the budget names (diff itself
             writes only the base's files its builds read, in a worktree of its own)
Budget: validate + worktree; diff should not exceed it. For scale (once): discovery of every entrypoint,
rendering app-0's entrypoints, and validate of the whole repo, in-process. Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_validate import answers  # noqa: E402
from generator import render  # noqa: E402
from generator.validate import default_schema_locations, validate_repo  # noqa: E402

CLI = [sys.executable, "-c", "import sys; from generator.cli import app; sys.argv[0] = 'gitops-forge'; app()"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# validate_repo with discovery narrowed to one app's entrypoints (argv: repo, app, schema locations...).
VALIDATE_APP = """
import sys
from pathlib import Path
import generator.validate as validate
repo, app, schemas = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
every = validate.discover_entrypoints
validate.discover_entrypoints = lambda path: [ep for ep in every(path) if Path(ep.rel).name == app]
report = validate.validate_repo(repo, schema_locations=schemas, schema_catalog="")
if not report.entrypoints or report.render_errors:
    sys.exit(f"validate of {app}: {len(report.entrypoints)} entrypoint(s), render errors {report.render_errors}")
"""


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def promote_one(repo: Path, app: str, source: str, env: dict[str, str]) -> None:
    """Release a new tag of ``app`` in ``source`` (committed), then `gitops-forge promote` it to the next
    environment in the working tree: the one-app change diff is timed on."""
    overlay = repo / "apps" / source / app / "kustomization.yaml"
    text = overlay.read_text()
    tag = next(line.split(":", 1)[1].strip().strip('"') for line in text.splitlines() if line.strip().startswith("newTag:"))
    overlay.write_text(text.replace(f'newTag: "{tag}"', f'newTag: "{tag}-1"'))
    git(repo, "commit", "-qam", f"release {app} {tag}-1 in {source}", env=env)
    subprocess.run([*CLI, "promote", app, "--from", source, "--path", str(repo)], check=True, capture_output=True, env=env)


def diff_budget(repo: Path, app: str, schemas: list[str], env: dict[str, str], repeat: int = 1) -> dict:
    """Seconds (median of ``repeat`` interleaved runs) of `gitops-forge diff` on ``repo`` and of its budget:
    validate of ``app``'s entrypoints plus git worktree set-up; and the diff's JSON of the last run."""
    result: dict = {}

    def diff() -> None:
        run = subprocess.run([*CLI, "diff", str(repo), "--format", "json"], capture_output=True, text=True, env=env)
        if run.returncode != 0:
            raise SystemExit(f"gitops-forge diff failed: {run.stderr}")
        result.update(json.loads(run.stdout))

    def validate_app() -> None:
        run = subprocess.run([sys.executable, "-c", VALIDATE_APP, str(repo), app, *schemas], capture_output=True,
                             text=True, env=env)
        if run.returncode != 0:
            raise SystemExit(f"validate of {app} failed: {run.stderr[-3000:]}")

    with tempfile.TemporaryDirectory(prefix="bench-diff-worktree-") as scratch:
        def worktree() -> None:
            checkout = Path(scratch) / "wt"
            git(repo, "worktree", "add", "--detach", "--quiet", str(checkout), "HEAD")
            git(repo, "worktree", "remove", "--force", str(checkout))

        times: dict[str, list[float]] = {"diff": [], "validate": [], "worktree": []}
        for _ in range(repeat):  # interleaved: the machine's other work weighs on each figure alike
            for name, function in (("diff", diff), ("validate", validate_app), ("worktree", worktree)):
                times[name].append(timed(function))
    figures = {name: statistics.median(values) for name, values in times.items()}
    return {**figures, "budget": figures["validate"] + figures["worktree"], "result": result}


def budget_line(figures: dict) -> str:
    verdict = "ok" if figures["diff"] <= figures["budget"] else "OVER"
    return (f"diff {figures['diff']:.2f} s, budget {figures['budget']:.2f} s (validate the app's entrypoints "
            f"{figures['validate']:.2f} s + git worktree {figures['worktree']:.2f} s): {verdict}")


def generate(apps: int, scratch: Path) -> Path:
    data = scratch / "answers.yml"
    data.write_text(yaml.safe_dump(answers(apps)))
    repo = scratch / "repo"
    subprocess.run([*CLI, "new", str(repo), "--defaults", "--data-file", str(data)], check=True, capture_output=True, env=ENV)
    promote_one(repo, "app-0", "dev", ENV)
    return repo


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--schemas", default=None)
    args = parser.parse_args()
    locations = [args.schemas] if args.schemas else default_schema_locations()
    with tempfile.TemporaryDirectory(prefix="bench-diff-") as tmp:
        scratch = Path(tmp)
        repo = generate(args.apps, scratch)
        figures = diff_budget(repo, "app-0", locations, ENV, args.repeat)
        result = figures["result"]
        app_eps = [ep for ep in render.discover_entrypoints(repo) if Path(ep.rel).name == "app-0"]
        rows = {
            "diff (one app promoted)": figures["diff"],
            "validate app-0's entrypoints": figures["validate"],
            "git worktree add + remove": figures["worktree"],
            "budget (validate + worktree)": figures["budget"],
            "discover every entrypoint": timed(lambda: render.discover_entrypoints(repo)),
            "render app-0's entrypoints": timed(lambda: render.render_repo(repo, app_eps)),
            "validate the whole repo": timed(lambda: validate_repo(repo, schema_locations=locations, schema_catalog="")),
        }
        print(f"{args.apps} apps, {len(app_eps)} entrypoints of app-0; diff rendered "
              f"{result['entrypoints']['rendered']} of {result['entrypoints']['total']} entrypoints "
              f"(both revisions), totals {result['totals']}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for name, seconds in rows.items():
            print(f"  {name:32} {seconds:7.2f} s")
        print(budget_line(figures))


if __name__ == "__main__":
    main()
