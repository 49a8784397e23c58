"""gitops-forge renders through Copier's own Worker minus its per-file overhead (generator/scaffold.py). These
tests hold it to its promise: the same bytes and file modes as raw `copier copy`/`copier update` of the same
template and answers, Copier's `{% yield %}` semantics intact, and a loud failure when a Copier release
changes the internals it relies on."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from generator import questions, scaffold
from generator.scaffold import ScaffoldError
from generator.template_source import CANONICAL_URL, TemplateSource

ROOT = Path(__file__).resolve().parents[1]
COPIER = str(Path(sys.executable).parent / "copier")


@pytest.fixture(autouse=True)
def _identity(isolated_user):
    """A git identity and a fresh tool cache (from tests/conftest.py)."""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def copier(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([COPIER, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"copier {' '.join(args)} failed:\n{result.stderr}")
    return result


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file and symlink below root (.git left out) -> (mode, content)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".git" or path.is_dir() and not path.is_symlink():
            continue
        mode = path.lstat().st_mode
        out[rel.as_posix()] = (stat.S_IMODE(mode) | (stat.S_IFMT(mode)), os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
    return out


def index(repo: Path) -> str:
    """The git index with modes, and the work tree's status: what a user would commit."""
    return git(repo, "ls-files", "--stage") + git(repo, "status", "--porcelain", "--untracked-files=all")


# --- Copier internals --------------------------------------------------------------------------------


def test_the_copier_internals_the_fast_worker_relies_on_are_there():
    assert scaffold.copier_internals_problems() == []


def test_a_copier_without_them_fails_loudly(monkeypatch):
    from copier._main import Worker  # only to simulate a Copier release that renamed an internal

    monkeypatch.setattr(scaffold, "_worker_class", None)
    monkeypatch.delattr(Worker, "_sync_git_index_executable_bit")
    with pytest.raises(ScaffoldError, match="_sync_git_index_executable_bit"):
        scaffold._fast_worker()


def test_pyproject_pins_the_copier_range_that_was_verified():
    from importlib.metadata import version

    from packaging.requirements import Requirement

    text = (ROOT / "pyproject.toml").read_text()
    pin = next(Requirement(line.strip().strip('",')) for line in text.splitlines() if line.strip().startswith('"copier'))
    assert version("copier") in pin.specifier
    assert pin.specifier.contains("9.19.1") and not pin.specifier.contains("9.20.0")


# --- {% yield %}: Copier's own scenarios, fast Worker vs raw copier ----------------------------------

YIELD_TEMPLATES = {
    "folder loop": ({"folder_loop/{% yield item from strings %}{{ item }}{% endyield %}/{{ item }}.txt.jinja": "Hello {{ item }}"},
                    {"strings": ["a", "b", "c"]}),
    "nested folder loop": (
        {"nested/{% yield s from strings %}{{ s }}{% endyield %}/{% yield i from integers %}{{ i }}{% endyield %}/{{ s }}_{{ i }}.txt.jinja":
         "Hello {{ s }} {{ i }}"},
        {"strings": ["a", "b"], "integers": [1, 2, 3]},
    ),
    # A file rendered once per item after a yielding last part: the yield state must be reset before each.
    "file loop": ({"file_loop/{% yield s from strings %}{{ s }}{% endyield %}.jinja": "Hello {{ s }}{% include 'inc.txt' %}",
                   "inc.txt": "!"},
                  {"strings": ["a.txt", "b.txt", "c.txt", ""]}),
    "dict items": ({"items/{% yield d from dicts %}{{ d.folder }}{% endyield %}/{{ d.file }}.txt.jinja": "{{ d.content }}"},
                   {"dicts": [{"folder": f"f{n}", "file": f"x{n}", "content": f"c{n}"} for n in range(3)]}),
    "answers file beside yields": (
        {"{{ _copier_conf.answers_file }}.jinja": "{{ _copier_answers|to_nice_yaml }}",
         "{% yield s from strings %}{{ s }}{% endyield %}/plain.txt": "plain",
         "same/{% yield s from strings %}{{ s }}{% endyield %}.txt.jinja": "{{ _copier_conf.answers_file }} {{ s }}"},
        {"strings": ["a", "b"]},
    ),
    # A yield over nothing leaves Copier's yield state set until the next compilation resets it: every
    # later path must still render (the reset must happen when compiled code comes from a cache too).
    "empty yield before other paths": (
        {"{% yield s from empty %}{{ s }}{% endyield %}.txt": "x",
         **{f"{name}.txt.jinja": "{{ empty|length }}" for name in ("a", "k", "z", "m/n", "m/o")}},
        {"empty": []},
    ),
}
YIELD_ERRORS = {
    "yield tag in a file": ({"file.txt.jinja": "{% yield item from strings %}{{ item }}{% endyield %}"},
                            {"strings": ["a"]}, "contains a yield tag, but it is not allowed"),
    "two yield tags in one part": (
        {"{% yield a from strings %}{{ a }}{% endyield %}{% yield b from strings %}{{ b }}{% endyield %}.txt": "x"},
        {"strings": ["a"]}, "Attempted to parse the yield tag twice"),
}


