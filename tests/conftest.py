"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Public fallback, so the suite also runs outside this workplace (schemas are cached after the first fetch).
CRDS_CATALOG = "https://raw.githubusercontent.com/datreeio/CRDs-catalog/main/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"


@pytest.fixture(scope="session")
def schema_locations() -> list[str]:
    """CRD schema locations, found the way a user's CI would: $GITOPS_FORGE_SCHEMAS (comma-separated dirs or
    URL templates), else ../shared/schemas next to the checkout, else the CRDs-catalog URL template."""
    if env := os.environ.get("GITOPS_FORGE_SCHEMAS"):
        return [loc.strip() for loc in env.split(",") if loc.strip()]
    shared = REPO_ROOT.parent / "shared" / "schemas"
    if shared.is_dir():
        return [str(shared)]
    return [CRDS_CATALOG]


@pytest.fixture
def isolated_user(monkeypatch, tmp_path):
    """A fresh tool cache and a git identity, whatever the machine has (a fresh CI machine has none)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for key in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{key}_NAME", "Test User")
        monkeypatch.setenv(f"GIT_{key}_EMAIL", "test@example.com")
