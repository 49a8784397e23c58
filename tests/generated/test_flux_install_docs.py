"""The Flux install, upgrade and migration runbooks work as written (review B1): the shell blocks of the
generated docs run against stand-in `flux`, `helm`, `kubectl`, `ssh-*` and `git push` that record what they
were asked, and what they were asked must agree with the committed files. Above all, nothing pushes to the
default branch, and `flux bootstrap` only ever runs over manifests already merged there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from generator import scaffold, template_source
from generator.render import find_tool

from .variants import TEMPLATE, generate

BOOTSTRAP = {
    "bootstrap-ssh": {"flux_install": "bootstrap", "verify": "gpg"},
    "bootstrap-https": {"flux_install": "bootstrap", "git_url": "https://gitlab.example.com/platform/acme-platform.git",
                        "environments": ["live"], "clusters": [{"name": "live-1", "environment": "live"}],
                        "teams": [{"name": "solo", "groups": ["solo-devs"]}], "apps": [], "default_branch": "trunk"},
}
OPERATOR = {
    "operator-ssh": {},
    "operator-https": {"git_url": "https://github.com/acme/acme-platform.git", "verify": "ssh", "secrets": "sops"},
}

# One stand-in for every tool: it appends {"tool", "args", facts} to $STANDIN_LOG and prints what the real
# tool's --export would print (enough for kustomize to build the result).
STANDIN = r'''
import json, os, subprocess, sys
from pathlib import Path
tool, args = Path(sys.argv[0]).name, sys.argv[1:]
entry = {"tool": tool, "args": args}
def opt(name):
    for a in args:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    if f"--{name}" in args:
        return args[args.index(f"--{name}") + 1]
    return None
if tool == "flux" and args[:1] == ["install"]:
    print("---\n# Flux Version: v2.9.5\n# Components: " + opt("components") + "\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system")
elif tool == "flux" and args[:3] == ["create", "source", "git"]:
    print(f"---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: {args[3]}\n  namespace: flux-system\n"
          f"spec:\n  interval: {opt('interval')}0s\n  ref:\n    branch: {opt('branch')}\n  secretRef:\n    name: {opt('secret-ref')}\n  url: {opt('url')}")
elif tool == "flux" and args[:2] == ["create", "kustomization"]:
    kind, name = opt("source").split("/")
    print(f"---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {args[2]}\n  namespace: flux-system\n"
          f"spec:\n  interval: {opt('interval')}0s\n  path: {opt('path')}\n  prune: {opt('prune')}\n  sourceRef:\n    kind: {kind}\n    name: {name}")
elif tool == "flux" and args[:1] == ["bootstrap"]:
    # What bootstrap would find on the branch it clones.
    path = opt("path").removeprefix("./")
    entry["on_branch"] = {
        name: subprocess.run(["git", "show", f"{opt('branch')}:{path}/flux-system/{name}"], capture_output=True, text=True).stdout
        for name in ("gotk-components.yaml", "gotk-sync.yaml")}
elif tool == "git":
    entry["branch"] = subprocess.run([os.environ["REAL_GIT"], "branch", "--show-current"], capture_output=True, text=True).stdout.strip()
    if args[:1] != ["push"]:
        os.execv(os.environ["REAL_GIT"], ["git", *args])
elif tool == "ssh-keygen":
    key = opt("f") or args[args.index("-f") + 1]
    Path(key).write_text("PRIVATE KEY\n")
    Path(key + ".pub").write_text("ssh-ed25519 AAAA flux\n")
elif tool == "ssh-keyscan":
    print(f"{args[-1]} ssh-ed25519 AAAA")
elif tool == "kubectl":
    entry["files"] = {a.split("=", 1)[1].split("=", 1)[-1]: Path(a.split("=", 1)[1].split("=", 1)[-1]).is_file()
                      for a in args if a.startswith("--from-file=")}
    if args[:2] == ["apply", "-f"]:
        entry["applied"] = list(__import__("yaml").safe_load_all(Path(args[2]).read_text()))
elif tool == "gitops-forge":
    sys.path.insert(0, os.environ["GITOPS_FORGE_CHECKOUT"])
    with open(os.environ["STANDIN_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\n")
    from generator.cli import app
    sys.argv = ["gitops-forge", *args]
    app()
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\n")
'''


def sh_blocks(markdown: str, section: str | None = None) -> list[str]:
    """The ```sh blocks of a Markdown text (or of one `## section` of it), dedented."""
    if section:
        start = markdown.index(f"\n## {section}\n")
        end = markdown.find("\n## ", start + 1)
        markdown = markdown[start:end if end != -1 else None]
    return [textwrap.dedent(block) for block in re.findall(r"```sh\n(.*?)```", markdown, re.S)]