def _template(root: Path, files: dict[str, str], data: dict) -> Path:
    questions_yml = {name: {"type": "yaml", "default": value} for name, value in data.items()}
    (root / "copier.yml").parent.mkdir(parents=True, exist_ok=True)
    (root / "copier.yml").write_text(yaml.safe_dump({"_templates_suffix": ".jinja", **questions_yml}))
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def _fast_copy(template: Path, destination: Path, data: dict) -> None:
    scaffold._run("copy", TemplateSource(url=str(template), trusted=True), src_path=str(template),
                  dst_path=str(destination), data=data, defaults=True)


@pytest.mark.parametrize("case", sorted(YIELD_TEMPLATES))
def test_yield_renders_as_copier_does(tmp_path, case):
    files, data = YIELD_TEMPLATES[case]
    template = _template(tmp_path / "src", files, data)
    _fast_copy(template, tmp_path / "fast", data)
    _fast_copy(template, tmp_path / "fast-warm", data)  # compiled templates now come from the cache
    copier("copy", "--quiet", "--defaults", str(template), str(tmp_path / "raw"), cwd=tmp_path)
    fast, warm, raw = tree(tmp_path / "fast"), tree(tmp_path / "fast-warm"), tree(tmp_path / "raw")
    assert len(raw) > 1
    assert fast == raw
    assert warm == raw


@pytest.mark.parametrize("case", sorted(YIELD_ERRORS))
def test_yield_misuse_fails_as_copier_does(tmp_path, case):
    files, data, message = YIELD_ERRORS[case]
    template = _template(tmp_path / "src", files, data)
    raw = copier("copy", "--quiet", "--defaults", str(template), str(tmp_path / "raw"), cwd=tmp_path, check=False)
    assert raw.returncode != 0 and message in raw.stderr
    with pytest.raises(ScaffoldError, match=message):
        _fast_copy(template, tmp_path / "fast", data)


# --- the product template: new, add app and update vs raw copier -------------------------------------


