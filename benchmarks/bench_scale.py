"""Day-2 commands at organisation scale, against raw Copier on the same template and answers.

    python benchmarks/bench_scale.py [--sizes 50,200,400] [--schemas DIR] [--skip-copier]

For each size: an answer set with N apps over 10 teams, 4 environments and 4 clusters. Every command runs as a
subprocess of this checkout (interpreter start-up included), once, after `sync` (so no step pays for writing
out the files of the step before), and prints wall time and peak memory (max RSS of the process and the
children it waited for):

- `new`: `gitops-forge new --data-file` vs raw `copier copy --trust --defaults --data-file` of the same template;
- `add app`, `remove app`, `set monitoring=false alerts_to=none pager=none` on the generated (committed) repo, each vs the equivalent raw
  `copier update --vcs-ref :current: --data …` (the re-render gitops-forge runs);
- `update`: a repo generated from a synthetic template release X (a temporary git clone of this checkout's
  template, tagged) updated to X+1 (one line changed and tagged), vs raw `copier update` of a clone of it;
- `validate` cold (no cache) and warm (cache filled, then one app's overlay edited);
- `diff` after a one-app change (app-0's new tag in the first environment, committed, then `gitops-forge promote
  app-0` to the next one in the working tree), against issue 14's budget: validate of app-0's entrypoints
  (bench_diff.VALIDATE_APP) plus `git worktree add` and removal, both measured right after it.

The 0.3.0 column holds the figures issue 16 measured at 200 apps on this kind of machine. Timings live here,
never in tests. The load average, a reference loop's time, the time to touch 1 GiB of fresh memory and the time
to create 2,000 small files are printed at the start, after the `new` runs and after each size, because other
work on the machine and a shared host's speed skew every figure (the same cold validate took 8.9 s and 11.3 s on
one machine within an hour).

`new` runs first at every size, before any step deletes files. File creation is the floor of `new`, and on
this machine's root file system (ext4, no journal) the inode allocator skips, one inode-table lookup each,
every inode freed in the last minutes (`recently_deleted` in `perf`, a fifth of the kernel's samples): the same
5,343 files took 0.25 s to create on a quiet disk and 1.5 s right after a tree of that size was deleted, which
made `new` at 200 apps 2.2 s or 3-4 s depending on what the raw Copier runs of the size before had just
cleaned up. Run the benchmark on a disk nothing has deleted much from in the last few minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FORGE = [sys.executable, "-c", "import sys; from generator.cli import app; sys.argv[0] = 'gitops-forge'; app()"]
ENVIRONMENTS = ("dev", "test", "staging", "prod")
TEAMS = 10
# issue 16, 200 apps, 10 teams, 4 environments, 4 clusters, template 0.3.0 (seconds).
BEFORE_0_3_0 = {"new": 30.6, "copier copy": 30.0, "add app": 77.8, "update": 85.0, "validate cold": 26.7,
                "validate warm": 26.7}
GOALS = {"new": 3.0, "add app": 10.0, "update": 10.0, "validate cold": 9.0, "validate warm": 1.0}


def answers(apps: int, *, teams: int = TEAMS, environments: tuple[str, ...] = ENVIRONMENTS) -> dict:
    team_names = [f"team-{n}" for n in range(teams)]
    return {
        "project_name": "scale",
        "environments": list(environments),
        "clusters": [{"name": f"{env}-1", "environment": env} for env in environments],
        "teams": [{"name": t, "groups": [f"{t}-devs"]} for t in team_names],
        "apps": [
            {"name": f"app-{n}", "team": team_names[n % teams], "image": f"registry.example.com/shop/app-{n}:1.{n}.0",
             "port": 8080}
            for n in range(apps)
        ],
    }


def run(command: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(seconds, peak RSS in MiB of the process and the children it waited for) of one command."""
    # Earlier steps' files still waiting to be written out would otherwise be flushed on this command's time.
    os.sync()
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in ok:
            out.seek(0)
            raise SystemExit(f"{' '.join(command[-6:])} failed ({proc.returncode}):\n{out.read().decode()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def synthetic_template(work: Path) -> tuple[Path, str, str]:
    """A git repo holding this checkout's template as release X, then X+1 with one line changed."""
    import generator.bundle as bundle

    version = bundle.current_version(ROOT)
    template = work / "template-repo"
    template.mkdir(parents=True)
    for name in ("copier.yml", "template", "includes"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, template / name)
    commit_all(template, f"release {version}")
    old = f"v{version}"
    git(template, "tag", old)
    readme = next(p for p in sorted((template / "template").rglob("README.md*")))
    readme.write_text(readme.read_text() + "\n<!-- synthetic next release -->\n")
    major, minor, patch = (version.split(".") + ["0", "0"])[:3]
    new = f"v{major}.{minor}.{int(patch) + 1}"
    commit_all(template, f"release {new}")
    git(template, "tag", new)
    return template, old, new


def bench_new(apps: int, work: Path, env: dict[str, str], template: Path, skip_copier: bool) -> tuple[tuple, int]:
    """The `new` row (command, seconds, MiB, copier seconds or None) and how many files the repo has."""
    data = work / f"answers-{apps}.yml"
    data.write_text(yaml.safe_dump(answers(apps)))
    repo = work / f"forge-{apps}"
    t_new, m_new = run([*FORGE, "new", str(repo), "--defaults", "--data-file", str(data)], work, env)
    files = sum(1 for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts)
    t_copy = None
    if not skip_copier:
        t_copy, _ = run([str(BIN / "copier"), "copy", "--quiet", "--trust", "--defaults", "--data-file", str(data),
                         str(template), str(work / f"copier-{apps}")], work, env)
    return ("new", t_new, m_new, t_copy), files


def bench_day2(apps: int, work: Path, env: dict[str, str], template: Path, old: str, schemas: str,
               skip_copier: bool) -> tuple[list[tuple], dict]:
    """The rows of the commands run on the repo `bench_new` generated (release ``old`` of ``template`` is
    updated to the next), and the budgets (command -> seconds, text)."""
    rows: list[tuple] = []
    data = work / f"answers-{apps}.yml"
    repo = work / f"forge-{apps}"

    def clone(name: str, source: Path = repo) -> Path:
        target = work / f"{name}-{apps}"
        subprocess.run(["git", "clone", "-q", str(source), str(target)], check=True)
        return target

    def rerender_pair(label: str, forge_args: list[str], changed: dict) -> None:
        mine = clone(label.replace(" ", "-"))
        t, m = run([*FORGE, *forge_args, "--path", str(mine)], work, env)
        t_raw = None
        if not skip_copier:
            theirs = clone(label.replace(" ", "-") + "-copier")
            changes = work / f"{label.replace(' ', '-')}-{apps}.yml"
            changes.write_text(yaml.safe_dump(changed))
            t_raw, _ = run([str(BIN / "copier"), "update", "--quiet", "--trust", "--defaults",
                            "--skip-answered", "--vcs-ref", ":current:", "--data-file", str(changes), str(theirs)],
                           work, env)
        rows.append((label, t, m, t_raw))

    full = answers(apps)
    added = {"name": "extra", "team": "team-0", "image": "registry.example.com/shop/extra:1.0.0", "port": 8080}
    rerender_pair("add app", ["add", "app", "extra", "--team", "team-0", "--image", added["image"], "--port", "8080"],
                  {"apps": [*full["apps"], added]})
    rerender_pair("remove app", ["remove", "app", "app-1"], {"apps": [a for a in full["apps"] if a["name"] != "app-1"]})
    rerender_pair("set", ["set", "monitoring=false", "alerts_to=none", "pager=none"],
                  {"monitoring": False, "alerts_to": "none", "pager": "none"})

    # update X -> X+1: generated by raw copier from the synthetic release X (identical output), then committed.
    base = work / f"update-base-{apps}"
    subprocess.run([str(BIN / "copier"), "copy", "--quiet", "--trust", "--defaults", "--data-file", str(data),
                    "--vcs-ref", old, str(template), str(base)], cwd=work, env=env, check=True, capture_output=True)
    commit_all(base, "generate")
    mine = clone("update", base)
    t_update, m_update = run([*FORGE, "update", str(mine), "--json"], work, env)
    t_raw = None
    if not skip_copier:
        theirs = clone("update-copier", base)
        t_raw, _ = run([str(BIN / "copier"), "update", "--quiet", "--trust", "--defaults",
                        "--skip-answered", str(theirs)], work, env)
    rows.append(("update", t_update, m_update, t_raw))

    # validate: cold without cache, warm after one app edit.
    validate = [*FORGE, "validate", str(repo), "-s", schemas, "-o", "json"]
    cache_env = {**env, "XDG_CACHE_HOME": str(work / f"validate-cache-{apps}")}
    t_cold, m_cold = run([*validate, "--no-cache"], work, cache_env, ok=(0, 1))
    rows.append(("validate cold", t_cold, m_cold, None))
    run(validate, work, cache_env, ok=(0, 1))  # fills the cache
    overlay = repo / "apps" / ENVIRONMENTS[0] / "app-0" / "kustomization.yaml"  # one app's overlay in one env
    overlay.write_text(overlay.read_text() + "# edited\n")
    t_warm, m_warm = run(validate, work, cache_env, ok=(0, 1))
    rows.append(("validate warm", t_warm, m_warm, None))

    # diff after promoting one app, and its budget (issue 14): validate of that app's entrypoints + git worktree.
    import bench_diff

    git(repo, "checkout", "--", str(overlay.relative_to(repo)))
    bench_diff.promote_one(repo, "app-0", ENVIRONMENTS[0], env)
    t_diff, m_diff = run([*FORGE, "diff", str(repo), "--format", "json"], work, env)
    t_validate, _ = run([sys.executable, "-c", bench_diff.VALIDATE_APP, str(repo), "app-0", schemas], work, env)
    start = time.perf_counter()
    git(repo, "worktree", "add", "--detach", "--quiet", str(work / f"worktree-{apps}"), "HEAD")
    git(repo, "worktree", "remove", "--force", str(work / f"worktree-{apps}"))
    t_worktree = time.perf_counter() - start
    rows.append(("diff one app", t_diff, m_diff, None))
    budget = (t_validate + t_worktree, f"validate app-0 {t_validate:.2f}s + worktree {t_worktree:.2f}s")
    return rows, {"diff one app": budget}


def print_table(apps: int, rows: list[tuple], budgets: dict[str, tuple[float, str]]) -> None:
    """``budgets``: command -> (seconds measured in this run, what they are), printed after the row at any size."""
    head = f"{'command':<15}{'gitops-forge':>13}{'peak MiB':>10}{'raw copier':>12}{'ratio':>7}"
    if apps == 200:
        head += f"{'0.3.0':>8}{'speed-up':>9}{'goal':>7}"
    print(head)
    for name, t, mem, raw in rows:
        line = f"{name:<15}{t:>12.2f}s{mem:>10.0f}"
        line += f"{raw:>11.2f}s{t / raw:>7.2f}" if raw else f"{'':>12}{'':>7}"
        if apps == 200:
            before, goal = BEFORE_0_3_0.get(name), GOALS.get(name)
            line += f"{before:>7.1f}s{before / t:>8.1f}x" if before else f"{'':>8}{'':>9}"
            line += f"{'≤' + str(goal) + 's':>7} {'ok' if t <= goal else 'MISSED'}" if goal else ""
        if name in budgets:
            seconds, parts = budgets[name]
            line += f"  budget ≤{seconds:.2f}s ({parts}): {'ok' if t <= seconds else 'OVER'}"
        print(line)


def reference_loop() -> float:
    """Seconds a fixed pure-Python loop takes now: the CPU's speed at that moment (shared hosts drift)."""
    start = time.perf_counter()
    total = 0
    for n in range(5_000_000):
        total += n
    return time.perf_counter() - start


# In a child process: one forked from the benchmark would inherit its peak RSS, and every command measured
# after it would report that peak.
TOUCH_FRESH_MEMORY = """
import sys, time
mib = int(sys.argv[1])
start = time.perf_counter()
for _ in range(2):
    block = bytearray(mib << 20)
    block[::4096] = b"\\1" * len(range(0, mib << 20, 4096))  # one write per page
    del block
print(time.perf_counter() - start)
"""


def fresh_memory(mib: int = 512) -> float:
    """Seconds to touch every page of newly mapped memory, twice ``mib`` MiB: what the kernel charges per page
    first written. kustomize without GC (about 300 MB per batch) and every file written pay it; on a virtual
    machine it moves with the host, independently of the loop above."""
    touch = [sys.executable, "-c", TOUCH_FRESH_MEMORY, str(mib)]
    return float(subprocess.run(touch, check=True, capture_output=True, text=True).stdout)


def file_creation(work: Path, files: int = 2000) -> float:
    """Seconds to create ``files`` small files in 40 new folders under ``work``: the file system's state. They
    stay until the benchmark ends, as deleting them would slow the next step's file creation."""
    probe = Path(tempfile.mkdtemp(prefix="file-probe-", dir=work))
    os.sync()
    start = time.perf_counter()
    for n in range(files):
        folder = probe / str(n % 40)
        folder.mkdir(exist_ok=True)
        (folder / f"{n}.yaml").write_bytes(b"kind: ConfigMap\n" * 20)
    return time.perf_counter() - start


def machine_line(work: Path, when: str) -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{when}: load average {load}; reference loop {reference_loop():.2f}s; fresh 1 GiB {fresh_memory():.2f}s; "
            f"2,000 new files {file_creation(work):.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,400", help="comma-separated app counts (default 50,200,400)")
    parser.add_argument("--schemas", default=os.environ.get("GITOPS_FORGE_SCHEMAS") or str(ROOT.parent / "shared" / "schemas"))
    parser.add_argument("--skip-copier", action="store_true", help="leave out the raw Copier runs (they are slow)")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary directory)")
    options = parser.parse_args()
    sizes = [int(n) for n in options.sizes.split(",") if n.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(options.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "XDG_CACHE_HOME": str(work / "cache"),
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
        }
        # Raw copier reaches the template URL that gitops-forge repos record through the same local bundle, with
        # the git settings gitops-forge gives it: without them, from 400 apps on, a `git gc` that a commit
        # detaches races Copier's clean-up of its temporary repositories and the run fails.
        os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"]
        from generator import scaffold, template_source

        env.update(template_source.builtin().git_env(*scaffold.COPIER_GIT_SETTINGS))
        # Warm the template bundle, .pyc files and the copier mirror once.
        subprocess.run([*FORGE, "new", str(work / "warm"), "--defaults", "--no-git"], env=env, cwd=work, check=True,
                       capture_output=True)
        template, old, _ = synthetic_template(work / "synthetic")
        print(f"CPUs: {os.cpu_count()}; {machine_line(work, 'at start')}")
        # `new` first at every size: later steps delete thousands of files, and creating files just after that
        # is slower here (see the module docstring).
        made = {apps: bench_new(apps, work, env, template, options.skip_copier) for apps in sizes}
        print(machine_line(work, "after every new"))
        for apps in sizes:
            new_row, files = made[apps]
            rows, budgets = bench_day2(apps, work, env, template, old, options.schemas, options.skip_copier)
            print(f"\n{apps} apps x {len(ENVIRONMENTS)} environments, {TEAMS} teams, {len(ENVIRONMENTS)} clusters: "
                  f"{files} files")
            print_table(apps, [new_row, *rows], budgets)
            print(machine_line(work, "now"))


if __name__ == "__main__":
    main()
