"""Small fixture repos written into tmp_path."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest
import yaml

GOOD_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {
                        "name": "web",
                        "image": "ghcr.io/acme/web:1.2.3",
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
                    }
                ],
            },
        },
    },
}


@pytest.fixture
def good_deployment():
    """A factory of Deployments that pass every schema and policy check."""
    return lambda: copy.deepcopy(GOOD_DEPLOYMENT)


def dump(*objects: dict) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


@pytest.fixture
def make_repo(tmp_path: Path):
    """Write {relative path: text or object(s)} under a fresh repo dir and return the dir."""

    def make(files: dict[str, str | dict | list]) -> Path:
        repo = tmp_path / "repo"
        for rel, content in files.items():
            target = repo / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, dict):
                content = dump(content)
            elif isinstance(content, list):
                content = dump(*content)
            target.write_text(textwrap.dedent(content), encoding="utf-8")
        return repo

    return make


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixture_repo(tmp_path: Path):
    """A copy of tests/validate/fixtures/<name> outside this checkout (so its git remotes play no part)."""
    import shutil

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(FIXTURES / name, target)
        return target

    return copy