class Shell:
    """A git working copy of a generated repo, and bash with the stand-ins first on PATH."""

    def __init__(self, source: Path, tmp_path: Path, branch: str):
        self.repo = tmp_path / "repo"
        shutil.copytree(source, self.repo)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("flux", "helm", "kubectl", "git", "ssh-keygen", "ssh-keyscan", "gitops-forge"):
            (bin_dir / tool).write_text(f"#!{sys.executable}\n{STANDIN}")
            (bin_dir / tool).chmod(0o755)
        self.log = tmp_path / "calls.jsonl"
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STANDIN_LOG": str(self.log),
                    "REAL_GIT": shutil.which("git"), "GITOPS_FORGE_CHECKOUT": str(TEMPLATE),
                    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
                    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}
        self.git("init", "-q", "-b", branch)
        self.git("add", "-A")
        self.git("commit", "-qm", "Generate repository")

    def git(self, *args: str) -> str:
        return subprocess.run([shutil.which("git"), *args], cwd=self.repo, env=self.env, check=True, capture_output=True, text=True).stdout

    def run(self, block: str) -> None:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=self.repo, env=self.env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, (block, result.stdout, result.stderr)

    def calls(self, tool: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        calls = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [c for c in calls if tool is None or c["tool"] == tool]


def build(directory: Path) -> dict[tuple[str, str], dict]:
    out = subprocess.run([*find_tool(), str(directory)], capture_output=True, text=True, check=True).stdout
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}


def assert_never_pushes_to(shell: Shell, branch: str) -> None:
    for push in shell.calls("git"):
        if push["args"][:1] == ["push"]:
            refs = [a for a in push["args"][1:] if not a.startswith("-") and a != "origin"]
            assert refs and branch not in refs and not any(r.endswith(f":{branch}") for r in refs), push
            assert push["branch"] != branch or refs, push


