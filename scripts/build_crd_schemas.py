#!/usr/bin/env python3
"""Build the CRD JSON schemas bundled in the wheel (generator/schemas/) from pinned upstream CRDs.

    python scripts/build_crd_schemas.py --fetch            # clone/refresh the sources into the cache
    python scripts/build_crd_schemas.py --mirror DIR       # or read local git mirrors under DIR

Input: scripts/crd_sources.yaml, a list of (repo, tag, paths, kinds) with the licence each repo declares.
Each CRD's ``openAPIV3Schema`` is converted by the same function `validate` uses for CRDs found in a repo
(generator.validate.schemas.crd_schemas: unknown fields rejected where the CRD is structural,
``x-kubernetes-preserve-unknown-fields`` left open, int-or-string accepted as either), descriptions dropped to
keep the wheel small, and written in kubeconform's layout ``{group}/{kind}_{version}.json``. ``_provenance.json``
names the repo, tag, commit, path and licence of every file. The output directory is replaced as a whole, so a
source removed from the config disappears from the bundle. Schemas written by hand (``hand_written`` in the
config, for CRDs whose licence keeps them out of the wheel) are read from generator/schemas/ and copied unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.validate.schemas import crd_schemas  # noqa: E402

CONFIG = ROOT / "scripts" / "crd_sources.yaml"
OUT = ROOT / "generator" / "schemas"
HAND_WRITTEN = OUT  # where the hand-written schemas live, whatever --out is
LICENCE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING")


class BuildError(Exception):
    pass


class CrdLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's "=" (value) type, which PyYAML cannot construct (CRD enums list "=")."""


CrdLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def git(git_dir: Path, *args: str) -> str:
    res = subprocess.run(["git", "--git-dir", str(git_dir), *args], capture_output=True, text=True)
    if res.returncode:
        raise BuildError(f"git {' '.join(args)} in {git_dir}: {res.stderr.strip()}")
    return res.stdout


def find_mirror(repo: str, mirrors: list[Path]) -> Path | None:
    owner, name = repo.split("/")
    for root in mirrors:
        for cand in (root / f"{owner}+{name}" / "repo", root / f"{owner}+{name}", root / f"{owner}+{name}.git",
                     root / owner / name, root / owner / f"{name}.git", root / name, root / f"{name}.git"):
            if cand.is_dir():
                res = subprocess.run(["git", "-C", str(cand), "rev-parse", "--git-dir"], capture_output=True, text=True)
                if res.returncode == 0:
                    return (cand / res.stdout.strip()).resolve() if not Path(res.stdout.strip()).is_absolute() \
                        else Path(res.stdout.strip())
    return None


def fetch_mirror(repo: str, tag: str, cache: Path) -> Path:
    """A bare, blob-less clone of the repo in the cache with ``tag`` present (network)."""
    git_dir = cache / f"{repo.replace('/', '+')}.git"
    url = f"https://github.com/{repo}.git"
    if not git_dir.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "--quiet", "--bare", "--filter=blob:none", url, str(git_dir)], check=True)
    if subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}"],
                      capture_output=True).returncode:
        subprocess.run(["git", "--git-dir", str(git_dir), "fetch", "--quiet", "--filter=blob:none", url,
                        f"refs/tags/{tag}:refs/tags/{tag}"], check=True)
    return git_dir


def detect_licence(text: str) -> str:
    head = " ".join(text.split()[:60]).upper()
    if "APACHE LICENSE" in head and "VERSION 2.0" in head:
        return "Apache-2.0"
    if "GNU AFFERO GENERAL PUBLIC LICENSE" in head:
        return "AGPL-3.0"
    if "MIT LICENSE" in head or "PERMISSION IS HEREBY GRANTED, FREE OF CHARGE" in head:
        return "MIT"
    return "unknown"


def crd_files(git_dir: Path, tag: str, path: str) -> list[str]:
    """``path`` itself if it is a file at ``tag``, else the YAML files directly under it."""
    kind = git(git_dir, "cat-file", "-t", f"{tag}:{path}").strip()
    if kind == "blob":
        return [path]
    names = git(git_dir, "ls-tree", "--name-only", f"{tag}:{path}").split()
    return [f"{path.rstrip('/')}/{n}" for n in sorted(names) if n.endswith((".yaml", ".yml"))]


def build_source(src: dict, git_dir: Path) -> dict[str, tuple[dict, dict]]:
    repo, tag = src["repo"], src["tag"]
    commit = git(git_dir, "rev-parse", f"{tag}^{{commit}}").strip()
    licence_text = next((git(git_dir, "show", f"{tag}:{f}") for f in LICENCE_FILES
                         if git(git_dir, "ls-tree", "--name-only", tag, f).strip()), "")
    licence = detect_licence(licence_text)
    if licence != src["licence"]:
        raise BuildError(f"{repo}@{tag}: LICENSE reads as {licence}, the config says {src['licence']}; check it.")
    kinds = set(src.get("kinds") or [])
    versions = set(src.get("versions") or [])
    out: dict[str, tuple[dict, dict]] = {}
    for path in [p for entry in src["paths"] for p in crd_files(git_dir, tag, entry)]:
        for crd in yaml.load_all(git(git_dir, "show", f"{tag}:{path}"), Loader=CrdLoader):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            if kinds and spec["names"]["kind"] not in kinds:
                continue
            served = {v["name"]: v for v in spec.get("versions") or []}
            structural = not spec.get("preserveUnknownFields", False)
            for (group, version, kind), schema in crd_schemas(crd, drop_descriptions=True).items():
                v = served[version]
                if not v.get("served", True) or (versions and version not in versions):
                    continue
                name = f"{group}/{kind.lower()}_{version}.json"
                if name in out:
                    raise BuildError(f"{name} comes from two sources; keep one in the config.")
                top = (v.get("schema") or {}).get("openAPIV3Schema") or {}
                out[name] = (schema, {
                    "repo": f"github.com/{repo}", "tag": tag, "commit": commit, "path": path, "licence": licence,
                    "group": group, "kind": kind, "version": version,
                    "strict": structural and not top.get("x-kubernetes-preserve-unknown-fields", False),
                    "deprecated": bool(v.get("deprecated", False)),
                })
    found = {p["kind"] for _, p in out.values()}
    if kinds - found:
        raise BuildError(f"{repo}@{tag}: no CRD for {', '.join(sorted(kinds - found))} under {src['paths']}.")
    if not out:
        raise BuildError(f"{repo}@{tag}: no CustomResourceDefinition under {src['paths']}.")
    return out


