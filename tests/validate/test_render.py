"""Entrypoint discovery and rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import render
from generator.render import RenderToolMissing, discover_entrypoints, render_repo, substitute

CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"env": "${cluster_env:=dev}", "region": "${region}"}}


def flux_kustomization(name: str, path: str, **spec) -> dict:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": path, "prune": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}, **spec},
    }


def by_rel(entrypoints):
    return {ep.rel: ep for ep in entrypoints}


def test_included_bases_and_components_are_not_entrypoints(make_repo, good_deployment):
    repo = make_repo({
        "apps/base/web/kustomization.yaml": "resources: [deployment.yaml]\n",
        "apps/base/web/deployment.yaml": good_deployment(),
        "apps/components/debug/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
        "apps/staging/kustomization.yaml": "resources: [../base/web]\ncomponents: [../components/debug]\n",
        "apps/production/kustomization.yaml": "resources: [../base/web]\n",
    })
    assert sorted(by_rel(discover_entrypoints(repo))) == ["apps/production", "apps/staging"]


def test_flux_paths_and_cluster_dirs_are_entrypoints(make_repo):
    repo = make_repo({
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/production"),
        "clusters/prod/infra.yaml": flux_kustomization("infra", "./infrastructure/configs"),
        "apps/production/kustomization.yaml": "resources: [cm.yaml]\n",
        "apps/production/cm.yaml": CONFIGMAP,
        "infrastructure/configs/cm.yaml": CONFIGMAP,
    })
    eps = by_rel(discover_entrypoints(repo))
    assert set(eps) == {"clusters/prod", "apps/production", "infrastructure/configs"}
    # Built the way Flux builds them, not a second time as a plain kustomization.
    assert {ep.mode for ep in eps.values()} == {"flux"}
    assert eps["apps/production"].declared_by == "clusters/prod/apps.yaml: Kustomization flux-system/apps"


def test_flux_system_target_covers_its_cluster_dir(make_repo):
    repo = make_repo({
        "clusters/prod/flux-system/kustomization.yaml": "resources: [gotk-sync.yaml]\n",
        "clusters/prod/flux-system/gotk-sync.yaml": flux_kustomization("flux-system", "./clusters/prod"),
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/cm.yaml": CONFIGMAP,
    })
    assert sorted(by_rel(discover_entrypoints(repo))) == ["apps", "clusters/prod"]
    [cluster] = [r for r in render_repo(repo) if r.entrypoint.rel == "clusters/prod"]
    names = sorted((o.data["metadata"]["name"], o.source) for o in cluster.objects)
    assert names == [("apps", "clusters/prod/apps.yaml"), ("flux-system", "clusters/prod/flux-system/gotk-sync.yaml")]


def test_manifests_listed_by_a_kustomization_are_not_built_again(make_repo):
    repo = make_repo({
        "clusters/prod/kustomization.yaml": "resources: [../../shared/flux/apps.yaml]\n",
        "shared/flux/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/cm.yaml": CONFIGMAP,
    })
    assert sorted(by_rel(discover_entrypoints(repo))) == ["apps", "clusters/prod"]


def test_argocd_application_path_is_an_entrypoint(make_repo):
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd"},
        "spec": {"project": "default", "source": {"repoURL": "https://example.com/r.git", "path": "apps/production"}, "destination": {"server": "https://kubernetes.default.svc"}},
    }
    repo = make_repo({
        "clusters/prod/web.yaml": app,
        "apps/production/kustomization.yaml": "resources: [cm.yaml]\n",
        "apps/production/cm.yaml": CONFIGMAP,
    })
    eps = by_rel(discover_entrypoints(repo))
    assert (eps["apps/production"].mode, eps["clusters/prod"].mode) == ("argocd", "argocd")


def test_argocd_kustomize_options_shape_the_build(make_repo):
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "configs", "namespace": "argocd"},
        "spec": {"project": "platform", "destination": {"server": "https://kubernetes.default.svc"},
                 "source": {"repoURL": "https://example.com/r.git", "path": "configs",
                            "kustomize": {"components": ["extra/prod"], "namePrefix": "prod-", "namespace": "shop"}}},
    }
    repo = make_repo({
        "clusters/prod/configs.yaml": app,
        "configs/kustomization.yaml": "resources: [cm.yaml]\n",
        "configs/cm.yaml": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "base"}, "data": {"a": "b"}},
        "configs/extra/prod/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cm.yaml]\n",
        "configs/extra/prod/cm.yaml": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra"}, "data": {"c": "d"}},
    })
    [configs] = [r for r in render_repo(repo) if r.entrypoint.rel == "configs"]
    assert configs.error is None
    assert sorted((o.data["metadata"]["namespace"], o.data["metadata"]["name"]) for o in configs.objects) == [
        ("shop", "prod-base"), ("shop", "prod-extra")]


def test_flux_post_build_substitution(make_repo):
    disabled = {**CONFIGMAP, "metadata": {"name": "raw", "annotations": {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}}}
    repo = make_repo({
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps", targetNamespace="shop", postBuild={"substitute": {"region": "eu-1"}}),
        "apps/settings.yaml": CONFIGMAP,
        "apps/raw.yaml": disabled,
    })
    [apps] = [r for r in render_repo(repo) if r.entrypoint.rel == "apps"]
    assert apps.error is None
    objs = {o.data["metadata"]["name"]: o for o in apps.objects}
    assert objs["settings"].data["data"] == {"env": "dev", "region": "eu-1"}
    assert objs["settings"].data["metadata"]["namespace"] == "shop"
    assert objs["settings"].source == "apps/settings.yaml"
    assert "annotations" not in objs["settings"].data["metadata"]  # kustomize's origin annotation is taken off
    assert objs["raw"].data["data"]["region"] == "${region}"


@pytest.mark.parametrize(
    ("text", "post_build", "expected"),
    [
        ("${a}-${b:=x}-${c:-y}", {"substitute": {"a": "1", "c": ""}}, "1-x-y"),
        ("$${a} $a ${unset}", {"substitute": {"a": "1"}}, "${a} $a "),
        ("${unset} ${unset:=d}", {"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]}, "${unset} d"),
    ],
)
def test_substitute(text, post_build, expected):
    assert substitute(text, post_build) == expected


def test_render_error_is_attributed_to_its_directory(make_repo):
    repo = make_repo({
        "apps/good/kustomization.yaml": "resources: [cm.yaml]\n",
        "apps/good/cm.yaml": CONFIGMAP,
        "apps/broken/kustomization.yaml": "resources: [missing.yaml]\n",
    })
    results = {r.entrypoint.rel: r for r in render_repo(repo)}
    assert results["apps/good"].error is None and len(results["apps/good"].objects) == 1
    assert results["apps/broken"].objects == []
    assert "missing.yaml" in results["apps/broken"].error


def test_plain_kustomize_keeps_the_default_load_restrictor(make_repo):
    repo = make_repo({
        "apps/base/cm.yaml": CONFIGMAP,
        "apps/prod/kustomization.yaml": "resources: [../base/cm.yaml]\n",
    })
    [result] = render_repo(repo)
    assert "is not in or below" in result.error


def test_missing_flux_path_is_a_render_error(make_repo):
    repo = make_repo({"clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/nowhere")})
    results = {r.entrypoint.rel: r for r in render_repo(repo)}
    assert "does not exist" in results["apps/nowhere"].error
    assert "clusters/prod/apps.yaml" in results["apps/nowhere"].error


def test_no_render_tool(monkeypatch, make_repo):
    monkeypatch.setattr(render.shutil, "which", lambda _name: None)
    with pytest.raises(RenderToolMissing, match="kubectl"):
        render_repo(make_repo({"a/kustomization.yaml": "resources: []\n"}))


def test_kustomize_collects_garbage_only_near_a_memory_limit_that_follows_its_input():
    """GOGC=off below a limit about three times the live heap kustomize needs for that many bytes of manifests
    (floor and ceiling in MiB); a GOGC or GOMEMLIMIT the user set wins."""
    from generator.render import kustomize_environment

    mib = 2**20
    assert kustomize_environment({"PATH": "/bin"}) == {"PATH": "/bin", "GOGC": "off", "GOMEMLIMIT": "192MiB"}
    assert kustomize_environment({}, 700_000)["GOMEMLIMIT"] == "192MiB"  # 32 app overlays
    assert kustomize_environment({}, 9 * mib)["GOMEMLIMIT"] == "432MiB"  # a bundle of CRDs
    assert kustomize_environment({}, 100 * mib)["GOMEMLIMIT"] == "1024MiB"
    assert kustomize_environment({"GOGC": "100"}, 9 * mib) == {"GOGC": "100"}
    assert kustomize_environment({"GOMEMLIMIT": "2GiB"}) == {"GOMEMLIMIT": "2GiB"}


def test_each_kustomize_run_gets_the_memory_limit_of_what_it_reads(make_repo, monkeypatch):
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "x" * (6 * 2**20)}}
    repo = make_repo({
        "small/kustomization.yaml": "resources: [cm.yaml]\n",
        "small/cm.yaml": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "small"}},
        "big/kustomization.yaml": "resources: [cm.yaml]\n",
        "big/cm.yaml": big,
    })
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    limits = {}
    tool = render.find_tool()
    real_run = render.subprocess.run

    def recording_run(cmd, **kwargs):
        if cmd[:len(tool)] == tool:
            limits[Path(cmd[len(tool)]).name] = kwargs["env"]["GOMEMLIMIT"]
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(render.subprocess, "run", recording_run)
    assert [r.error for r in render_repo(repo, batch_size=1)] == [None, None]
    assert sorted(limits.values()) == ["192MiB", "288MiB"]
    limits.clear()
    monkeypatch.setattr(render.os, "cpu_count", lambda: 1)  # so both share one batch
    assert [r.error for r in render_repo(repo)] == [None, None]
    assert list(limits.values()) == ["288MiB"]  # what the whole batch reads