@pytest.mark.parametrize("variant", sorted(BOOTSTRAP))
def test_bootstrap_install_commits_the_manifests_through_a_pull_request_first(variant, tmp_path_factory, tmp_path):
    generated = generate(tmp_path_factory, BOOTSTRAP[variant])
    answers = generated.answers
    branch = answers["default_branch"]
    shell = Shell(generated.repo, tmp_path, branch)
    for cluster in answers["clusters"]:
        name = cluster["name"]
        directory = shell.repo / "clusters" / name / "flux-system"
        readme = (directory / "README.md").read_text()
        pull_request, bootstrap = sh_blocks(readme, "Install")
        # The files the commands write are exactly the ones flux-system/kustomization.yaml builds.
        written = {Path(target).name for target in re.findall(r">>? *(\S+)", pull_request)}
        targets = {Path(target).parent for target in re.findall(r">>? *(\S+)", pull_request)}
        assert targets == {Path(f"clusters/{name}/flux-system")}
        assert written == set(yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"])

        shell.run(pull_request)
        assert shell.git("branch", "--show-current").strip() != branch
        shell.git("switch", "-q", branch)  # the pull request is merged
        shell.git("merge", "-q", "--ff-only", f"install-flux-{name}")
        shell.run(bootstrap)

        [call] = [c for c in shell.calls("flux") if c["args"][:1] == ["bootstrap"] and f"--path=clusters/{name}" in c["args"]]
        # Bootstrap runs only over real manifests merged on the branch it clones: it has nothing to push.
        for text in call["on_branch"].values():
            assert text.strip() and "Placeholder" not in text
        docs = build(directory)
        source, sync = docs[("GitRepository", "flux-system")], docs[("Kustomization", "flux-system")]
        assert source["spec"]["url"] == answers["git_url"] and source["spec"]["ref"] == {"branch": branch}
        assert source["spec"]["secretRef"] == {"name": "flux-system"}
        assert sync["spec"]["path"] == f"./clusters/{name}" and sync["spec"]["serviceAccountName"] == "kustomize-controller"
        assert f"--url={answers['git_url']}" in call["args"] and f"--branch={branch}" in call["args"]
        assert call["args"][:2] == ["bootstrap", "git"]
    assert_never_pushes_to(shell, branch)
    assert [c for c in shell.calls("git") if c["args"][:1] == ["push"]], "the pull request branch is pushed"
    # Disaster recovery bootstraps with the same command as the install, so it finds the same manifests.
    recovery = "\n".join(sh_blocks((generated.repo / "docs/disaster-recovery.md").read_text()))
    for cluster in answers["clusters"]:
        readme = (generated.repo / "clusters" / cluster["name"] / "flux-system/README.md").read_text()
        assert sh_blocks(readme, "Install")[1].strip() in recovery


@pytest.mark.parametrize("variant", sorted(OPERATOR))
def test_operator_install_is_helm_install_a_secret_and_one_kubectl_apply(variant, tmp_path_factory, tmp_path):
    generated = generate(tmp_path_factory, OPERATOR[variant])
    answers = generated.answers
    shell = Shell(generated.repo, tmp_path, answers["default_branch"])
    for cluster in answers["clusters"]:
        name = cluster["name"]
        directory = shell.repo / "clusters" / name / "flux-system"
        docs = build(directory)
        assert set(yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]) == {
            "flux-instance.yaml", "flux-operator-ocirepository.yaml", "flux-operator-helmrelease.yaml"}
        before = len(shell.calls())
        for block in sh_blocks((directory / "README.md").read_text(), "Install"):
            shell.run(block)
        calls = shell.calls()[before:]
        assert not [c for c in calls if c["tool"] == "git" or c["args"][:1] == ["bootstrap"]]  # nothing touches Git

        [helm] = [c for c in calls if c["tool"] == "helm"]
        chart, release = docs[("OCIRepository", "flux-operator")], docs[("HelmRelease", "flux-operator")]
        assert helm["args"][:3] == ["install", release["spec"]["releaseName"], chart["spec"]["url"]]
        assert helm["args"][helm["args"].index("--version") + 1] == chart["spec"]["ref"]["tag"]
        assert helm["args"][helm["args"].index("--namespace") + 1] == release["metadata"]["namespace"]

        instance = docs[("FluxInstance", "flux")]
        [secret] = [c for c in calls if c["tool"] == "kubectl" and c["args"][:3] == ["create", "secret", "generic"]]
        assert secret["args"][3] == instance["spec"]["sync"]["pullSecret"]
        assert secret["args"][secret["args"].index("--namespace") + 1] == instance["metadata"]["namespace"]
        keys = {a.split("=", 2)[1] for a in secret["args"] if a.startswith(("--from-file=", "--from-literal="))}
        if answers["git_url"].startswith("ssh://"):
            assert keys == {"identity", "identity.pub", "known_hosts"} and all(secret["files"].values())
            assert not (shell.repo / f"flux-{name}").exists()  # the private key does not stay on disk
        else:
            assert keys == {"username", "password"}

        [apply] = [c for c in calls if c["tool"] == "kubectl" and c["args"][:2] == ["apply", "-f"]]
        assert apply["args"][2] == f"clusters/{name}/flux-system/flux-instance.yaml"
        assert apply["applied"] == [instance]
        assert calls.index(helm) < calls.index(secret) < calls.index(apply)


