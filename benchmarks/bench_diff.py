"""Time `gitops-forge diff` where one app changed, against what it should cost: validating that app's
entrypoints plus setting up the git worktree of the base.

    python benchmarks/bench_diff.py [--apps 200] [--repeat 3] [--schemas DIR]

Repo: `gitops-forge new --data-file` with N apps over 3 teams, 3 environments and one cluster per environment,
committed; then app-0's staging tag changes in the working tree (what `gitops-forge promote` does).

Measured (median of --repeat runs, each a subprocess with interpreter start-up included):
  diff      `gitops-forge diff REPO --format json`
  discover  `discover_entrypoints` of the repo, in-process (every validate run starts with it)
  render    `render_repo` of app-0's entrypoints only, in-process
  worktree  `git worktree add --detach` of HEAD and its removal
  validate  `validate_repo` of the whole repo, for scale
Target (issue 14): diff <= start-up + discover + render + worktree. Timings live here, never in tests.
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


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def generate(apps: int, scratch: Path) -> Path:
    data = scratch / "answers.yml"
    data.write_text(yaml.safe_dump(answers(apps)))
    repo = scratch / "repo"
    subprocess.run([*CLI, "new", str(repo), "--defaults", "--data-file", str(data)], check=True, capture_output=True, env=ENV)
    overlay = repo / "apps/staging/app-0/kustomization.yaml"
    overlay.write_text(overlay.read_text().replace('newTag: "1.0.0"', 'newTag: "1.0.1"'))
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
        result: dict = {}

        def diff() -> None:
            run = subprocess.run([*CLI, "diff", str(repo), "--format", "json"], capture_output=True, text=True, env=ENV)
            if run.returncode != 0:
                raise SystemExit(f"gitops-forge diff failed: {run.stderr}")
            result.update(json.loads(run.stdout))

        def start_only() -> None:
            subprocess.run([*CLI, "--version"], check=True, capture_output=True, env=ENV)

        app_eps = [ep for ep in render.discover_entrypoints(repo) if ep.rel.endswith("/app-0")]

        def validate_app() -> None:
            # validate_repo renders every entrypoint; the app's share is rendering its entrypoints and checking them.
            results = render.render_repo(repo, app_eps)
            assert not [r.error for r in results if r.error]

        def discover() -> None:
            render.discover_entrypoints(repo)

        def validate_all() -> None:
            validate_repo(repo, schema_locations=locations)

        def worktree() -> None:
            checkout = scratch / "wt"
            git(repo, "worktree", "add", "--detach", "--quiet", str(checkout), "HEAD")
            git(repo, "worktree", "remove", "--force", str(checkout))

        rows = {
            "diff (one app changed)": statistics.median(timed(diff) for _ in range(args.repeat)),
            "interpreter start-up": statistics.median(timed(start_only) for _ in range(args.repeat)),
            "discover every entrypoint": statistics.median(timed(discover) for _ in range(args.repeat)),
            "render app-0's entrypoints": statistics.median(timed(validate_app) for _ in range(args.repeat)),
            "git worktree add + remove": statistics.median(timed(worktree) for _ in range(args.repeat)),
            "validate the whole repo": timed(validate_all),
        }
        print(f"{args.apps} apps, {len(app_eps)} entrypoints of app-0; diff rendered "
              f"{result['entrypoints']['rendered']} of {result['entrypoints']['total']} entrypoints "
              f"(both revisions), totals {result['totals']}")
        for name, seconds in rows.items():
            print(f"  {name:32} {seconds:7.2f} s")


if __name__ == "__main__":
    main()
