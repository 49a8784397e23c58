"""scripts/seal-secret.sh (and scripts/encrypt-secret.sh for `secrets: sops`) of a generated repo, run for real:
kubectl builds the Secret, a stand-in kubeseal encrypts it with a throw-away certificate (openssl), and no
plaintext reaches the disk anywhere. The error paths fail with one clear sentence and change nothing."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TEMPLATE = Path(__file__).resolve().parents[1]
SECRET = "s3cr3t-Value-that-must-never-touch-the-disk"

# Stands in for kubeseal: checks it got a real certificate and a Secret on stdin, then RSA-OAEP-encrypts each
# value with the certificate's public key, as kubeseal does (minus the AES session key), through openssl's stdin.
FAKE_KUBESEAL = """#!{python}
import base64, os, subprocess, sys
import yaml
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
if "--fetch-cert" in args:
    sys.stdout.write(open(os.environ["FAKE_CERT"]).read())
    sys.exit(0)
if os.environ.get("FAKE_FAIL"):
    sys.exit("error: cannot fetch certificate: connection refused")
def option(name):
    return args[args.index(name) + 1] if name in args else None
cert = option("--cert")
assert option("--format") == "yaml" and option("--scope") == "strict", args
assert "BEGIN CERTIFICATE" in open(cert).read(), cert
secret = yaml.safe_load(sys.stdin)
assert secret["kind"] == "Secret", secret
meta = {{"name": secret["metadata"]["name"], "namespace": secret["metadata"].get("namespace") or option("--namespace")}}
sealed = {{}}
for key, value in (secret.get("data") or {{}}).items():
    encrypt = ["openssl", "pkeyutl", "-encrypt", "-certin", "-inkey", cert, "-pkeyopt", "rsa_padding_mode:oaep"]
    cipher = subprocess.run(encrypt, input=base64.b64decode(value), capture_output=True, check=True).stdout
    sealed[key] = base64.b64encode(cipher).decode()
yaml.safe_dump({{"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": meta,
                "spec": {{"encryptedData": sealed, "template": {{"metadata": meta, "type": secret.get("type", "Opaque")}}}}}}, sys.stdout)
"""

# Stands in for sops: checks it runs at the repository root with .sops.yaml and the output path, then replaces
# every data value with an ENC[...] blob (base64 of the RSA ciphertext) and adds sops metadata.
FAKE_SOPS = """#!{python}
import base64, os, subprocess, sys
import yaml
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(os.getcwd() + " " + " ".join(args) + "\\n")
assert args[0] == "encrypt" and os.path.isfile(".sops.yaml"), args
assert args[args.index("--filename-override") + 1].endswith(".sops.yaml"), args
secret = yaml.safe_load(open(args[-1]))
encrypt = ["openssl", "pkeyutl", "-encrypt", "-certin", "-inkey", os.environ["FAKE_CERT"], "-pkeyopt", "rsa_padding_mode:oaep"]
for key, value in (secret.get("data") or {{}}).items():
    cipher = subprocess.run(encrypt, input=base64.b64decode(value), capture_output=True, check=True).stdout
    secret["data"][key] = "ENC[RSA_OAEP,data:" + base64.b64encode(cipher).decode() + ",type:str]"
secret["sops"] = {{"age": [{{"recipient": "age1test", "enc": "test"}}], "mac": "ENC[test]", "version": "3.10.2",
                  "lastmodified": "2026-01-01T00:00:00Z", "encrypted_regex": "^(data|stringData)$"}}
