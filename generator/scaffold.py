"""Rendering through Copier: new repos, updates, and re-renders after an answer change.

This is the only module that imports copier (lazily, so `--help` stays fast).
Every entry point validates first, runs Copier inside an environment that
redirects the template URL to a local bundle, then checks the result itself:
Copier exits 0 on a conflicting merge, so conflicts are detected here.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Literal

import yaml

from . import answers as answers_model
from . import scratch, staging, yaml_loader
from .compiled_templates import CompiledTemplates
from .template_source import TemplateSource, cache_dir

ANSWERS_FILE = ".copier-answers.yml"
Conflict = Literal["inline", "rej"]


class ScaffoldError(RuntimeError):
    """A generation or update could not be done; the message says why and what to do."""


@dataclass
class UpdateResult:
    old_version: str
    new_version: str
    changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ScaffoldError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result


# Copier commits whole rendered trees in throw-away repositories. Past git's auto-gc threshold (6,700 loose
# objects, a 400-app repo) every such commit starts a detached `git gc`, which takes a core from the rest of the
# command and writes into a directory Copier is deleting ("Directory not empty: '.git'").
COPIER_GIT_SETTINGS = (("gc.auto", "0"), ("maintenance.auto", "false"))


@contextmanager
def _copier_env(source: TemplateSource) -> Iterator[None]:
    """Redirect the template URL for copier's git calls, and keep git from collecting garbage in the
    background.

    Copier runs git through plumbum, whose environment is a snapshot taken at
    import time: os.environ changes made later are invisible to it.
    """
    from plumbum import local

    cache_key = source.bundle.name if source.bundle else "remote"
    with local.env(COPIER_CACHE_DIR=str(cache_dir() / "copier" / cache_key), **source.git_env(*COPIER_GIT_SETTINGS)):
        yield


# --- Copier without its per-file overhead ----------------------------------------------------------
#
# Copier compiles every path part and every `answers_relpath` afresh with `Environment.from_string` (and every
# template file again in every run), runs one `git config core.fileMode` process per written file and rebuilds
# the render context per file. Rendering a 200-app repo spends ~90% of its time there. `_fast_worker()` is
# Copier's own Worker with those costs removed, nothing else: compiled templates are kept between runs
# (compiled_templates.py), the same templates render in the same order into the same bytes and modes, and
# `copier update`'s 3-way merge runs unchanged. It relies on the Worker internals listed in
# COPIER_INTERNALS; tests/test_copier_speed.py fails loudly when a Copier release changes them.

COPIER_INTERNALS = {
    # Worker method or property -> the parameters it must still take (self excluded).
    "_render_string": ("string", "extra_context"),
    "_render_context": (),
    "_render_template": (),
    "_render_file": ("src_relpath", "dst_relpath", "extra_context"),
    "_sync_git_index_executable_bit": ("dst_relpath", "src_mode"),
    "answers_relpath": None,  # a property
    "jinja_env": None,  # a cached property
    "run_copy": (),
    "run_update": (),
}


@dataclass
class _RenderPass:
    """What stays the same while Copier writes one tree: its answers, phase and destination do not change."""

    context: dict[str, Any]
    answers_relpath: Path
    answers_source: str  # the template of answers_relpath
    file_mode: str | None = None  # `git config --type=bool core.fileMode` at the destination, once
    on_file: Any = None


def copier_internals_problems() -> list[str]:
    """What the fast Worker relies on and this Copier lacks (empty when all is there)."""
    import inspect

    from copier._jinja_ext import YieldExtension, get_yield_context  # noqa: F401 - must stay importable
    from copier._main import Worker
    from copier._vcs import get_git  # noqa: F401

    problems = []
    for name, params in COPIER_INTERNALS.items():
        member = inspect.getattr_static(Worker, name, None)
        if member is None:
            problems.append(f"copier Worker has no {name}")
        elif params is None:
            if not isinstance(member, (property, cached_property)):
                problems.append(f"copier Worker.{name} is no longer a property")
        else:
            found = list(inspect.signature(member).parameters)[1:]
            if found[: len(params)] != list(params):
                problems.append(f"copier Worker.{name} takes ({', '.join(found)}), not ({', '.join(params)})")
    if "preprocess" not in vars(YieldExtension):
        problems.append("copier's YieldExtension no longer resets its state in preprocess")
    return problems


_worker_class: Any = None
_progress: Any = None  # callable(str) told of every file written, set by `rendering_progress`


def _fast_worker() -> Any:
    global _worker_class
    if _worker_class is not None:
        return _worker_class
    from copier._main import Worker
    from copier._vcs import get_git
    from plumbum import ProcessExecutionError

    if problems := copier_internals_problems():
        # Loud, not silently slower or wrong: this Copier is outside the range pyproject.toml pins.
        raise ScaffoldError(f"this Copier release is not supported by gitops-forge ({'; '.join(problems)}); "
                            "install the Copier version pyproject.toml names")

    class FastWorker(Worker):
        """Copier's Worker, compiling each distinct template source once and deciding per render pass what
        Copier decides per file."""

        @cached_property
        def jinja_env(self) -> Any:
            env = Worker.jinja_env.func(self)  # type: ignore[attr-defined]
            self.__dict__["_gf_compiled"] = compiled = CompiledTemplates.for_environment(env, cache_dir() / "compiled-templates")
            compiled.install(env)
            return env

        def _render_string(self, string: Any, extra_context: Any = None) -> str:
            if not isinstance(string, str):
                return super()._render_string(string, extra_context)
            env = self.jinja_env
            templates = self.__dict__.setdefault("_gf_templates", {})
            template = templates.get(string)
            if template is None:
                template = templates[string] = env.from_string(string)
            else:
                # Copier resets its {% yield %} state in an extension's preprocess hook, which Jinja only
                # runs when it compiles; a cache hit must run it too.
                env.preprocess(string)
            return template.render(**self._render_context(), **(extra_context or {}))

        def _render_context(self) -> Any:
            render_pass = self.__dict__.get("_gf_pass")
            if render_pass is None:
                return super()._render_context()
            return render_pass.context

        @property
        def answers_relpath(self) -> Path:
            render_pass = self.__dict__.get("_gf_pass")
            if render_pass is None:
                return Worker.answers_relpath.fget(self)  # type: ignore[attr-defined]
            # Copier compiles the answers file's name on every access, and that compile resets the {% yield %}
            # state (_render_parts relies on it after rendering a yielding path part): reset it the same way.
            self.jinja_env.preprocess(render_pass.answers_source)
            return render_pass.answers_relpath

        def _render_template(self) -> None:
            # Copier's own answers_relpath mutates the context it builds, so it gets a fresh one.
            relpath = Worker.answers_relpath.fget(self)  # type: ignore[attr-defined]
            source = str(self.answers_file or self.template.answers_relpath)
            self.__dict__["_gf_pass"] = _RenderPass(Worker._render_context(self), relpath, source, on_file=_progress)
            try:
                super()._render_template()
            finally:
                self.__dict__.pop("_gf_pass", None)

        def _render_file(self, src_relpath: Path, dst_relpath: Path, extra_context: Any = None) -> None:
            super()._render_file(src_relpath, dst_relpath, extra_context)
            render_pass = self.__dict__.get("_gf_pass")
            if render_pass is not None and render_pass.on_file is not None:
                render_pass.on_file(str(dst_relpath))

        def _sync_git_index_executable_bit(self, dst_relpath: Path, src_mode: int) -> None:
            render_pass = self.__dict__.get("_gf_pass")
            if render_pass is None:
                return super()._sync_git_index_executable_bit(dst_relpath, src_mode)
            if render_pass.file_mode is None:
                git = get_git(context_dir=self.subproject.local_abspath)
                try:
                    render_pass.file_mode = git("config", "--type=bool", "--get", "core.fileMode").strip()
                except ProcessExecutionError:
                    render_pass.file_mode = "unset"
            # Copier does nothing unless core.fileMode is false; then its own per-file code runs.
            if render_pass.file_mode == "false":
                super()._sync_git_index_executable_bit(dst_relpath, src_mode)

    _worker_class = FastWorker
    return FastWorker


@contextmanager
def rendering_progress(on_file: Any) -> Iterator[None]:
    """Call ``on_file(relpath)`` for every file Copier writes (old and new copies of an update included),
    besides whatever an enclosing ``rendering_progress`` calls."""
    global _progress
    previous = _progress
    _progress = on_file if previous is None else _calling_both(previous, on_file)
    try:
        yield
    finally:
        _progress = previous


def _calling_both(first: Any, second: Any) -> Any:
    def on_file(relpath: str) -> None:
        first(relpath)
        second(relpath)

    return on_file


@contextmanager
def _fast_tempdir(needed: int) -> Iterator[None]:
    """Copier's temporary trees (an update renders two, plus a template clone) go to memory (scratch.py) when
    there is room for ``needed`` bytes; otherwise to the usual temporary directory."""
    previous = tempfile.tempdir
    tempfile.tempdir = scratch.memory_dir(needed) or previous
    try:
        yield
    finally:
        tempfile.tempdir = previous


def _worker_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """copier.run_copy/run_update's conversions of their arguments, for the Worker built here."""
    kwargs = dict(kwargs)
    if "dst_path" in kwargs:
        kwargs["dst_path"] = Path(kwargs["dst_path"])
    kwargs["data"] = kwargs.get("data") or {}
    return kwargs


