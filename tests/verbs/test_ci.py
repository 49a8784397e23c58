"""The generated CI around promote and diff: a manually started promotion that opens a pull request
(platform review for the last environment), and one rendered-diff comment per pull request / merge
request, found by the tool's marker and updated in place. The shell steps are run here against a
generated repo, with `pipx run … gitops-forge` standing for this checkout's CLI."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from generator.diff import MARKER

from ..generated.variants import render
from .conftest import APP, git, set_tag

ROOT = Path(__file__).resolve().parents[2]


def workflow(repo: Path, name: str) -> dict:
    data = yaml.safe_load((repo / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


def step(data: dict, name: str) -> dict:
    return next(s for job in data["jobs"].values() for s in job["steps"] if s.get("name") == name)


@pytest.fixture
def shim(tmp_path) -> dict[str, str]:
    """An environment whose `pipx run --spec X gitops-forge …` runs this checkout's CLI."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pipx = bin_dir / "pipx"
    pipx.write_text(f"""#!/bin/bash
[ "$1 $2" = "run --spec" ] && [ "$4" = gitops-forge ] || exit 99
shift 4
exec {sys.executable} -c "import sys; from generator.cli import app; sys.argv[0] = 'gitops-forge'; app()" "$@"
""")
    pipx.chmod(0o755)
    temp = tmp_path / "runner"
    temp.mkdir()
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT), "RUNNER_TEMP": str(temp),
            "GITHUB_OUTPUT": str(temp / "output"), "GITHUB_STEP_SUMMARY": str(temp / "summary"),
            "GITHUB_ACTOR": "octocat", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "example-org/repo",
            "GITHUB_RUN_ID": "1"}