yaml.safe_dump(secret, sys.stdout)
"""


def generate(tmp_path_factory, name: str, **answers) -> Path:
    from pytest_copie.plugin import Copie

    workdir = tmp_path_factory.mktemp(name)
    copie = Copie(default_template_dir=TEMPLATE, test_dir=workdir, config_file=workdir / "none.yml")
    result = copie.copy(extra_answers={
        "project_name": "acme-platform",
        "environments": ["dev", "prod"],
        "clusters": [{"name": "dev", "environment": "dev"}, {"name": "prod-eu", "environment": "prod"}, {"name": "prod-us", "environment": "prod"}],
        **answers,
    })
    assert result.exit_code == 0, result.exception
    return result.project_dir


@pytest.fixture(scope="module")
def sealed_template(tmp_path_factory) -> Path:
    return generate(tmp_path_factory, "seal")


@pytest.fixture(scope="module")
def sops_template(tmp_path_factory) -> Path:
    return generate(tmp_path_factory, "sops", secrets="sops")


@pytest.fixture
def workspace(tmp_path) -> dict:
    """A throw-away key pair and certificate (openssl), tools on a private PATH, temp files kept in tmp_path."""
    key, cert = tmp_path / "throwaway.key", tmp_path / "throwaway.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=sealed-secret/O=sealed-secret"], check=True, capture_output=True)
    bin_dir, tmp_dir = tmp_path / "bin", tmp_path / "tmp"
    bin_dir.mkdir()
    tmp_dir.mkdir()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod-eu",
        "clusters": [{"name": "prod-eu", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "prod-eu", "user": {}}],
        "contexts": [{"name": "prod-eu", "context": {"cluster": "prod-eu", "user": "prod-eu"}}],
    }))
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_dir),
           "KUBECONFIG": str(kubeconfig), "FAKE_LOG": str(tmp_path / "calls.log"), "FAKE_CERT": str(cert)}
    return {"root": tmp_path, "key": key, "cert": cert, "bin": bin_dir, "env": env}


def install(workspace: dict, name: str, source: str) -> None:
    tool = workspace["bin"] / name
    tool.write_text(source.format(python=sys.executable))
    tool.chmod(0o755)


def copy_repo(template: Path, workspace: dict) -> Path:
    repo = workspace["root"] / "repo"
    shutil.copytree(template, repo)
    return repo


def run(repo: Path, workspace: dict, script: str, *args: str, stdin: str = "", extra_env: dict | None = None):
    return subprocess.run([str(repo / "scripts" / script), *args], cwd=repo, input=stdin, capture_output=True, text=True,
                          env={**workspace["env"], **(extra_env or {})}, timeout=60)


def decrypt(workspace: dict, ciphertext: str) -> str:
    return subprocess.run(["openssl", "pkeyutl", "-decrypt", "-inkey", str(workspace["key"]), "-pkeyopt", "rsa_padding_mode:oaep"],
                          input=base64.b64decode(ciphertext), capture_output=True, check=True).stdout.decode()


def assert_no_plaintext_anywhere(workspace: dict) -> None:
    needles = [SECRET.encode(), base64.b64encode(SECRET.encode())]
    leaks = [str(path) for path in workspace["root"].rglob("*") if path.is_file() and not path.is_symlink()
             and any(needle in path.read_bytes() for needle in needles)]
    assert leaks == []


def use_certificate(repo: Path, workspace: dict, *clusters: str) -> None:
    """Commit the throw-away certificate as the sealing certificate of these clusters' environments."""
    for cluster in clusters:
        shutil.copy(workspace["cert"], repo / "clusters" / cluster / "pub-sealed-secrets.pem")


def listed_resources(overlay: Path) -> list[str]:
    return yaml.safe_load((overlay / "kustomization.yaml").read_text())["resources"]


def built_kinds(overlay: Path, env: dict) -> list[str]:
    built = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, env=env, check=True).stdout
    return [doc["kind"] for doc in yaml.safe_load_all(built) if doc]


# --- seal-secret.sh --------------------------------------------------------------------------------


def test_seals_from_stdin_and_writes_only_ciphertext(sealed_template, workspace):
    repo = copy_repo(sealed_template, workspace)
    install(workspace, "kubeseal", FAKE_KUBESEAL)
    use_certificate(repo, workspace, "prod-eu")
    output = "apps/prod/podinfo/sealedsecret.yaml"
    result = run(repo, workspace, "seal-secret.sh", "--cluster", "prod-eu", "--namespace", "dev-team", "--name", "podinfo",
                 "--output", output, "--", "--from-file=password=/dev/stdin", stdin=SECRET)
    assert result.returncode == 0, result.stderr
    sealed = yaml.safe_load((repo / output).read_text())
    assert sealed["kind"] == "SealedSecret" and sealed["metadata"] == {"name": "podinfo", "namespace": "dev-team"}
    assert decrypt(workspace, sealed["spec"]["encryptedData"]["password"]) == SECRET
    assert "--cert " + str(repo / "clusters/prod-eu/pub-sealed-secrets.pem") in (workspace["root"] / "calls.log").read_text()
    assert not list((repo / "apps/prod/podinfo").glob("sealedsecret.yaml.*"))  # no partial file left behind
    assert_no_plaintext_anywhere(workspace)