def _tree_bytes(repo: Path) -> int:
    """A generous estimate of what one rendered copy of ``repo`` takes in a tmpfs (a page per file)."""
    tracked = _git(repo, "ls-files", "-z", check=False).stdout.count("\0")
    return tracked * 3 * 4096 + 2**24


def _run(operation: str, source: TemplateSource, *, tmp_bytes: int = 2**24, **kwargs: Any) -> None:
    """Run Copier's copy or update (through the fast Worker), turning its errors into ScaffoldError."""
    from copier._settings import SettingsModel
    from copier.errors import CopierError
    from jinja2 import TemplateError
    from plumbum import ProcessExecutionError

    try:
        with _copier_env(source), _fast_tempdir(tmp_bytes):
            # The user's copier settings are ignored: defaults and trust are ours.
            with _fast_worker()(settings=SettingsModel(), unsafe=source.trusted, quiet=True, **_worker_kwargs(kwargs)) as worker:
                getattr(worker, f"run_{operation}")()
                if compiled := worker.__dict__.get("_gf_compiled"):
                    compiled.save()
    except (CopierError, ValueError) as error:
        raise ScaffoldError(_explain(error)) from None
    except (OSError, TemplateError) as error:  # a template version with a broken or missing file
        raise ScaffoldError(f"the template could not be rendered ({type(error).__name__}: {error}); report this to the template's maintainers") from None
    except ProcessExecutionError as error:  # a git call inside copier failed
        raise ScaffoldError(f"git failed while rendering the template: {' '.join(str(error.stderr).split())}") from None


