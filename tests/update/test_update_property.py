"""Property: user edits in regions the template does not change survive any update."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator import questions, scaffold

from .conftest import git

README_TEMPLATE = "template/README.md.jinja"
TEMPLATE_OWNED = {".copier-answers.yml", "README.md"}

# A user's note: plain words, so it can be a YAML comment or a Markdown line.
notes = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789 -_."), min_size=1, max_size=40).map(str.strip).filter(bool)
edits = st.lists(st.tuples(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=1), notes), min_size=1, max_size=6)


def _insert(path: Path, position: float, note: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    marker = "# " if path.suffix in {".yaml", ".yml"} or path.name.startswith(".") else ""
    index = round(position * len(lines))
    lines.insert(index, f"{marker}user note: {note}\n")
    path.write_text("".join(lines))


def test_user_edits_outside_template_changes_survive_update(template_repo, tmp_path):
    v1 = template_repo.release("1.0.0")
    base = tmp_path / "base"
    scaffold.new(base, questions.complete({"project_name": "demo"}, questions.load()), v1)
    scaffold.init_git(base, "main")
    candidates = sorted(
        str(path.relative_to(base))
        for path in base.rglob("*")
        if path.is_file() and ".git" not in path.parts and str(path.relative_to(base)) not in TEMPLATE_OWNED
    )
    readme = template_repo.read(README_TEMPLATE)
    v2 = template_repo.release("2.0.0", {README_TEMPLATE: readme + "\nA paragraph added in v2.\n"})
    # Files that v2 renders differently (the README, and CI files that pin the generating release) are
    # template changes, not regions outside them: the user's notes go into the others.
    fresh = tmp_path / "fresh-v2"
    scaffold.new(fresh, questions.complete({"project_name": "demo"}, questions.load()), v2)
    candidates = [name for name in candidates if (fresh / name).is_file() and (fresh / name).read_bytes() == (base / name).read_bytes()]

    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(edits=edits)
    def check(edits):
        with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
            repo = Path(scratch) / "repo"
            subprocess.run(["git", "clone", "--quiet", str(base), str(repo)], check=True)
            for pick, position, note in edits:
                _insert(repo / candidates[pick % len(candidates)], position, note)
            # The top of the README is untouched by v2, which only appends.
            readme_path = repo / "README.md"
            readme_lines = readme_path.read_text().splitlines(keepends=True)
            readme_path.write_text("".join(readme_lines[:1] + ["Edited by the user.\n"] + readme_lines[1:]))
            git(repo, "add", "-A")
            git(repo, "commit", "-qm", "user edits")
            expected = {name: (repo / name).read_text() for name in candidates}

            result = scaffold.update(repo, v2)

            assert result.conflicts == []
            assert result.new_version == "v2.0.0"
            for name, text in expected.items():
                assert (repo / name).read_text() == text, name
            merged = readme_path.read_text()
            assert "Edited by the user.\n" in merged and "A paragraph added in v2." in merged
            shutil.rmtree(repo)

    check()