def test_sealing_lists_the_secret_in_its_overlay_once(sealed_template, workspace):
    """The placeholder beside the overlay is not deployed; the first real value is, and sealing again changes nothing."""
    repo = copy_repo(sealed_template, workspace)
    install(workspace, "kubeseal", FAKE_KUBESEAL)
    use_certificate(repo, workspace, "prod-eu", "prod-us")
    overlay = repo / "apps/prod/podinfo"
    assert "sealedsecret.yaml" not in listed_resources(overlay) and "SealedSecret" not in built_kinds(overlay, workspace["env"])
    for attempt in range(2):
        result = run(repo, workspace, "seal-secret.sh", "--cluster", "prod-eu", "--namespace", "dev-team", "--name", "podinfo",
                     "--output", "apps/prod/podinfo/sealedsecret.yaml", "--", "--from-file=password=/dev/stdin", stdin=SECRET)
        assert result.returncode == 0, result.stderr
        assert ("Listed it in apps/prod/podinfo/kustomization.yaml" in result.stderr) == (attempt == 0)
        assert listed_resources(overlay).count("sealedsecret.yaml") == 1
        assert built_kinds(overlay, workspace["env"]).count("SealedSecret") == 1
    assert "../../base/podinfo" in listed_resources(overlay) and not list(overlay.glob("kustomization.yaml.*"))
    # Files the kustomization already lists (the monitoring secrets of an environment) are left as they are.
    component = repo / "infrastructure/configs/monitoring/secrets/prod/kustomization.yaml"
    before = component.read_text()
    result = run(repo, workspace, "seal-secret.sh", "--cluster", "prod-eu", "--namespace", "monitoring", "--name", "grafana-admin",
                 "--output", "infrastructure/configs/monitoring/secrets/prod/grafana-admin.yaml", "--",
                 "--from-file=admin-password=/dev/stdin", stdin=SECRET)
    assert result.returncode == 0, result.stderr
    assert component.read_text() == before and "Listed it" not in result.stderr
    assert_no_plaintext_anywhere(workspace)


def test_seals_a_manifest_piped_in_with_stdin(sealed_template, workspace):
    repo = copy_repo(sealed_template, workspace)
    install(workspace, "kubeseal", FAKE_KUBESEAL)
    use_certificate(repo, workspace, "dev")
    manifest = subprocess.run(["kubectl", "--kubeconfig=/dev/null", "create", "secret", "generic", "git-auth", "--namespace", "dev-team", "--dry-run=client",
                               "-o", "yaml", f"--from-literal=password={SECRET}"], capture_output=True, text=True, check=True,
                              env=workspace["env"]).stdout
    result = run(repo, workspace, "seal-secret.sh", "--cluster", "dev", "--stdin", stdin=manifest)
    assert result.returncode == 0, result.stderr
    sealed = yaml.safe_load(result.stdout)  # no --output: the SealedSecret goes to stdout
    assert sealed["metadata"] == {"name": "git-auth", "namespace": "dev-team"}
    assert decrypt(workspace, sealed["spec"]["encryptedData"]["password"]) == SECRET
    assert_no_plaintext_anywhere(workspace)


def test_fetches_the_certificate_with_kubeseal(sealed_template, workspace):
    repo = copy_repo(sealed_template, workspace)
    install(workspace, "kubeseal", FAKE_KUBESEAL)
    result = run(repo, workspace, "seal-secret.sh", "--cluster", "prod-eu", "--fetch-cert")
    assert result.returncode == 0, result.stderr
    assert "from kubectl context prod-eu" in result.stderr
    assert (repo / "clusters/prod-eu/pub-sealed-secrets.pem").read_text().strip() == workspace["cert"].read_text().strip()
    assert "--controller-name sealed-secrets-controller --controller-namespace kube-system" in (workspace["root"] / "calls.log").read_text()