def test_migration_from_bootstrap_runs_as_written(tmp_path):
    # Generated the way `gitops-forge new` does, so that `gitops-forge set` finds its template version.
    source = tmp_path / "generated"
    scaffold.new(source, {"project_name": "acme-platform", "flux_install": "bootstrap"}, template_source.builtin())
    answers = scaffold.read_answers(source)
    branch = answers["default_branch"]
    shell = Shell(source, tmp_path, branch)
    for cluster in answers["clusters"]:  # every cluster was bootstrapped
        for name in ("gotk-components.yaml", "gotk-sync.yaml"):
            (shell.repo / "clusters" / cluster["name"] / "flux-system" / name).write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n")
    shell.git("commit", "-qam", "Install Flux")
    switch, *per_cluster = sh_blocks((shell.repo / "docs/flux-operator-migration.md").read_text())

    shell.run(switch)

    assert shell.git("status", "--porcelain") == ""  # everything is committed on the pull request branch
    assert shell.git("branch", "--show-current").strip() != branch
    assert yaml.safe_load((shell.repo / ".copier-answers.yml").read_text())["flux_install"] == "operator"
    assert len(per_cluster) == len(answers["clusters"])
    for cluster, block in zip(answers["clusters"], per_cluster):
        directory = shell.repo / "clusters" / cluster["name"] / "flux-system"
        assert not list(directory.glob("gotk-*.yaml"))
        docs = build(directory)
        before = len(shell.calls())
        shell.run(block)
        calls = shell.calls()[before:]
        [helm] = [c for c in calls if c["tool"] == "helm"]
        assert helm["args"][helm["args"].index("--version") + 1] == docs[("OCIRepository", "flux-operator")]["spec"]["ref"]["tag"]
        [apply] = [c for c in calls if c["args"][:2] == ["apply", "-f"]]
        assert apply["applied"] == [docs[("FluxInstance", "flux")]]
        # The operator reuses bootstrap's Secret: same name.
        assert docs[("FluxInstance", "flux")]["spec"]["sync"]["pullSecret"] == "flux-system"
    assert_never_pushes_to(shell, branch)


def js_regex(pattern: str) -> re.Pattern:
    """A Renovate (JavaScript) regex in Python: named groups are written (?<name>...) there."""
    return re.compile(pattern.replace("(?<", "(?P<"))


@pytest.mark.parametrize("variant", sorted(OPERATOR))
def test_renovate_sees_every_version_of_the_flux_installation(variant, tmp_path_factory):
    """Upgrades are pull requests that change a version: Renovate must find each one."""
    generated = generate(tmp_path_factory, OPERATOR[variant])
    renovate = json.loads((generated.repo / "renovate.json").read_text())
    flux_files = [js_regex(p.strip("/")) for p in renovate["flux"]["managerFilePatterns"]]
    (manager,) = [m for m in renovate["customManagers"] if m.get("depNameTemplate") == "fluxcd/flux2"]
    for cluster in generated.answers["clusters"]:
        directory = f"clusters/{cluster['name']}/flux-system"
        # The operator's chart: the flux manager reads OCIRepository tags in any YAML file.
        assert any(p.search(f"{directory}/flux-operator-ocirepository.yaml") for p in flux_files)
        # The Flux minor of the FluxInstance: the custom manager.
        assert any(js_regex(p.strip("/")).search(f"{directory}/flux-instance.yaml") for p in manager["managerFilePatterns"])
        text = (generated.repo / directory / "flux-instance.yaml").read_text()
        version = yaml.safe_load(text)["spec"]["distribution"]["version"]
        (match,) = [m for p in manager["matchStrings"] for m in js_regex(p).finditer(text)]
        assert f"{match['currentValue']}.x" == version
        assert js_regex(manager["extractVersionTemplate"]).fullmatch("v2.10.3")["version"] == "2.10"
