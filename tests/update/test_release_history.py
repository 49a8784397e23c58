"""The real release history: every shipped template version updates cleanly to the current one."""

from __future__ import annotations

import pytest

from generator import bundle, scaffold, template_source
from generator.validate import validate_repo

CURRENT = bundle.current_version(template_source.CHECKOUT_ROOT)
RELEASES = sorted(bundle.release_commits(template_source.CHECKOUT_ROOT))


def test_every_release_and_the_current_version_are_tagged():
    versions = [str(v) for v in template_source.builtin().versions()]
    assert "0.1.0" in versions
    assert versions[-1] == CURRENT


@pytest.mark.parametrize("old", [v for v in RELEASES if v != CURRENT])
def test_repo_from_an_old_release_updates_cleanly(old, tmp_path, schema_locations):
    source = template_source.builtin()
    repo = tmp_path / "fleet-repo"
    # Only what every version asks; the old version's own defaults fill in the rest.
    scaffold.new(repo, {"project_name": "fleet-repo"}, source, version=f"v{old}")
    assert scaffold.init_git(repo, "main")
    assert scaffold.read_answers(repo)["_commit"] == f"v{old}"

    result = scaffold.update(repo, source)

    assert result.conflicts == []
    assert result.new_version == f"v{CURRENT}"
    report = validate_repo(repo, schema_locations=schema_locations)
    assert report.render_errors == [] and report.findings == [], report.to_dict()