def test_missing_kubeseal_fails_with_a_clear_message(sealed_template, workspace):
    repo = copy_repo(sealed_template, workspace)
    use_certificate(repo, workspace, "dev")
    before = (repo / "apps/dev/podinfo/sealedsecret.yaml").read_text()
    env = {"PATH": f"{workspace['bin']}:/usr/bin:/bin"}
    assert shutil.which("kubeseal", path=env["PATH"]) is None
    result = run(repo, workspace, "seal-secret.sh", "--cluster", "dev", "--namespace", "dev-team", "--name", "podinfo",
                 "--output", "apps/dev/podinfo/sealedsecret.yaml", "--", "--from-file=password=/dev/stdin", stdin=SECRET, extra_env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "seal-secret.sh: kubeseal is not installed (or not on PATH); install it from "
        "https://github.com/bitnami-labs/sealed-secrets/releases and run again"]
    assert (repo / "apps/dev/podinfo/sealedsecret.yaml").read_text() == before
    assert_no_plaintext_anywhere(workspace)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--namespace", "dev-team", "--name", "x", "--", "--from-file=a=/dev/stdin"], "--cluster is required; one of: dev prod-eu prod-us"),
        (["--cluster", "staging", "--namespace", "dev-team", "--name", "x"], "unknown cluster 'staging'; one of: dev prod-eu prod-us"),
        (["--cluster", "prod-us", "--namespace", "dev-team", "--name", "x", "--", "--from-file=a=/dev/stdin"],
         "clusters/prod-eu/pub-sealed-secrets.pem holds no certificate yet; fetch it with kubectl pointed at prod-eu: "
         "scripts/seal-secret.sh --cluster prod-eu --fetch-cert"),
        (["--cluster", "dev", "--name", "x", "--", "--from-file=a=/dev/stdin"], "--namespace and --name are required (or --stdin)"),
        (["--cluster", "dev", "--namespace", "dev-team", "--name", "x"], "give the Secret's keys after --, e.g. -- --from-file=password=/dev/stdin"),
        (["--cluster", "dev", "--colour", "red"], "unknown option '--colour'; see --help"),
    ],
    ids=["no-cluster", "unknown-cluster", "placeholder-certificate", "no-name", "no-keys", "unknown-option"],
)
def test_bad_input_fails_with_one_sentence(sealed_template, workspace, args, message):
    repo = copy_repo(sealed_template, workspace)
    install(workspace, "kubeseal", FAKE_KUBESEAL)
    use_certificate(repo, workspace, "dev")
    result = run(repo, workspace, "seal-secret.sh", *args, stdin=SECRET)
    assert (result.returncode, result.stderr.strip()) == (1, f"seal-secret.sh: {message}")
    assert_no_plaintext_anywhere(workspace)


def test_a_failing_kubeseal_leaves_the_file_unchanged(sealed_template, workspace):
    repo = copy_repo(sealed_template, workspace)
    install(workspace, "kubeseal", FAKE_KUBESEAL)
    use_certificate(repo, workspace, "dev")
    target = repo / "apps/dev/podinfo/sealedsecret.yaml"
    before = target.read_text()
    result = run(repo, workspace, "seal-secret.sh", "--cluster", "dev", "--namespace", "dev-team", "--name", "podinfo",
                 "--output", str(target.relative_to(repo)), "--", "--from-file=password=/dev/stdin", stdin=SECRET,
                 extra_env={"FAKE_FAIL": "1"})
    assert result.returncode == 1 and "sealing failed; apps/dev/podinfo/sealedsecret.yaml was not changed" in result.stderr
    assert target.read_text() == before and sorted(p.name for p in target.parent.iterdir()) == sorted(
        p.name for p in (sealed_template / "apps/dev/podinfo").iterdir())
    assert_no_plaintext_anywhere(workspace)


def test_every_cluster_of_an_environment_seals_with_its_one_certificate(sealed_template, workspace):
    repo = copy_repo(sealed_template, workspace)
    install(workspace, "kubeseal", FAKE_KUBESEAL)
    use_certificate(repo, workspace, "prod-eu")
    assert not (repo / "clusters/prod-us/pub-sealed-secrets.pem").exists()  # no second certificate to drift
    result = run(repo, workspace, "seal-secret.sh", "--cluster", "prod-us", "--namespace", "dev-team", "--name", "podinfo",
                 "--", "--from-file=password=/dev/stdin", stdin=SECRET)
    assert result.returncode == 0, result.stderr
    assert decrypt(workspace, yaml.safe_load(result.stdout)["spec"]["encryptedData"]["password"]) == SECRET
    assert "--cert " + str(repo / "clusters/prod-eu/pub-sealed-secrets.pem") in (workspace["root"] / "calls.log").read_text()


