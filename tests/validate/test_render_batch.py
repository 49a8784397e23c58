"""Batched rendering hands back exactly what one kustomize run per entrypoint gives, errors included."""

from __future__ import annotations

from collections import namedtuple

import pytest

from generator import render, scratch
from generator.render import _batches, discover_entrypoints, render_repo

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
Usage = namedtuple("Usage", "total used free")  # what shutil.disk_usage returns


def as_data(results):
    return [(r.entrypoint, r.error, [(o.data, o.source) for o in r.objects]) for r in results]


def recorded_kustomize_runs(monkeypatch) -> list:
    """The commands render runs from now on, until ``monkeypatch.undo()``."""
    runs: list = []
    real_run = render.subprocess.run
    monkeypatch.setattr(render.subprocess, "run", lambda cmd, **kw: runs.append(cmd) or real_run(cmd, **kw))
    return runs


def assert_same_as_single_builds(repo, batch_size=32):
    single = render_repo(repo, batch_size=1)
    batched = render_repo(repo, batch_size=batch_size)
    assert as_data(batched) == as_data(single)
    # Without origins (validate's first pass): the same objects, every source unknown.
    plain = render_repo(repo, batch_size=batch_size, origins=False)
    assert as_data(plain) == [(ep, error, [(data, None) for data, _ in objs]) for ep, error, objs in as_data(single)]
    return batched


@pytest.mark.parametrize("name", ["broken", "flux2-kustomize-helm-example"])
def test_fixtures(fixture_repo, name):
    results = assert_same_as_single_builds(fixture_repo(name))
    assert sum(len(r.objects) for r in results) > 10


def test_generated_repo(tmp_path):
    from pytest_copie.plugin import Copie

    from tests.conftest import REPO_ROOT

    copie = Copie(default_template_dir=REPO_ROOT, test_dir=tmp_path, config_file=tmp_path / "none.yml")
    answers = {
        "project_name": "acme",
        "teams": [{"name": "web", "groups": ["web-devs"]}, {"name": "data", "groups": ["data-devs"]}],
        "apps": [{"name": f"app-{n}", "team": ("web", "data")[n % 2], "image": f"ghcr.io/acme/app-{n}:1.0.{n}", "port": 8080} for n in range(4)],
    }
    result = copie.copy(extra_answers=answers)
    assert result.exit_code == 0, result.exception
    assert_same_as_single_builds(result.project_dir, batch_size=8)


def test_colliding_entrypoints_are_split_and_failures_isolated(make_repo, monkeypatch):
    """Entrypoints that generate the same object (kustomize refuses duplicates in one build; no file shows it
    beforehand) and a member that does not build: the batch is split until each builds alone; the others are
    not affected."""
    generated = "configMapGenerator:\n  - name: settings\n    literals: [a=b]\ngeneratorOptions:\n  disableNameSuffixHash: true\n"
    files = {f"env{n}/kustomization.yaml": generated for n in range(4)}
    files["broken/kustomization.yaml"] = "resources: [gone.yaml]\n"
    repo = make_repo(files)
    eps = discover_entrypoints(repo)
    runs = recorded_kustomize_runs(monkeypatch)
    done = []
    results = render_repo(repo, eps, batch_size=8, on_rendered=done.append)
    assert sum(done) == len(eps) == 5
    assert [r.entrypoint.rel for r in results if r.error] == ["broken"]
    assert all(len(r.objects) == 1 for r in results if not r.error)
    monkeypatch.undo()  # single builds to compare with, unrecorded
    assert as_data(results) == as_data(render_repo(repo, eps, batch_size=1))
    assert len(list(_batches(eps, list(range(len(eps))), size=8, workers=1))) == 1  # nothing predicted the clash
    assert len(runs) > 2  # so the batch failed and was split


def test_batches_keep_entrypoints_that_share_files_or_object_names_apart(make_repo):
    repo = make_repo({
        "base/kustomization.yaml": "resources: [ns.yaml]\n",
        "base/ns.yaml": NS,
        "dev/kustomization.yaml": "resources: [../base]\n",
        "prod/kustomization.yaml": "resources: [../base]\n",
        "other/kustomization.yaml": "resources: [cm.yaml]\n",
        "other/cm.yaml": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
        "copy/kustomization.yaml": "resources: [cm.yaml]\n",
        "copy/cm.yaml": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}},
    })
    eps = discover_entrypoints(repo)
    rel = {i: ep.rel for i, ep in enumerate(eps)}
    batches = [{rel[i] for i in b} for b in _batches(eps, list(rel), size=8, workers=1)]
    assert not any({"dev", "prod"} <= b or {"other", "copy"} <= b for b in batches)
    assert sorted(map(len, batches)) == [2, 2]


