"""Time `gitops-forge validate` against the reference pipeline on generated repos.

    python benchmarks/bench_validate.py [--apps 10,25,50] [--repeat 3] [--schemas DIR]

Repos: `gitops-forge new --data-file` with N apps over 3 teams, 3 environments and one cluster per environment.

gitops-forge: the installed console script, `gitops-forge validate REPO -s SCHEMAS -o json`, as a subprocess
(interpreter start-up included), median of --repeat runs.

Reference pipeline (what public GitOps repos run in CI, `kustomize build | kubeconform -strict` per overlay,
emulated without caching, one process-like step per object as kubeconform without its cache would do):
  1. for every entrypoint gitops-forge discovers, sequentially: `kubectl kustomize DIR` (with
     --load-restrictor=LoadRestrictionsNone for Flux paths); directories without a kustomization (clusters/*)
     have their YAML files read as they are, the way scripts/validate.sh runs kubeconform on ./clusters;
  2. for every object: read its schema file from disk (built-in kinds: kubernetes-validate's strict per-kind
     file and the _definitions.json it refers to; custom resources: SCHEMAS/{group}/{kind}_{version}.json),
     build a jsonschema validator and collect every error.
Target: gitops-forge >= 2.5x faster on 50 apps x 3 environments, and time growing about linearly with apps.
Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource

from generator.render import _kustomization_file, discover_entrypoints, find_tool
from generator.validate.schemas import bundled_versions

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ENVIRONMENTS = ("dev", "staging", "prod")


def answers(apps: int) -> dict:
    teams = [f"team-{n}" for n in range(3)]
    return {
        "project_name": "bench",
        "environments": list(ENVIRONMENTS),
        "clusters": [{"name": env, "environment": env} for env in ENVIRONMENTS],
        "teams": [{"name": t, "groups": [t]} for t in teams],
        "apps": [
            {"name": f"app-{n}", "team": teams[n % 3], "image": f"registry.example.com/shop/app-{n}:1.{n}.0", "port": 8080}
            for n in range(apps)
        ],
    }


def generate(apps: int, scratch: Path) -> Path:
    data = scratch / f"answers-{apps}.yml"
    data.write_text(yaml.safe_dump(answers(apps)))
    repo = scratch / f"repo-{apps}"
    subprocess.run([str(BIN / "gitops-forge"), "new", str(repo), "--defaults", "--data-file", str(data), "--no-git"],
                   check=True, capture_output=True)
    return repo


def time_gitops_forge(repo: Path, schemas: str) -> tuple[float, dict]:
    start = time.perf_counter()
    run = subprocess.run([str(BIN / "gitops-forge"), "validate", str(repo), "-s", schemas, "-o", "json"],
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if run.returncode not in (0, 1):
        raise SystemExit(f"gitops-forge validate failed: {run.stderr}")
    return elapsed, json.loads(run.stdout)["counts"]


# --- the reference pipeline --------------------------------------------------------------------------


def builtin_dir() -> Path:
    version = bundled_versions()[-1]
    return Path(str(importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"))


def schema_errors(obj: dict, builtin: Path, schemas: Path) -> int | None:
    """Validate one object from scratch: read the schema file(s), build a validator, count the errors."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    kind = str(obj.get("kind", ""))
    if ".toolkit.fluxcd.io" in group or "." in group and not group.endswith(".k8s.io"):
        path = schemas / group / f"{kind.lower()}_{version}.json"
        if not path.is_file():
            return None
        schema = json.loads(path.read_text())
        return sum(1 for _ in jsonschema.Draft202012Validator(schema).iter_errors(obj))
    name = f"{kind.lower()}-{group.split('.')[0]}-{version}.json" if group else f"{kind.lower()}-{version}.json"
    path = builtin / name
    if not path.is_file():
        return None
    definitions = json.loads((builtin / "_definitions.json").read_text())
    registry = Registry().with_resource("https://kubernetes.io/api/_definitions.json", Resource.from_contents(definitions))
    schema = {**json.loads(path.read_text()), "$id": "https://kubernetes.io/api/object.json"}
    return sum(1 for _ in jsonschema.Draft202012Validator(schema, registry=registry).iter_errors(obj))


def reference(repo: Path, schemas: Path) -> tuple[float, float, int, int]:
    """(render seconds, validation seconds, objects, objects without schema)."""
    builtin = builtin_dir()
    tool = find_tool()
    start = time.perf_counter()
    outputs = []
    for ep in discover_entrypoints(repo):
        if not ep.path.is_dir():
            continue
        if _kustomization_file(ep.path):
            cmd = [*tool, str(ep.path)] + (["--load-restrictor=LoadRestrictionsNone"] if ep.mode == "flux" else [])
            outputs.append(subprocess.run(cmd, capture_output=True, text=True).stdout)
        else:
            outputs += [p.read_text() for p in sorted(ep.path.rglob("*.y*ml"))]
    rendered = time.perf_counter()
    objects = missing = 0
    for text in outputs:
        for obj in yaml.load_all(text, Loader=LOADER):
            if isinstance(obj, dict) and obj.get("kind"):
                objects += 1
                missing += schema_errors(obj, builtin, schemas) is None
    return rendered - start, time.perf_counter() - rendered, objects, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="10,25,50", help="comma-separated app counts (default 10,25,50)")
    parser.add_argument("--repeat", type=int, default=3, help="gitops-forge runs per size (median)")
    parser.add_argument("--schemas", default=os.environ.get("GITOPS_FORGE_SCHEMAS") or str(ROOT.parent / "shared" / "schemas"))
    options = parser.parse_args()
    sizes = [int(n) for n in options.apps.split(",")]
    print(f"CPUs: {os.cpu_count()}; kustomize: {' '.join(find_tool())}; schemas: {options.schemas}")
    print(f"{'apps':>5} {'entrypoints':>11} {'objects':>8} {'gitops-forge':>13} {'reference':>24} {'ratio':>6} {'s/app':>6}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for apps in sizes:
            repo = generate(apps, scratch)
            time_gitops_forge(repo, options.schemas)  # warm the OS file cache and .pyc files
            runs = [time_gitops_forge(repo, options.schemas) for _ in range(options.repeat)]
            ours = statistics.median(t for t, _ in runs)
            counts = runs[0][1]
            render_s, check_s, objects, missing = reference(repo, Path(options.schemas))
            theirs = render_s + check_s
            rows.append((apps, ours, theirs))
            print(f"{apps:>5} {counts['entrypoints']:>11} {counts['objects']:>8} {ours:>12.2f}s "
                  f"{theirs:>8.2f}s ({render_s:.1f} + {check_s:.1f}) {theirs / ours:>5.1f}x {ours / apps:>6.3f}")
            if missing:
                print(f"      (reference: {missing} of {objects} objects had no schema file)")
    if len(rows) > 1:
        (a0, t0, _), (a1, t1, _) = rows[0], rows[-1]
        print(f"growth {a0} -> {a1} apps: x{a1 / a0:.1f} apps, gitops-forge x{t1 / t0:.2f} time "
              f"(marginal {(t1 - t0) / (a1 - a0):.3f} s/app)")
    apps, ours, theirs = rows[-1]
    verdict = "meets" if theirs / ours >= 2.5 else "MISSES"
    print(f"{apps} apps x {len(ENVIRONMENTS)} environments: {theirs / ours:.1f}x faster than the reference ({verdict} the 2.5x target)")


if __name__ == "__main__":
    main()
