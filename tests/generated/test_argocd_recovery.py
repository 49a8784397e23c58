"""The Argo CD disaster-recovery runbook works (issue 12, review B2): the commands that recover the repository
Secret, taken from the generated docs (docs/disaster-recovery.md, its quarterly drill, and every cluster's
README), run in bash with stand-ins on PATH. The stand-in `kubeseal --recovery-unseal` prints what the real
one prints: the Secret with an ownerReference to the SealedSecret whose uid is empty. The stand-in
`kubectl apply` refuses such an object as the API server does ("uid must not be empty") and records what it
applied; every other kubectl call is recorded, and `kubectl patch --local` runs the real kubectl offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .test_generated_repos import VARIANTS
from .variants import generate

ARGOCD = sorted(name for name, answers in VARIANTS.items() if answers.get("engine") == "argocd")

FAKE_KUBESEAL = """#!{python}
import json, os, sys
import yaml
args = sys.argv[1:]
assert "--recovery-unseal" in args, args
key = args[args.index("--recovery-private-key") + 1]
assert "BEGIN RSA PRIVATE KEY" in open(key).read(), key
sealed = yaml.safe_load(sys.stdin)
assert sealed["kind"] == "SealedSecret", sealed
meta = sealed["spec"]["template"]["metadata"]
secret = {{"apiVersion": "v1", "kind": "Secret", "type": sealed["spec"]["template"].get("type", "Opaque"),
          "metadata": {{**meta, "name": sealed["metadata"]["name"], "namespace": sealed["metadata"]["namespace"],
                       "ownerReferences": [{{"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "controller": True,
                                            "name": sealed["metadata"]["name"], "uid": ""}}]}},
          "data": {{k: "ZGVjcnlwdGVk" for k in sealed["spec"]["encryptedData"]}}}}
json.dump(secret, sys.stdout, indent=2)
"""

FAKE_KUBECTL = """#!{python}
import json, os, subprocess, sys
import yaml
args = sys.argv[1:]
with open(os.environ["CALLS"], "a") as log:
    log.write(" ".join(args) + "\\n")
if args[:1] == ["patch"] and "--local" in args:
    sys.exit(subprocess.run(["{kubectl}", "--kubeconfig=/dev/null", *args]).returncode)
if args[:1] == ["apply"]:
    assert args[1:] == ["-f", "-"], args
    for obj in yaml.safe_load_all(sys.stdin):
        if not obj:
            continue
        for ref in obj["metadata"].get("ownerReferences") or []:
            if not ref.get("uid"):
                sys.exit('The {{kind}} "{{name}}" is invalid: metadata.ownerReferences.uid: Invalid value: "": uid must not be empty'
                         .format(kind=obj["kind"], name=obj["metadata"]["name"]))
        with open(os.environ["APPLIED"], "a") as applied:
            applied.write(json.dumps(obj) + "\\n")
"""

FAKE_AGE = """#!/bin/sh
# age -d -i <identity> <file>: prints the escrowed key Secrets.
cat <<'KEY'
apiVersion: v1
kind: Secret
metadata: {name: sealed-secrets-key, namespace: kube-system}
data: {tls.key: "-----BEGIN RSA PRIVATE KEY-----"}
KEY
"""


@pytest.fixture(scope="module", params=ARGOCD)
def repo(request, tmp_path_factory):
    generated = generate(tmp_path_factory, VARIANTS[request.param])
    return generated.repo, generated.answers


@pytest.fixture
def tools(tmp_path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, source in (("kubeseal", FAKE_KUBESEAL), ("kubectl", FAKE_KUBECTL), ("age", FAKE_AGE)):
        tool = bin_dir / name
        tool.write_text(source if name == "age" else source.format(python=sys.executable, kubectl="/usr/bin/kubectl"))
        tool.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "CALLS": str(tmp_path / "calls.log"),
            "APPLIED": str(tmp_path / "applied.jsonl")}


def blocks(markdown: str, section: str, needle: str) -> list[str]:
    """The fenced shell blocks of a `## section` that contain `needle`, unindented."""
    part = markdown.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"^( *)```sh\n(.*?)^\1```", part, flags=re.S | re.M)
    return ["\n".join(line[len(indent):] for line in body.splitlines()) for indent, body in found if needle in body]


def run(block: str, repo: Path, tools: dict, cluster: str) -> subprocess.CompletedProcess:
    script = block.replace("<escrow-identity>", "escrow.key").replace("<cluster>", cluster)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=repo, env=tools, capture_output=True, text=True, timeout=60)


def applied(tools: dict) -> list[dict]:
    path = Path(tools["APPLIED"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_repository_secret_recovered(result, tools: dict, answers: dict) -> None:
    assert result.returncode == 0, result.stderr
    secrets = [o for o in applied(tools) if o["kind"] == "Secret" and o["metadata"]["namespace"] == "argocd"]
    assert [s["metadata"]["name"] for s in secrets] == [f"repo-{answers['project_name']}"]
    [secret] = secrets
    assert "ownerReferences" not in secret["metadata"]
    assert secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository"
    assert secret["data"] and secret["stringData" if "stringData" in secret else "data"]
    calls = Path(tools["CALLS"]).read_text()
    assert f"-n argocd annotate secret repo-{answers['project_name']} sealedsecrets.bitnami.com/managed=true" in calls


def test_disaster_recovery_restores_the_repository_secret(repo, tools):
    path, answers = repo
    text = (path / "docs/disaster-recovery.md").read_text()
    [step] = blocks(text, "Rebuild a cluster from Git", "--recovery-unseal")
    cluster = answers["clusters"][0]["name"]
    assert_repository_secret_recovered(run(step, path, tools, cluster), tools, answers)


def test_the_quarterly_drill_runs_exactly_that_command(repo, tools):
    path, answers = repo
    text = (path / "docs/disaster-recovery.md").read_text()
    [step] = blocks(text, "Rebuild a cluster from Git", "--recovery-unseal")
    [drill] = blocks(text, "Restore drills", "--recovery-unseal")
    assert drill.startswith(step.rstrip("\n") + "\n"), "the drill must run the runbook's command unchanged"
    cluster = answers["clusters"][0]["name"]
    assert_repository_secret_recovered(run(drill, path, tools, cluster), tools, answers)
    assert f"-n argocd get secret repo-{answers['project_name']}" in Path(tools["CALLS"]).read_text()


def test_every_cluster_readme_restores_its_repository_secret(repo, tmp_path, tools):
    path, answers = repo
    for cluster in (c["name"] for c in answers["clusters"]):
        Path(tools["APPLIED"]).unlink(missing_ok=True)
        text = (path / "clusters" / cluster / "README.md").read_text()
        [block] = blocks(text, "Bootstrap", "--recovery-unseal")
        assert f"clusters/{cluster}/repository.yaml" in block
        assert_repository_secret_recovered(run(block, path, tools, cluster), tools, answers)