def run_step(repo: Path, data: dict, name: str, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess:
    s = step(data, name)
    variables = {**env, **{k: str(v) for k, v in (data.get("env") or {}).items()}, **extra}
    return subprocess.run(["bash", "-eo", "pipefail", "-c", s["run"]], cwd=repo, env=variables, capture_output=True, text=True)


# --- GitHub: promote --------------------------------------------------------------------------------


def test_promote_workflow_is_dispatched_with_app_and_environments(tmp_path_factory):
    repo, answers = render(tmp_path_factory, "github", "defaults")
    data = workflow(repo, "promote.yaml")
    inputs = data["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"app", "from", "to"}
    assert inputs["from"]["options"] == answers["environments"][:-1] and inputs["to"]["required"] is False
    assert data["env"]["LAST_ENVIRONMENT"] == answers["environments"][-1]
    owners = (repo / ".github" / "CODEOWNERS").read_text()
    assert re.search(rf"^\* @{re.escape(data['env']['PLATFORM_TEAM'])}$", owners, re.M)
    opened = step(data, "Open the pull request")["run"]
    assert "gh pr create" in opened
    assert re.search(r'if \[ "\$TARGET" = "\$LAST_ENVIRONMENT" \]; then\n\s+gh pr edit "\$branch" --add-reviewer "\$PLATFORM_TEAM"', opened)
    # Inputs never appear as expressions inside a script (script injection).
    for job in data["jobs"].values():
        for s in job["steps"]:
            assert "${{ inputs" not in s.get("run", "")


@pytest.mark.usefixtures("isolated_user")
def test_promote_step_commits_on_a_branch_and_writes_the_pull_request(repo, engine, shim, tmp_path_factory):
    data = workflow(render(tmp_path_factory, "github", "argocd" if engine == "argocd" else "defaults")[0], "promote.yaml")
    set_tag(repo, "dev", "6.8.0")
    start = git(repo, "rev-parse", "HEAD").strip()
    done = run_step(repo, data, "Promote on a new branch", shim, APPS=APP, FROM="dev", TO="")
    assert done.returncode == 0, done.stdout + done.stderr
    assert Path(shim["GITHUB_OUTPUT"]).read_text() == "to=staging\n"
    assert git(repo, "branch", "--show-current").strip() == "promote/dev-1"
    assert git(repo, "log", "-1", "--format=%s").strip() == f"chore(promote): {APP} 6.8.0 from dev to staging"
    assert git(repo, "rev-parse", "HEAD~1").strip() == start
    body = (Path(shim["RUNNER_TEMP"]) / "pull-request.md").read_text()
    assert f"- {APP} 6.8.0: `apps/staging/{APP}/kustomization.yaml`" in body and "@octocat" in body

    # Nothing to promote: the run succeeds, no pull request.
    Path(shim["GITHUB_OUTPUT"]).write_text("")
    again = run_step(repo, data, "Promote on a new branch", shim, APPS=APP, FROM="dev", TO="staging", GITHUB_RUN_ID="2")
    assert again.returncode == 0 and "already runs that version" in again.stdout
    assert Path(shim["GITHUB_OUTPUT"]).read_text() == ""
    # A refusal fails the run with the tool's sentence.
    refused = run_step(repo, data, "Promote on a new branch", shim, APPS="shop", FROM="dev", TO="", GITHUB_RUN_ID="3")
    assert refused.returncode == 2 and "Unknown app 'shop'" in refused.stderr


# --- GitHub: diff -----------------------------------------------------------------------------------


def test_diff_workflow_comments_once_per_pull_request(tmp_path_factory):
    repo, _ = render(tmp_path_factory, "github", "defaults")
    data = workflow(repo, "diff.yaml")
    assert list(data["on"]) == ["pull_request"]
    assert data["env"]["MARKER"] == MARKER
    post = step(data, "Post or update the comment")
    assert post["continue-on-error"] is True
    assert "startswith(env.MARKER)" in post["run"] and "--method PATCH" in post["run"] and "--method POST" in post["run"]


@pytest.mark.usefixtures("isolated_user")
def test_diff_step_writes_the_markdown_comment(repo, engine, shim, tmp_path_factory):
    data = workflow(render(tmp_path_factory, "github", "argocd" if engine == "argocd" else "defaults")[0], "diff.yaml")
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-qc", "feature")
    set_tag(repo, "staging", "6.8.0")
    done = run_step(repo, data, "Render the base and the head, compare", shim, BASE_SHA=base)
    assert done.returncode == 0, done.stdout + done.stderr
    comment = (Path(shim["RUNNER_TEMP"]) / "diff.md").read_text()
    assert comment.startswith(MARKER + "\n")
    assert "clusters touched: staging." in comment and f"`Deployment dev-team/{APP}`" in comment
    assert Path(shim["GITHUB_STEP_SUMMARY"]).read_text() == comment


# --- GitLab -----------------------------------------------------------------------------------------


def pipeline(tmp_path_factory, shape: str = "defaults") -> tuple[dict, dict]:
    repo, answers = render(tmp_path_factory, "gitlab", shape)
    return yaml.safe_load((repo / ".gitlab-ci.yml").read_text()), answers


def test_gitlab_promote_job_is_manual_and_only_with_several_environments(tmp_path_factory):
    jobs, _ = pipeline(tmp_path_factory)
    promote = jobs["promote"]
    assert promote["stage"] in jobs["stages"]
    assert promote["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "web" && $PROMOTE_APP && $PROMOTE_FROM'}]
    script = "\n".join(promote["script"])
    assert 'gitops-forge promote "${app_list[@]}" --from "$PROMOTE_FROM" --to "${PROMOTE_TO:-}" --commit' in script
    assert "merge_request.create" in script
    single, _ = pipeline(tmp_path_factory, "single-env")
    assert "promote" not in single and "promote" not in single["stages"]


def test_gitlab_diff_job_runs_for_merge_requests_only(tmp_path_factory):
    jobs, _ = pipeline(tmp_path_factory)
    diff = jobs["diff"]
    assert diff["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert diff["variables"] == {"GIT_DEPTH": "0", "MARKER": MARKER}
    assert any('gitops-forge diff . --base "$CI_MERGE_REQUEST_DIFF_BASE_SHA" --format markdown' in line for line in diff["script"])


class FakeGitLab(http.server.BaseHTTPRequestHandler):
    notes: list[dict] = []
    calls: list[tuple[str, str, dict | None]] = []

    def _reply(self, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> dict | None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        assert self.headers["PRIVATE-TOKEN"] == "glpat-test"
        self.calls.append((self.command, self.path, body))
        return body

    def do_GET(self):  # noqa: N802
        self._record()
        self._reply(self.notes)

    def do_POST(self):  # noqa: N802
        self._reply({"id": 99, **self._record()})

    do_PUT = do_POST

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("existing", [False, True])
def test_gitlab_note_is_created_once_then_updated_in_place(existing, tmp_path_factory, tmp_path):
    jobs, _ = pipeline(tmp_path_factory)
    script = jobs["diff"]["script"][-1]
    (tmp_path / "diff.md").write_text(f"{MARKER}\nnew diff\n")
    FakeGitLab.calls = []
    FakeGitLab.notes = [{"id": 7, "body": "a reviewer's note"}]
    if existing:
        FakeGitLab.notes.append({"id": 8, "body": f"{MARKER}\nold diff\n"})
    server = http.server.HTTPServer(("127.0.0.1", 0), FakeGitLab)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "GITOPS_FORGE_NOTE_TOKEN": "glpat-test", "MARKER": MARKER, "CI_PROJECT_ID": "42",
               "CI_MERGE_REQUEST_IID": "5", "CI_API_V4_URL": f"http://127.0.0.1:{server.server_port}/api/v4"}
        done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    notes = "/api/v4/projects/42/merge_requests/5/notes"
    write = ("PUT", f"{notes}/8") if existing else ("POST", notes)
    assert [(m, p.split("?")[0], b) for m, p, b in FakeGitLab.calls] == [
        ("GET", notes, None), (*write, {"body": f"{MARKER}\nnew diff\n"})]
    # Without the token the job still passes and says what to set.
    env.pop("GITOPS_FORGE_NOTE_TOKEN")
    skipped = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert skipped.returncode == 0 and "GITOPS_FORGE_NOTE_TOKEN" in skipped.stdout