def test_no_more_kustomize_runs_at_once_than_cores(fixture_repo, monkeypatch):
    """The render pool has a thread more than cores (one parses while the others build), yet kustomize, which is
    CPU-bound, never runs more often at once than there are cores."""
    import os
    import threading
    import time

    running, most = 0, 0
    lock = threading.Lock()
    real_run = render.subprocess.run

    def counting_run(*args, **kwargs):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.05)  # long enough for every pool thread to be inside at once, if allowed
            return real_run(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(render.subprocess, "run", counting_run)
    results = render_repo(fixture_repo("flux2-kustomize-helm-example"), batch_size=1)
    assert len(results) > (os.cpu_count() or 1) + 1
    assert most == (os.cpu_count() or 1)


def cm(name: str, namespace: str | None = None) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


def flux_kustomization(directory: str, **options) -> dict:
    """A Flux Kustomization that builds ./<directory> of this repository with ``options``."""
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": directory, "namespace": "flux-system"},
        "spec": {"path": f"./{directory}", **options, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
    }


def test_members_are_told_apart_by_their_end_markers(make_repo, monkeypatch):
    """A batch lists each member, then its end marker, in order: a member that builds nothing, members with
    objects named like markers (another index, or namespaced), and members with Flux options (built through a
    layer of their own) all get exactly their own objects, and no batch fails."""
    repo = make_repo({
        "empty/kustomization.yaml": "resources: []\n",
        "lookalike/kustomization.yaml": "resources: [cm.yaml, namespaced.yaml]\n",
        "lookalike/cm.yaml": cm("gitops-forge-batch-member-end-99"),
        "lookalike/namespaced.yaml": cm("gitops-forge-batch-member-end-1", "x"),  # lookalike is member 1
        "plain/kustomization.yaml": "resources: [cm.yaml]\n",
        "plain/cm.yaml": cm("plain", "x"),
        "flux/kustomization.yaml": "resources: [cm.yaml]\n",
        "flux/cm.yaml": cm("flux"),
        "clusters/prod/apps.yaml": flux_kustomization("flux", targetNamespace="y"),
        "flux2/kustomization.yaml": "resources: [cm.yaml]\n",
        "flux2/cm.yaml": cm("flux2"),
        "clusters/prod/apps2.yaml": flux_kustomization("flux2", namePrefix="p-"),
    })
    eps = discover_entrypoints(repo)
    assert {ep.rel for ep in eps} >= {"empty", "lookalike", "plain", "flux", "flux2"}
    runs = recorded_kustomize_runs(monkeypatch)
    monkeypatch.setattr(render.os, "cpu_count", lambda: 1)  # no splitting of batches to keep cores busy
    batched = render_repo(repo, eps, batch_size=32)
    # One batch per load-restriction group (Flux builds run unrestricted), none failed and was split.
    assert len(runs) == 2 and all(cmd[2].endswith("/batch") for cmd in runs)
    monkeypatch.undo()  # single builds to compare with, unrecorded
    assert as_data(batched) == as_data(render_repo(repo, eps, batch_size=1))
    by_rel = {r.entrypoint.rel: r for r in batched}
    assert by_rel["empty"].objects == [] and not by_rel["empty"].error
    assert sorted(o.data["metadata"]["name"] for o in by_rel["lookalike"].objects) == [
        "gitops-forge-batch-member-end-1", "gitops-forge-batch-member-end-99"]
    assert by_rel["flux"].objects[0].data["metadata"]["namespace"] == "y"
    assert by_rel["flux2"].objects[0].data["metadata"]["name"] == "p-flux2"


def test_a_member_object_with_its_end_marker_id_splits_the_batch(make_repo, monkeypatch):
    """kustomize refuses a batch in which a member's object has the very id of an end marker; the batch is split
    and every entrypoint still gets what a build of its own gives."""
    repo = make_repo({
        "a/kustomization.yaml": "resources: [cm.yaml]\n",
        "a/cm.yaml": cm("gitops-forge-batch-member-end-0"),
        "b/kustomization.yaml": "resources: [cm.yaml]\n",
        "b/cm.yaml": cm("b"),
    })
    eps = discover_entrypoints(repo)
    runs = recorded_kustomize_runs(monkeypatch)
    monkeypatch.setattr(render.os, "cpu_count", lambda: 1)
    split = render_repo(repo, eps, batch_size=32)
    assert len(runs) == 3  # the batch, then each entrypoint alone
    monkeypatch.undo()  # single builds to compare with, unrecorded
    assert as_data(split) == as_data(render_repo(repo, eps, batch_size=1))
    assert [(r.entrypoint.rel, len(r.objects), r.error) for r in split] == [("a", 1, None), ("b", 1, None)]


def test_kustomize_wrappers_are_written_in_memory_when_the_machine_has_room(fixture_repo, tmp_path, monkeypatch):
    """Batch and single-build wrappers live in scratch.memory_dir() (on /dev/shm, off the disk), render the
    same objects as wrappers in the usual temporary directory, and are gone afterwards."""
    repo = fixture_repo("flux2-kustomize-helm-example")
    monkeypatch.setattr(scratch, "SHM", str(tmp_path / "no-shm"))
    on_disk = render_repo(repo)
    memory = tmp_path / "shm"
    memory.mkdir()
    monkeypatch.setattr(scratch, "SHM", str(memory))
    monkeypatch.setattr(scratch.shutil, "disk_usage", lambda _path: Usage(2**40, 0, 2**40))
    runs = recorded_kustomize_runs(monkeypatch)
    in_memory = render_repo(repo)
    tool = render.find_tool()
    single = render.render_entrypoint(discover_entrypoints(repo)[0], repo, tool)
    builds = [cmd[len(tool)] for cmd in runs if cmd[: len(tool)] == tool]
    assert len(builds) >= 2 and all(path.startswith(f"{memory.resolve()}/gitops-forge-render-") for path in builds)
    assert as_data(in_memory) == as_data(on_disk) and single.objects
    assert list(memory.iterdir()) == []


def test_a_small_or_missing_dev_shm_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(scratch, "SHM", str(tmp_path))
    monkeypatch.setattr(scratch.shutil, "disk_usage", lambda _path: Usage(2**30, 2**30 - 2**27, 2**27))
    assert scratch.memory_dir() is None  # 128 MiB free: a container's small /dev/shm
    monkeypatch.setattr(scratch.shutil, "disk_usage", lambda _path: Usage(2**32, 2**30, 2**32 - 2**30))
    assert scratch.memory_dir() == str(tmp_path)
    assert scratch.memory_dir(needed=2**30) is None  # 3 GiB free, not four times 1 GiB plus the margin
    monkeypatch.setattr(scratch, "SHM", str(tmp_path / "missing"))
    assert scratch.memory_dir() is None


def _apps(n: int) -> dict:
    files = {}
    for k in range(n):
        files[f"app-{k}/kustomization.yaml"] = "resources: [cm.yaml]\n"
        files[f"app-{k}/cm.yaml"] = cm(f"c{k}")
    return files


def test_a_full_batch_is_handed_out_before_the_rest_are_formed(make_repo, monkeypatch):
    eps = discover_entrypoints(make_repo(_apps(10)))
    footprinted = []
    real_footprint = render._footprint
    monkeypatch.setattr(render, "_footprint", lambda ep: footprinted.append(ep) or real_footprint(ep))
    batches = _batches(eps, list(range(10)), size=4, workers=2)
    first = next(batches)
    assert len(first) == 4 and len(footprinted) == 4  # kustomize can start on it now
    rest = list(batches)
    assert sorted(i for batch in [first, *rest] for i in batch) == list(range(10))
    assert max(map(len, rest)) <= 4


def test_results_stream_as_batches_finish(make_repo, monkeypatch):
    """A caller gets a finished batch's results while another batch is still rendering."""
    import threading

    repo = make_repo(_apps(6))
    eps = discover_entrypoints(repo)
    released = threading.Event()
    real_render_batch = render._render_batch

    def slow_first(batch_eps, indices, *args):
        if 0 in indices:
            released.wait(timeout=10)  # until the caller has seen another batch's results
        return real_render_batch(batch_eps, indices, *args)

    monkeypatch.setattr(render, "_render_batch", slow_first)
    seen = []
    for i, result in render.render_stream(repo, eps, batch_size=2):
        if not released.is_set():
            first_seen_while_waiting = i
            released.set()
        seen.append(i)
        assert result.error is None and len(result.objects) == 1
    assert sorted(seen) == list(range(6))
    assert first_seen_while_waiting not in (0, 1)  # app-0's batch was still held back
