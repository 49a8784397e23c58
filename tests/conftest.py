"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Schemas of kinds only the test fixtures use (cert-manager); the template's kinds come from the bundled schemas.
TEST_SCHEMAS = REPO_ROOT / "tests" / "validate" / "schemas"


@pytest.fixture(scope="session", autouse=True)
def no_online_schema_catalog():
    """The suite uses the schemas in the checkout only: no test reaches the online CRDs-catalog unless it sets
    $GITOPS_FORGE_SCHEMA_CATALOG itself."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GITOPS_FORGE_SCHEMA_CATALOG", "none")
        yield


@pytest.fixture(scope="session")
def schema_locations() -> list[str]:
    """Extra CRD schema locations, tried before the bundled schemas: $GITOPS_FORGE_SCHEMAS (comma-separated dirs
    or URL templates, e.g. ../shared/schemas) if set, then the test-only schemas."""
    env = os.environ.get("GITOPS_FORGE_SCHEMAS", "")
    return [*(loc.strip() for loc in env.split(",") if loc.strip()), str(TEST_SCHEMAS)]


@pytest.fixture
def isolated_user(monkeypatch, tmp_path):
    """A fresh tool cache and a git identity, whatever the machine has (a fresh CI machine has none)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for key in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{key}_NAME", "Test User")
        monkeypatch.setenv(f"GIT_{key}_EMAIL", "test@example.com")