def test_fetching_from_a_cluster_with_a_key_of_its_own_keeps_the_environments_certificate(sealed_template, workspace, tmp_path):
    repo = copy_repo(sealed_template, workspace)
    install(workspace, "kubeseal", FAKE_KUBESEAL)
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "other.key"), "-out", str(other),
                    "-days", "1", "-subj", "/CN=sealed-secret/O=sealed-secret"], check=True, capture_output=True)
    target = repo / "clusters/prod-eu/pub-sealed-secrets.pem"
    shutil.copy(other, target)
    result = run(repo, workspace, "seal-secret.sh", "--cluster", "prod-us", "--fetch-cert")
    assert (result.returncode, result.stderr.strip().splitlines()[-1]) == (1, (
        "seal-secret.sh: cluster prod-us has a sealing key of its own, not the one of prod (clusters/prod-eu/pub-sealed-secrets.pem); "
        'restore the environment\'s key on it (docs/secrets.md, "Several clusters per environment")'))
    assert target.read_text() == other.read_text()
    use_certificate(repo, workspace, "prod-eu")  # the key restored: prod-us serves the same certificate
    result = run(repo, workspace, "seal-secret.sh", "--cluster", "prod-us", "--fetch-cert")
    assert result.returncode == 0, result.stderr
    assert target.read_text().strip() == workspace["cert"].read_text().strip()


# --- the sealing-key runbooks of docs/secrets.md, run with stand-in kubectl, kubeseal and age ---------

# Stands in for kubectl: commands that need no cluster (--kubeconfig=/dev/null: create --dry-run, label --local)
# run the real kubectl; the others are logged with what they read on stdin, as a cluster would receive them.
FAKE_KUBECTL = """#!/bin/sh
case " $* " in
  *" --kubeconfig=/dev/null "*) exec /usr/bin/kubectl "$@" ;;
esac
printf 'kubectl %s\\n' "$*" >>"$FAKE_LOG"
case " $* " in
  *" -f - "*) cat >>"$FAKE_LOG" ;;
esac
"""

# Stands in for age: "encrypts" by copying (-r RECIPIENT -o OUT IN), "decrypts" by printing (-d -i IDENTITY IN).
FAKE_AGE = """#!/bin/sh
printf 'age %s\\n' "$*" >>"$FAKE_LOG"
if [ "$1" = -d ]; then cat "$4"; else cp "$5" "$4"; fi
"""