def hand_written(entry: dict, cleared: set[str], root: Path = HAND_WRITTEN) -> tuple[str, str, dict]:
    """(file name, its text, provenance) of a schema gitops-forge wrote itself."""
    name = entry["file"]
    if name != f"{entry['group']}/{entry['kind'].lower()}_{entry['version']}.json":
        raise BuildError(f"{entry['name']}: file {name} is not {{group}}/{{kind}}_{{version}}.json of its kind.")
    if entry["licence"] not in cleared:
        raise BuildError(f"{entry['name']}: licence {entry['licence']} is not in bundle_licences.")
    path = root / name
    if not path.is_file():
        raise BuildError(f"{entry['name']}: {path} is missing; it is written by hand, not built.")
    text = path.read_text(encoding="utf-8")
    schema = json.loads(text)
    if schema.get("additionalProperties") is not False:
        raise BuildError(f"{entry['name']}: {name} accepts unknown top-level fields; hand-written schemas are strict.")
    return name, text, {"source": entry["source"], "licence": entry["licence"], "group": entry["group"],
                        "kind": entry["kind"], "version": entry["version"], "strict": True, "deprecated": False,
                        "hand_written": True}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--out", type=Path, default=OUT, help="output directory (replaced); default generator/schemas")
    ap.add_argument("--mirror", type=Path, action="append", default=[],
                    help="directory holding git mirrors (owner+name/repo, owner/name(.git) or name(.git)); repeatable")
    ap.add_argument("--fetch", action="store_true", help="clone sources missing from the mirrors (network)")
    ap.add_argument("--cache", type=Path,
                    default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gitops-forge" / "crd-sources")
    ap.add_argument("--only", action="append", default=[], help="build only these source names (repeatable)")
    ap.add_argument("--all", action="store_true",
                    help="include sources marked bundle: false (for a --schema-location directory, not the wheel)")
    args = ap.parse_args(argv)

    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    sources = config["sources"]
    # Licences whose files may ship in this Apache-2.0 wheel (bundle_licences in the config).
    cleared = set(config.get("bundle_licences") or ["Apache-2.0"])
    if args.only:
        sources = [s for s in sources if s["name"] in args.only]
    if not args.all:
        sources = [s for s in sources if s.get("bundle", True)]
    schemas: dict[str, tuple[dict, dict]] = {}
    written: dict[str, tuple[str, dict]] = {}
    try:
        for entry in config.get("hand_written") or []:
            if not args.only or entry["name"] in args.only:
                name, text, prov = hand_written(entry, cleared)
                written[name] = (text, prov)
        for src in sources:
            if src.get("bundle", True) and src["licence"] not in cleared:
                raise BuildError(f"{src['name']}: licence {src['licence']} is not in bundle_licences; "
                                 "clear it there or set bundle: false.")
            git_dir = find_mirror(src["repo"], args.mirror)
            if git_dir is None or subprocess.run(
                    ["git", "--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{src['tag']}^{{commit}}"],
                    capture_output=True).returncode:
                if not args.fetch:
                    raise BuildError(f"{src['repo']}@{src['tag']}: not in --mirror {args.mirror}; pass --fetch.")
                git_dir = fetch_mirror(src["repo"], src["tag"], args.cache)
            built = build_source(src, git_dir)
            clash = schemas.keys() & built.keys()
            if clash:
                raise BuildError(f"{', '.join(sorted(clash))} come from two sources; keep one in the config.")
            schemas.update(built)
            if built.keys() & written.keys():
                raise BuildError(f"{', '.join(sorted(built.keys() & written.keys()))}: built from {src['name']} "
                                 "and written by hand; keep one.")
            print(f"{src['name']}: {src['repo']}@{src['tag']}: {len(built)} schemas", file=sys.stderr)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=args.out.parent, prefix=".schemas-"))
    tmp.chmod(0o755)
    for name, (schema, _) in sorted(schemas.items()):
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(json.dumps(schema, separators=(",", ":")) + "\n", encoding="utf-8")
    for name, (text, _) in sorted(written.items()):
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text, encoding="utf-8")
    provenance = {name: prov for name, (_, prov) in sorted([*schemas.items(), *written.items()])}
    (tmp / "_provenance.json").write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
    if args.out.exists():
        shutil.rmtree(args.out)
    tmp.rename(args.out)
    print(f"wrote {len(schemas)} built and {len(written)} hand-written schemas to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