def _answers(engine: str, apps: int = 20) -> dict:
    teams = [f"team-{n}" for n in range(3)]
    envs = ["dev", "staging", "prod"]
    given = {
        "project_name": "identity",
        "engine": engine,
        "environments": envs,
        "clusters": [{"name": f"{env}-1", "environment": env} for env in envs],
        "teams": [{"name": t, "groups": [f"{t}-devs"]} for t in teams],
        "apps": [{"name": f"app-{n}", "team": teams[n % 3], "image": f"registry.example.com/app-{n}:1.{n}.0", "port": 8080}
                 for n in range(apps)],
    }
    return questions.complete(given, questions.load())


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> tuple[Path, str, str]:
    """This checkout's template as a git repo with release X, and X+1 that changes a line, adds a file and makes a
    script executable (Copier's update code paths for content, new files and modes)."""
    root = tmp_path_factory.mktemp("template") / "repo"
    root.mkdir()
    for name in ("copier.yml", "template", "includes"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, root / name)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    run = lambda *args: subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **env})  # noqa: E731
    run("init", "-q", "-b", "main")
    run("add", "-A")
    run("commit", "-qm", "X")
    run("tag", "v9.0.0")
    readme = root / "template" / "README.md.jinja"
    readme.write_text(readme.read_text().replace("\n", "\nA line the next release adds.\n", 1))
    (root / "template" / "NEXT.md.jinja").write_text("# {{ project_name }} next\n")
    script = next(p for p in sorted((root / "template").rglob("*.sh*")))
    script.chmod(script.stat().st_mode ^ 0o111)
    run("add", "-A")
    run("commit", "-qm", "X+1")
    run("tag", "v9.0.1")
    return root, "v9.0.0", "v9.0.1"


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_new_is_byte_identical_to_copier_copy(tmp_path, engine, monkeypatch):
    """gitops-forge new (canonical URL redirected to this checkout's bundle) vs copier copy of the same."""
    from generator import template_source

    answers = _answers(engine)
    source = template_source.from_checkout(ROOT)
    scaffold.new(tmp_path / "forge", answers, source)
    compiled = _count_compilations(monkeypatch)
    scaffold.new(tmp_path / "forge-warm", answers, source)  # every template's compiled code from the cache
    assert compiled == []
    data = tmp_path / "answers.yml"
    data.write_text(yaml.safe_dump(answers))
    copier("copy", "--quiet", "--trust", "--defaults", "--data-file", str(data), CANONICAL_URL, str(tmp_path / "raw"),
           cwd=tmp_path, env={**source.git_env(), "COPIER_CACHE_DIR": str(tmp_path / "cc")})
    forge, warm, raw = tree(tmp_path / "forge"), tree(tmp_path / "forge-warm"), tree(tmp_path / "raw")
    assert len(raw) > 500
    assert sorted(forge) == sorted(raw)
    assert forge == raw
    assert warm == raw


def _count_compilations(monkeypatch) -> list[str]:
    import jinja2

    compiled: list[str] = []
    compile_ = jinja2.Environment.compile

    def counting(self, source, *args, **kwargs):
        if isinstance(source, str):  # Copier also "compiles" non-string question settings (True): no source
            compiled.append(source)
        return compile_(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return compiled


def _generated(tmp_path: Path, releases, engine: str) -> tuple[Path, Path, TemplateSource]:
    """The same repo twice (release X, committed, with a user edit), one for gitops-forge, one for raw copier."""
    template, old, _ = releases
    data = tmp_path / "answers.yml"
    data.write_text(yaml.safe_dump(_answers(engine)))
    base = tmp_path / "base"
    copier("copy", "--quiet", "--trust", "--defaults", "--data-file", str(data), "--vcs-ref", old, str(template), str(base),
           cwd=tmp_path)
    readme = base / "README.md"
    readme.write_text(readme.read_text() + "\nOur own notes.\n")
    git(base, "init", "-q", "-b", "main")
    git(base, "add", "-A")
    git(base, "commit", "-qm", "generated")
    forge, raw = tmp_path / "forge", tmp_path / "raw"
    for clone in (forge, raw):
        git(tmp_path, "clone", "-q", str(base), str(clone))
    return forge, raw, TemplateSource(url=str(template), trusted=True)


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_update_is_byte_identical_to_copier_update(tmp_path, releases, engine):
    forge, raw, source = _generated(tmp_path, releases, engine)
    result = scaffold.update(forge, source)
    copier("update", "--quiet", "--trust", "--defaults", "--skip-answered", str(raw), cwd=tmp_path)
    assert result.new_version == releases[2] and "NEXT.md" in result.changed
    assert tree(forge) == tree(raw)
    assert index(forge) == index(raw)


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_add_app_is_byte_identical_to_copier_update(tmp_path, releases, engine):
    forge, raw, source = _generated(tmp_path, releases, engine)
    apps = scaffold.read_answers(forge)["apps"]
    changes = {"apps": [*apps, {"name": "extra", "team": "team-1", "image": "registry.example.com/extra:1.0.0", "port": 8080}]}
    result = scaffold.rerender(forge, changes, source)
    data = tmp_path / "changes.yml"
    data.write_text(yaml.safe_dump(changes))
    copier("update", "--quiet", "--trust", "--defaults", "--skip-answered", "--vcs-ref", ":current:", "--data-file",
           str(data), str(raw), cwd=tmp_path)
    assert any("extra" in path for path in result.changed)
    assert tree(forge) == tree(raw)
    assert index(forge) == index(raw)