def _explain(error: Exception) -> str:
    text = " ".join(str(error).split())
    if "dirty" in text.lower():
        return "the repository has uncommitted changes; commit or stash them, then run the command again"
    if "unsafe" in text.lower():
        return f"{text} Re-run with --trust only if you trust this template."
    return text


def read_answers(repo: Path) -> dict[str, Any]:
    path = repo / ANSWERS_FILE
    try:
        data = yaml_loader.safe_load(path.read_text())
    except FileNotFoundError:
        raise ScaffoldError(f"{repo} has no {ANSWERS_FILE}; it was not generated by gitops-forge (run this inside a generated repo)") from None
    except yaml.YAMLError:
        raise ScaffoldError(f"{path} is not valid YAML; restore it from git (git checkout -- {ANSWERS_FILE})") from None
    if not isinstance(data, dict):
        raise ScaffoldError(f"{path} does not hold a mapping of answers; restore it from git")
    return data


def user_answers(recorded: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in recorded.items() if not key.startswith("_")}


def _ensure_clean_git(repo: Path) -> None:
    if not (repo / ANSWERS_FILE).exists():
        read_answers(repo)  # raises the "not generated by gitops-forge" message
    if _git(repo, "rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        raise ScaffoldError(f"{repo} is not a git repository; updates need git history (git init && git add -A && git commit)")
    if _git(repo, "rev-parse", "--verify", "HEAD", check=False).returncode != 0:
        raise ScaffoldError(f"{repo} has no commits yet; commit the generated files first (git add -A && git commit)")
    status = _git(repo, "status", "--porcelain", "--untracked-files=all").stdout.splitlines()
    if status:
        first = status[0][3:]
        raise ScaffoldError(
            f"the repository has uncommitted changes ({len(status)} path(s), e.g. {first}); "
            "commit or stash them, then run the command again"
        )


def check_destination(destination: Path, *, force: bool) -> None:
    if destination.exists() and not destination.is_dir():
        raise ScaffoldError(f"{destination} exists and is not a directory; choose another destination")
    if destination.is_dir() and any(destination.iterdir()) and not force:
        raise ScaffoldError(f"{destination} is not empty; choose a new directory or pass --force to write into it")


def new(destination: Path, answers: dict[str, Any], source: TemplateSource, *, force: bool = False, version: str | None = None,
        blobs: staging.BlobStream | None = None) -> list[str]:
    """Render a new repo at `destination`; on any error nothing is left behind. Returns written paths.
    Every file written is also streamed to ``blobs``, when given."""
    destination = destination.absolute()
    check_destination(destination, force=force)
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Render beside the destination, then move: a failure never leaves half a repo.
    with tempfile.TemporaryDirectory(prefix=".gitops-forge-", dir=destination.parent) as staging_dir:
        rendered = Path(staging_dir) / "repo"
        streaming = rendering_progress(lambda relpath: blobs.add(rendered / relpath)) if blobs else nullcontext()
        with streaming:
            _run("copy", source, src_path=source.url, dst_path=str(rendered), data=answers, defaults=True, vcs_ref=version)
        written = sorted(str(path.relative_to(rendered)) for path in rendered.rglob("*") if path.is_file())
        if destination.exists():
            for item in rendered.iterdir():
                target = destination / item.name
                if target.is_dir() and not target.is_symlink():
                    shutil.copytree(item, target, dirs_exist_ok=True)
                else:
                    shutil.move(str(item), str(target))
        else:
            rendered.rename(destination)
    return written


def init_git(repo: Path, branch: str, blobs: staging.BlobStream | None = None) -> bool:
    """Make the generated tree a git repo with a first commit; False when git has no identity to commit with.
    ``blobs``, if given, streamed the files while they were written, into a repository made on ``branch``."""
    if _git(repo, "rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        streamed = blobs is not None and blobs.move_into(repo)
        if not streamed:
            _git(repo, "init", "--quiet", f"--initial-branch={branch}")
        present = blobs.sent if streamed and blobs else set()
        try:
            staging.stage_all(repo, present)  # one pack instead of a loose object per file
        except (staging.StagingError, OSError):
            _git(repo, "add", "--all")
    else:
        _git(repo, "add", "--all")
    return _git(repo, "commit", "--quiet", "-m", "Generate repository with gitops-forge", check=False).returncode == 0


@contextmanager
def _restored_on_error(repo: Path) -> Iterator[None]:
    """The repo was clean before; a failed Copier run (which may have rewritten the answers
    file already) must leave it exactly as committed."""
    try:
        yield
    except ScaffoldError:
        _git(repo, "reset", "--quiet", "--hard", "HEAD")
        _git(repo, "clean", "--quiet", "-fd")
        raise


def _changed_paths(repo: Path) -> list[str]:
    lines = _git(repo, "status", "--porcelain", "--untracked-files=all").stdout.splitlines()
    return sorted(line[3:] for line in lines)


def _conflicts(repo: Path) -> list[str]:
    unmerged = _git(repo, "diff", "--name-only", "--diff-filter=U").stdout.split()
    rejects = [str(path.relative_to(repo)) for path in repo.rglob("*.rej") if ".git" not in path.parts]
    return sorted(set(unmerged) | set(rejects))


def update(repo: Path, source: TemplateSource, *, to_version: str | None = None, conflict: Conflict = "inline", pretend: bool = False) -> UpdateResult:
    """Move a generated repo to another template version with Copier's 3-way merge."""
    repo = repo.absolute()
    _ensure_clean_git(repo)
    recorded = read_answers(repo)
    old = str(recorded.get("_commit", "unknown"))
    target = to_version and (to_version if to_version.startswith("v") else f"v{to_version}")
    if pretend:
        return _pretend_update(repo, source, recorded, target)
    policies = _app_network_policies(repo)
    with _restored_on_error(repo):
        _run("update", source, tmp_bytes=_tree_bytes(repo), dst_path=str(repo), vcs_ref=target, defaults=True, overwrite=True, conflict=conflict, skip_answered=True)
    _carry_moved_network_policies(repo, policies)
    new_version = str(read_answers(repo).get("_commit", "unknown"))
    return UpdateResult(old, new_version, _changed_paths(repo), _conflicts(repo))


def _app_network_policies(repo: Path) -> dict[str, str]:
    """Flux apps' NetworkPolicies where templates before 0.4.0 put them: apps/base/<app>/networkpolicy.yaml."""
    return {path.parent.name: path.read_text() for path in sorted(repo.glob("apps/base/*/networkpolicy.yaml"))}


def _carry_moved_network_policies(repo: Path, before: dict[str, str]) -> None:
    """Since 0.4.0 an app's NetworkPolicy is the platform's, tenants/base/<team>/networkpolicy-<app>.yaml. Copier
    deletes the old file and writes the new one fresh, which would drop the rules a team added: carry the old
    policy over, under the new file's header and in the team's namespace. An unedited policy comes out exactly
    as the template writes it."""
    for app, old_text in before.items():
        moved = list(repo.glob(f"tenants/base/*/networkpolicy-{app}.yaml"))
        if (repo / "apps/base" / app / "networkpolicy.yaml").exists() or len(moved) != 1:
            continue
        target, team = moved[0], moved[0].parent.name
        new_text = target.read_text()
        if "apiVersion:" not in old_text or "apiVersion:" not in new_text:
            continue
        body = old_text[old_text.index("apiVersion:"):]
        if f"\n  namespace: {team}\n" not in body:
            body = body.replace(f"\n  name: {app}\n", f"\n  name: {app}\n  namespace: {team}\n", 1)
        target.write_text(new_text[:new_text.index("apiVersion:")] + body)


def _pretend_update(repo: Path, source: TemplateSource, recorded: dict[str, Any], target: str | None) -> UpdateResult:
    """Run the update on a throw-away clone and report what it would change."""
    with tempfile.TemporaryDirectory(prefix="gitops-forge-pretend-") as scratch:
        clone = Path(scratch) / "repo"
        _git(repo, "clone", "--quiet", "--no-hardlinks", str(repo), str(clone))
        result = update(clone, source, to_version=target)
    return UpdateResult(str(recorded.get("_commit", "unknown")), result.new_version, result.changed, result.conflicts)


def rerender(repo: Path, changes: dict[str, Any], source: TemplateSource) -> UpdateResult:
    """Re-render at the current template version with changed answers (add/remove)."""
    repo = repo.absolute()
    _ensure_clean_git(repo)
    recorded = read_answers(repo)
    merged = {**user_answers(recorded), **changes}
    # A repo from an older template version lacks the answers of questions added since; their defaults
    # stand in for the check (the update to a newer version records them).
    from .questions import complete

    answers_model.validate(complete(merged, check=answers_model.check_field))
    version = str(recorded.get("_commit", "unknown"))
    from copier import VcsRef

    with _restored_on_error(repo):
        _run("update", source, tmp_bytes=_tree_bytes(repo), dst_path=str(repo), data=changes, vcs_ref=VcsRef.CURRENT, defaults=True, overwrite=True, skip_answered=True)
    return UpdateResult(version, version, _changed_paths(repo), _conflicts(repo))



def render_at(answers: dict[str, Any], source: TemplateSource, version: str, destination: Path) -> list[str]:
    """Render `answers` at template `version` into the empty or missing directory `destination`, offline
    from the source's bundle (drift re-renders a repo's own answers at its recorded version; adopt
    renders inferred answers at the current one). Returns the written paths, relative to destination."""
    destination = destination.absolute()
    check_destination(destination, force=False)
    tag = version if version.startswith("v") else f"v{version}"
    _run("copy", source, src_path=source.url, dst_path=str(destination), data=user_answers(answers), defaults=True, vcs_ref=tag)
    return sorted(str(path.relative_to(destination)) for path in destination.rglob("*") if path.is_file())
