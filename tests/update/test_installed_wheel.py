"""The path users take: an installed wheel, no checkout, no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from generator.template_source import CANONICAL_URL

README_TEMPLATE = "template/README.md.jinja"
RUN_CLI = "import sys; from generator.cli import app; sys.argv[0] = 'gitops-forge'; app()"


def build_and_install(source_root: Path, target: Path) -> None:
    wheels = target.parent / f"{target.name}-wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source_root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("gitops_forge-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )


def cli(installed: Path, cwd: Path, home: Path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GITOPS_FORGE_SCHEMA")},
        "PYTHONPATH": str(installed),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        # Only local transports: any attempt to reach the network fails the test.
        "GIT_ALLOW_PROTOCOL": "file",
        **(env_extra or {}),
    }
    return subprocess.run([sys.executable, "-c", RUN_CLI, *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_wheel_generates_offline_and_a_later_wheel_updates(template_repo, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"

    template_repo.release("1.0.0")
    build_and_install(template_repo.root, tmp_path / "v1")
    where = subprocess.run(
        [sys.executable, "-c", "import generator; print(generator.__file__)"],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "v1")}, cwd=work, capture_output=True, text=True, check=True,
    ).stdout
    assert where.startswith(str(tmp_path / "v1")), where

    created = cli(tmp_path / "v1", work, home, "new", "platform", "--defaults")
    assert created.returncode == 0, created.stderr
    repo = work / "platform"
    answers_text = (repo / ".copier-answers.yml").read_text()
    recorded = yaml.safe_load(answers_text)
    assert recorded["_src_path"] == CANONICAL_URL and recorded["_commit"] == "v1.0.0"
    for machine_path in (str(tmp_path), "site-packages", "/tmp", str(Path.home())):
        assert machine_path not in answers_text

    # The wheel carries the CRD schemas of the pinned versions: validate needs no -s and no network.
    offline = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    validated = cli(tmp_path / "v1", work, home, "validate", "platform", "--format", "json", env_extra=offline)
    report = json.loads(validated.stdout)
    assert report["missing_schemas"] == [] and report["bundled_schemas"] is True, validated.stdout[-2000:]
    assert validated.returncode == 0, validated.stdout[-2000:]

    readme = template_repo.read(README_TEMPLATE)
    template_repo.release("2.0.0", {README_TEMPLATE: readme + "\nShipped in the second wheel.\n"})
    build_and_install(template_repo.root, tmp_path / "v2")

    check = cli(tmp_path / "v2", repo, home, "check-update", "--json")
    assert check.returncode == 0, check.stderr
    assert '"update_available": true' in check.stdout

    updated = cli(tmp_path / "v2", repo, home, "update")
    assert updated.returncode == 0, updated.stderr
    assert "v1.0.0 → v2.0.0" in updated.stdout
    assert "Shipped in the second wheel." in (repo / "README.md").read_text()
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"] == "v2.0.0"
