"""Time gitops-forge against raw Copier on the same template and answers.

    python benchmarks/bench_cli.py [--repeat N]

gitops-forge runs from a wheel built from this checkout and installed into a
scratch directory (the path users take: template bundle inside the package);
Copier gets the same bundle through the same git redirect. Prints medians and
ratios (targets: new/copy <= 1.15, update/copier-update <= 1.15, --help <= 0.25 s).
Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from generator import questions
from generator.template_source import CANONICAL_URL, TemplateSource

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def install_wheel(target: Path) -> None:
    wheels = target.parent / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)], check=True)
    (wheel,) = wheels.glob("gitops_forge-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    answers = questions.complete({"project_name": "bench"}, questions.load())
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        installed = work / "installed"
        install_wheel(installed)
        source = TemplateSource(url=CANONICAL_URL, bundle=installed / "generator/_bundle/template.git")
        forge = [sys.executable, "-c", "import sys; from generator.cli import app; sys.argv[0] = 'gitops-forge'; app()"]
        answers_file = work / "answers.yml"
        answers_file.write_text(yaml.safe_dump(answers))
        env = {
            **os.environ,
            "PYTHONPATH": str(installed),
            **source.git_env(),
            "COPIER_CACHE_DIR": str(work / "copier-cache"),
            "XDG_CACHE_HOME": str(work / "cache"),
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
        }
        # Warm both paths once (bundle build, copier mirror).
        subprocess.run([*forge, "new", str(work / "warm"), "--defaults", "--no-git"], env=env, check=True, capture_output=True)

        forge_new, copier_copy, helps = [], [], []
        for run in range(options.repeat):
            forge_new.append(timed([*forge, "new", str(work / f"f{run}"), "--no-git", "--data-file", str(answers_file)], work, env))
            copier_copy.append(timed([str(BIN / "copier"), "copy", "--quiet", "--trust", "--defaults", "--data-file", str(answers_file), source.url, str(work / f"c{run}")], work, env))
            helps.append(timed([*forge, "--help"], work, env))

        # Update: the same repo at the same version, cloned fresh for each run.
        base = work / "f0"
        git(base, "init", "-q", "-b", "main")
        git(base, "add", "-A")
        git(base, "commit", "-qm", "base")
        forge_update, copier_update = [], []
        for run in range(options.repeat):
            for name, samples, command in (
                ("fu", forge_update, lambda repo: [*forge, "update", str(repo)]),
                ("cu", copier_update, lambda repo: [str(BIN / "copier"), "update", "--quiet", "--trust", "--defaults", str(repo)]),
            ):
                repo = work / f"{name}{run}"
                git(work, "clone", "-q", str(base), str(repo))
                samples.append(timed(command(repo), work, env))
                shutil.rmtree(repo)

    rows = [
        ("gitops-forge new", median(forge_new), "copier copy", median(copier_copy), 1.15),
        ("gitops-forge update", median(forge_update), "copier update", median(copier_update), 1.15),
    ]
    print(f"{'command':<22}{'median s':>10}   {'baseline':<16}{'median s':>10}{'ratio':>8}{'target':>8}")
    for name, ours, baseline, theirs, target in rows:
        ratio = ours / theirs
        print(f"{name:<22}{ours:>10.3f}   {baseline:<16}{theirs:>10.3f}{ratio:>8.2f}{'<=' + str(target):>8}  {'ok' if ratio <= target else 'MISSED'}")
    help_time = median(helps)
    print(f"{'gitops-forge --help':<22}{help_time:>10.3f}   {'(absolute)':<16}{'':>10}{'':>8}{'<=0.25s':>8}  {'ok' if help_time <= 0.25 else 'MISSED'}")


if __name__ == "__main__":
    main()
