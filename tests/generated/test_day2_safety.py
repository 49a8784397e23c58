"""What a commit can and cannot do to a running cluster (issue 12, review M5 and M7), for every variant:
no app deploys a secret placeholder (so none starts Degraded or stops its Kustomization), and no tenant
namespace is deleted by a prune or a cascade."""

from __future__ import annotations

import pytest

from .test_generated_repos import VARIANTS
from .variants import generate

PLACEHOLDER = "PLACEHOLDER"


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def repo(request, tmp_path_factory):
    generated = generate(tmp_path_factory, VARIANTS[request.param])
    return generated.repo, generated.answers, generated.rendered


def test_no_app_deploys_a_secret_placeholder(repo):
    """The per-app SealedSecret / SOPS placeholders are generated beside each overlay, but no entrypoint
    renders them: an app that needs no Secret starts Healthy."""
    path, answers, rendered = repo
    apps = {a["name"]: a["team"] for a in answers["apps"]}
    placeholder = "sealedsecret.yaml" if answers["secrets"] == "sealed-secrets" else "secret.sops.yaml"
    for env in answers["environments"]:
        for app in apps:
            assert PLACEHOLDER in (path / "apps" / env / app / placeholder).read_text()  # still generated
    for result in rendered:
        for obj in (o.data for o in result.objects):
            if obj["kind"] in ("SealedSecret", "Secret") and (obj["metadata"]["name"], obj["metadata"].get("namespace")) in apps.items():
                raise AssertionError(f"{result.entrypoint.rel} deploys the placeholder {obj['kind']} {obj['metadata']['name']}")
            if obj["kind"] == "Secret" and "sops" in obj and obj["metadata"].get("namespace") in apps.values():
                assert PLACEHOLDER not in str(obj), (result.entrypoint.rel, obj["metadata"]["name"])


def test_tenant_namespaces_survive_prune_and_cascade(repo):
    _, answers, rendered = repo
    teams = {t["name"] for t in answers["teams"]}
    found = set()
    for result in rendered:
        for obj in (o.data for o in result.objects):
            if obj["kind"] != "Namespace" or obj["metadata"]["name"] not in teams:
                continue
            found.add(obj["metadata"]["name"])
            annotations = obj["metadata"].get("annotations") or {}
            if answers["engine"] == "flux":
                assert annotations.get("kustomize.toolkit.fluxcd.io/prune") == "disabled", obj["metadata"]
            else:
                options = {o.strip() for o in annotations.get("argocd.argoproj.io/sync-options", "").split(",")}
                assert {"Prune=false", "Delete=false"} <= options, obj["metadata"]
                # A namespace kept after its team left Git must not keep `tenants` OutOfSync (that would hold
                # back the waves of root behind it).
                assert annotations.get("argocd.argoproj.io/compare-options") == "IgnoreExtraneous", obj["metadata"]
    assert found == teams