def doc_blocks(repo: Path, heading: str) -> list[str]:
    """The sh code blocks of one section of docs/secrets.md."""
    text = (repo / "docs/secrets.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("\n", 1)[1] for block in section.split("```")[1::2] if block.startswith("sh\n")]


def run_doc(repo: Path, workspace: dict, script: str) -> subprocess.CompletedProcess:
    for name, source in (("kubeseal", FAKE_KUBESEAL), ("kubectl", FAKE_KUBECTL), ("age", FAKE_AGE)):
        install(workspace, name, source)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=repo, capture_output=True, text=True,
                          env=workspace["env"], timeout=120)


def test_the_rotation_runbook_makes_one_key_backs_it_up_and_gives_it_to_every_cluster(sealed_template, workspace):
    repo = copy_repo(sealed_template, workspace)
    make_key, per_cluster, finish, _re_encrypt = doc_blocks(repo, "Rotate the sealing key")
    fill = {"<escrow-public-key>": "age1escrow", "<environment>": "prod", "<first-cluster>": "prod-eu"}
    script = make_key
    for _cluster in ("prod-eu", "prod-us"):
        script += per_cluster
    script += 'cp "$work/key.yaml" "$HOME/key-as-applied.yaml"\n' + finish
    for placeholder, value in fill.items():
        script = script.replace(placeholder, value)
    result = run_doc(repo, workspace, script)
    assert result.returncode == 0, result.stderr
    key = yaml.safe_load((workspace["root"] / "key-as-applied.yaml").read_text())
    assert key["type"] == "kubernetes.io/tls" and key["metadata"]["namespace"] == "kube-system"
    assert key["metadata"]["labels"] == {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"}
    backups = list(repo.glob("sealed-secrets-key-*-prod.yaml.age"))
    assert len(backups) == 1 and yaml.safe_load(backups[0].read_text()) == key  # the backup is the applied key
    log = (workspace["root"] / "calls.log").read_text()
    assert log.count("kubectl apply -f ") == 2 and log.count("rollout restart deployment sealed-secrets-controller") == 2
    assert (repo / "clusters/prod-eu/pub-sealed-secrets.pem").read_text().strip() == workspace["cert"].read_text().strip()
    assert not list(Path(workspace["env"]["TMPDIR"]).iterdir())  # the private key is gone from the disk


def test_the_restore_runbook_applies_the_environments_key_backup(sealed_template, workspace):
    repo = copy_repo(sealed_template, workspace)
    (restore, _check), = [doc_blocks(repo, "Several clusters per environment")[0].splitlines()[:2]]
    key = "apiVersion: v1\nkind: List\nitems: []\n# the key backup of prod-eu\n"
    (repo / "sealed-secrets-keys-prod-eu.yaml.age").write_text(key)
    result = run_doc(repo, workspace, restore.replace("<escrow-identity>", "escrow.key").replace("<first-cluster>", "prod-eu"))
    assert result.returncode == 0, result.stderr
    log = (workspace["root"] / "calls.log").read_text()
    # The two ends of the pipe log in either order; what kubectl read comes last.
    assert "age -d -i escrow.key sealed-secrets-keys-prod-eu.yaml.age\n" in log and "kubectl apply -f -\n" in log
    assert log.endswith(key)


# --- encrypt-secret.sh (secrets: sops) --------------------------------------------------------------


def test_encrypts_with_sops_from_the_repository_root(sops_template, workspace):
    repo = copy_repo(sops_template, workspace)
    install(workspace, "sops", FAKE_SOPS)
    output = "prod/podinfo/secret.sops.yaml"  # relative to apps/, where it runs: sops still sees the repository path
    result = subprocess.run([str(repo / "scripts/encrypt-secret.sh"), "--namespace", "dev-team", "--name", "podinfo", "--output", output,
                             "--", "--from-file=password=/dev/stdin"], cwd=repo / "apps", input=SECRET, capture_output=True,
                            text=True, env=workspace["env"], timeout=60)
    assert result.returncode == 0, result.stderr
    assert "placeholder keys" in result.stderr  # .sops.yaml still has REPLACE-with-... recipients
    encrypted = yaml.safe_load((repo / "apps" / output).read_text())
    assert encrypted["metadata"]["namespace"] == "dev-team" and "sops" in encrypted
    assert decrypt(workspace, encrypted["data"]["password"].split("data:")[1].split(",")[0]) == SECRET
    assert (workspace["root"] / "calls.log").read_text().startswith(f"{repo} encrypt --filename-override apps/prod/podinfo/secret.sops.yaml")
    # The placeholder was not deployed; the encrypted file now is, listed once however often it is encrypted again.
    assert "Listed it in prod/podinfo/kustomization.yaml" in result.stderr
    overlay = repo / "apps/prod/podinfo"
    assert listed_resources(overlay).count("secret.sops.yaml") == 1
    again = subprocess.run([str(repo / "scripts/encrypt-secret.sh"), "--namespace", "dev-team", "--name", "podinfo", "--output", output,
                            "--", "--from-file=password=/dev/stdin"], cwd=repo / "apps", input=SECRET, capture_output=True,
                           text=True, env=workspace["env"], timeout=60)
    assert again.returncode == 0 and "Listed it" not in again.stderr, again.stderr
    assert listed_resources(overlay).count("secret.sops.yaml") == 1
    assert built_kinds(overlay, workspace["env"]).count("Secret") == 1
    assert_no_plaintext_anywhere(workspace)


def test_missing_sops_fails_with_a_clear_message(sops_template, workspace):
    repo = copy_repo(sops_template, workspace)
    result = run(repo, workspace, "encrypt-secret.sh", "--namespace", "dev-team", "--name", "podinfo", "--output",
                 "apps/dev/podinfo/secret.sops.yaml", "--", "--from-file=password=/dev/stdin", stdin=SECRET,
                 extra_env={"PATH": f"{workspace['bin']}:/usr/bin:/bin"})
    assert (result.returncode, result.stderr.strip()) == (
        1, "encrypt-secret.sh: sops is not installed (or not on PATH); install it from https://github.com/getsops/sops/releases and run again")
    assert_no_plaintext_anywhere(workspace)


def test_scripts_are_executable_and_only_in_their_variant(sealed_template, sops_template):
    assert os.access(sealed_template / "scripts/seal-secret.sh", os.X_OK) and not (sealed_template / "scripts/encrypt-secret.sh").exists()
    assert os.access(sops_template / "scripts/encrypt-secret.sh", os.X_OK) and not (sops_template / "scripts/seal-secret.sh").exists()


def test_scripts_pass_shellcheck(sealed_template, sops_template):
    scripts = [sealed_template / "scripts/seal-secret.sh", sops_template / "scripts/encrypt-secret.sh"]
    result = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
