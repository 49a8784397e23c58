"""Documentation that cannot rot: in the tool's own docs and in every generated variant's docs, internal
links (files and #anchors) resolve, every `gitops-forge …` command parses with the real CLI, the pages each
answer variant needs exist, and docs/answers.md is exactly what copier.yml generates."""

from __future__ import annotations

import itertools
import re
import shlex
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import typer
import typer.main
import yaml

from generator import docs_answers
from generator.cli import app

from .generated.variants import CI_PROVIDERS, VARIANTS, render, variant_id

ROOT = Path(__file__).resolve().parents[1]
TOOL_DOCS = ["README.md", "CHANGELOG.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
TOOL_PAGES = {"quickstart.md", "answers.md", "updating.md", "comparison.md", "faq.md", "architecture.md"}
# Pages every generated repo has, and pages that depend on an answer.
GENERATED_PAGES = {
    "architecture.md", "branch-protection.md", "ci.md", "disaster-recovery.md", "gitops-vs-ci.md",
    "onboarding.md", "promotion.md", "rollback.md", "updating.md",
}
CI_FILES = {
    "github": [".github/workflows/validate.yaml", ".github/workflows/template-update.yaml", ".github/workflows/diff.yaml",
               ".github/workflows/promote.yaml"],  # promote.yaml: only with a second environment
    "gitlab": [".gitlab-ci.yml"],
    "none": [],
}

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
STOP_TOKENS = {"&&", "||", "|", ";", ">", ">>", "<", "2>&1", "&"}
ALTERNATIVE = "\x00"
# Marks a command quoted inline in prose: it may name a command without its required arguments.
INLINE = "\x01"

# Typer ≥ 0.20 parses with its own copy of click; older Typer with click itself. Accept both.
try:
    from typer._click import exceptions as _typer_click_exceptions
except ImportError:  # pragma: no cover - older Typer
    _typer_click_exceptions = click.exceptions
USAGE_ERRORS = (click.UsageError, _typer_click_exceptions.UsageError)
EXITS = (click.exceptions.Exit, typer.Exit)


# --- markdown -------------------------------------------------------------------------------------


@dataclass
class Markdown:
    path: Path
    prose: list[tuple[int, str]]  # (line number, text) outside code blocks
    code: list[tuple[int, str]]  # (line number, text) inside fenced code blocks

    @classmethod
    def read(cls, path: Path) -> "Markdown":
        prose, code, fenced = [], [], False
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if FENCE.match(line):
                fenced = not fenced
                continue
            (code if fenced else prose).append((number, line))
        return cls(path, prose, code)

    def links(self) -> list[tuple[int, str]]:
        return [(n, m.group(1)) for n, line in self.prose for m in LINK.finditer(INLINE_CODE.sub("", line))]

    def anchors(self) -> set[str]:
        seen: dict[str, int] = {}
        anchors = set()
        for _, line in self.prose:
            match = HEADING.match(line)
            if not match:
                continue
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
        return anchors

    def inline_code(self) -> list[tuple[int, str]]:
        return [(n, m.group(2).strip()) for n, line in self.prose for m in INLINE_CODE.finditer(line)]

    def code_lines(self) -> list[tuple[int, str]]:
        """Code lines with backslash continuations joined."""
        joined: list[tuple[int, str]] = []
        pending: tuple[int, str] | None = None
        for number, line in self.code:
            if pending:
                number, line = pending[0], pending[1] + " " + line.strip()
                pending = None
            if line.rstrip().endswith("\\"):
                pending = (number, line.rstrip()[:-1])
            else:
                joined.append((number, line))
        if pending:
            joined.append(pending)
        return joined


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup and punctuation dropped, lowercase, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = text.replace("`", "").strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


def broken_links(files: list[Path], root: Path) -> list[str]:
    problems = []
    for path in files:
        doc = Markdown.read(path)
        for number, target in doc.links():
            if EXTERNAL.match(target):
                continue
            where = f"{path.relative_to(root)}:{number}: {target}"
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path.resolve()
            if not resolved.is_relative_to(root.resolve()):
                problems.append(f"{where} points outside the repository")
            elif not resolved.exists():
                problems.append(f"{where} does not exist")
            elif anchor:
                if resolved.suffix != ".md" or anchor not in Markdown.read(resolved).anchors():
                    problems.append(f"{where}: no heading with anchor #{anchor}")
    return problems


# --- gitops-forge commands ------------------------------------------------------------------------


def commands_in_markdown(path: Path) -> list[tuple[int, str]]:
    doc = Markdown.read(path)
    found = []
    for number, span in doc.inline_code():
        if re.match(r"(\$\s+)?gitops-forge(\s|$)", span):
            found.append((number, INLINE + span.replace("\\|", ALTERNATIVE)))
    for number, line in doc.code_lines():
        found += [(number, segment) for segment in shell_segments(line)]
    return found


def commands_in_ci(path: Path) -> list[tuple[int, str]]:
    """`gitops-forge …` invocations in the shell scripts of a GitHub workflow or a GitLab pipeline."""
    scripts: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("run", "script", "before_script", "after_script"):
                    scripts.extend([value] if isinstance(value, str) else [v for v in value if isinstance(v, str)])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(path.read_text()))
    found = []
    for script in scripts:
        for line in script.replace("\\\n", " ").splitlines():
            found += [(0, segment) for segment in shell_segments(line)]
    return found


def shell_segments(line: str) -> list[str]:
    """The `gitops-forge …` commands of one shell line: at the start of a command (after `&&`, `;`, `|`,
    variable assignments) or run by `pipx run [--spec X]`; mentions inside quotes and comments do not count."""
    line = re.sub(r"^\s*\$\s+", "", line)
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:  # not shell (YAML, prose); only a line that starts with the command must parse
        return [line.strip()] if re.match(r"\s*gitops-forge(\s|$)", line) else []
    found, segment = [], []
    for token in [*tokens, ";"]:
        if len(token) > 1 and token.endswith(";"):
            segment.append(token[:-1])
            token = ";"
        if token in STOP_TOKENS or token.startswith((">", "2>")):
            found += _command_in(segment)
            segment = []
        else:
            segment.append(token)
    return [shlex.join(command) for command in found]


def _command_in(segment: list[str]) -> list[list[str]]:
    while segment and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", segment[0]):
        segment = segment[1:]  # VAR=value prefixes
    if segment[:2] == ["pipx", "run"]:
        segment = segment[2:]
        while segment and segment[0].startswith("-"):
            segment = segment[2:] if segment[0] == "--spec" else segment[1:]
    return [segment] if segment and segment[0] == "gitops-forge" else []


def argv_variants(command: str) -> list[list[str]]:
    """The argument lists a documented command stands for: `a|b` alternatives expanded, `[OPTIONAL]`
    brackets and a trailing `…` dropped, and shell operators, redirections and comments cut off."""
    tokens = shlex.split(command.replace("`", ""), comments=True)
    assert tokens and tokens[0] == "gitops-forge", command
    argv = []
    for token in tokens[1:]:
        if token in STOP_TOKENS or token.startswith((">", "2>")):
            break
        argv.append(token)
    while argv and argv[-1] in ("…", "..."):
        argv.pop()
    argv = [token[1:-1] if re.fullmatch(r"\[[^\]]+\]", token) else token for token in argv]
    choices = [token.replace("|", ALTERNATIVE).split(ALTERNATIVE) if not token.startswith("-") or "=" not in token
               else [token] for token in argv]
    return [list(combination) for combination in itertools.product(*choices)]


PLACEHOLDER = re.compile(r"^(<[^>]+>|[A-Z][A-Z0-9_]*)$")


def parse_command(argv: list[str]) -> None:
    """Parse argv with the real CLI, the way it parses before running a command; raises a UsageError.

    A command that stops at a group (`gitops-forge add`) names the group and is accepted; placeholders
    (NAME, PORT, <file>) stand for any value, so they are replaced by a valid one where the option is typed.
    """
    command = typer.main.get_command(app)
    ctx = None
    name = "gitops-forge"
    while True:
        is_group = hasattr(command, "resolve_command")
        if is_group and not argv:
            return  # a group named without a subcommand
        argv = _fill_placeholders(command, argv)
        try:
            ctx = command.make_context(name, list(argv), parent=ctx, resilient_parsing=False)
        except EXITS:
            return  # --help, --version
        if not is_group:
            return
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            return
        name, command, argv = command.resolve_command(ctx, rest)


def _fill_placeholders(command, argv: list[str]) -> list[str]:
    options = {opt: param for param in command.params if param.param_type_name == "option" for opt in param.opts}
    filled = list(argv)
    for index, token in enumerate(argv[:-1]):
        param = options.get(token)
        value = argv[index + 1]
        if param is None or getattr(param, "is_flag", False) or not PLACEHOLDER.match(value):
            continue
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        click_type = getattr(param, "type", None)
        if annotation in (int, float) or isinstance(click_type, (click.types.IntParamType, click.types.FloatParamType)):
            filled[index + 1] = "1"
        elif isinstance(click_type, click.Choice):
            filled[index + 1] = str(click_type.choices[0])
    return filled


def unparsable(commands: list[tuple[str, int, str]]) -> list[str]:
    problems = []
    for where, number, command in commands:
        inline = command.startswith(INLINE)
        try:
            variants = argv_variants(command.removeprefix(INLINE))
        except ValueError as error:
            problems.append(f"{where}:{number}: {command}: not a shell command line ({error})")
            continue
        for argv in variants:
            try:
                parse_command(argv)
            except USAGE_ERRORS as error:
                if inline and type(error).__name__ == "MissingParameter":
                    continue  # prose naming a command, e.g. "add one with `gitops-forge add app`"
                problems.append(f"{where}:{number}: gitops-forge {' '.join(argv)}: {error.format_message()}")
    return problems


# --- the checkers can fail ------------------------------------------------------------------------


def test_link_checker_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Some `code` heading!\n\n[ok](b.md#other-part) [self](#some-code-heading)\n"
                                   "[gone](missing.md) [bad anchor](b.md#nope) `[not a link](x.md)`\n"
                                   "```\n[in code](ignored.md)\n```\n[web](https://example.com/x.md)\n")
    (tmp_path / "b.md").write_text("# B\n\n## Other part\n")
    problems = broken_links([tmp_path / "a.md"], tmp_path)
    assert len(problems) == 2, problems
    assert "missing.md does not exist" in problems[0] and "no heading with anchor #nope" in problems[1]


def test_command_checker_rejects_unknown_commands_and_options():
    def errors(command: str) -> list[str]:
        return unparsable([("doc", 1, command)])

    assert errors("gitops-forge add app NAME --team TEAM --image REGISTRY/REPOSITORY:TAG --port PORT") == []
    assert errors("gitops-forge remove app\x00env\x00cluster\x00team NAME") == []
    assert errors("gitops-forge update [PATH] --conflict inline\x00rej  # comment") == []
    assert errors("gitops-forge add …") == []
    assert errors("\x01gitops-forge add app") == []  # named in prose
    assert errors("\x01gitops-forge add app NAME --colour red")  # ...but still only with real options
    assert errors("gitops-forge add app NAME --team TEAM --image I --port 80 --replicas 3")  # unknown option
    assert errors("gitops-forge frobnicate app NAME")  # unknown command
    assert errors("gitops-forge promote APP")  # missing required --from
    assert errors("gitops-forge add app NAME --team TEAM --image I --port eighty")  # not an integer
    assert errors("gitops-forge add app NAME")  # missing required options
    assert shell_segments('pipx run --spec "$X" gitops-forge update . > log 2>&1 || status=$?') == ["gitops-forge update ."]
    assert shell_segments("pip install .   # install the gitops-forge command") == []
    assert shell_segments('title="Update from the gitops-forge template"') == []
    assert shell_segments('printf x "$r"; gitops-forge check-update --json "$r"') == ["gitops-forge check-update --json '$r'"]
    assert errors("gitops-forge update 'unbalanced")


# --- the tool's own docs --------------------------------------------------------------------------


def test_tool_docs_pages_exist_and_the_readme_links_them():
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert TOOL_PAGES <= pages
    linked = {target.partition("#")[0] for _, target in Markdown.read(ROOT / "README.md").links()}
    assert {f"docs/{page}" for page in pages} <= linked


def test_readme_starts_with_setup_and_test_commands():
    code = [line for _, line in Markdown.read(ROOT / "README.md").code_lines()][:3]
    assert code[0].startswith("pip install .") and code[1].startswith("gitops-forge new ") and code[2].startswith("python -m pytest")


def test_tool_docs_links_resolve():
    assert broken_links([ROOT / name for name in TOOL_DOCS], ROOT) == []


def test_tool_docs_commands_parse():
    commands = [(name, n, c) for name in TOOL_DOCS for n, c in commands_in_markdown(ROOT / name)]
    assert len(commands) >= 20
    assert unparsable(commands) == []


def test_answers_reference_is_generated_from_copier_yml():
    committed = (ROOT / "docs" / "answers.md").read_text()
    assert committed == docs_answers.render(ROOT / "copier.yml"), (
        f"docs/answers.md is out of date with copier.yml; regenerate it: {docs_answers.REGENERATE}"
    )


def test_answers_reference_explains_every_question():
    from generator import questions

    text = (ROOT / "docs" / "answers.md").read_text()
    anchors = Markdown.read(ROOT / "docs" / "answers.md").anchors()
    for name in questions.load(ROOT / "copier.yml"):
        assert name in anchors and f"[`{name}`](#{name})" in text, name


# --- generated docs -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=VARIANTS, ids=variant_id)
def generated(request, tmp_path_factory):
    ci, shape = request.param
    repo, answers = render(tmp_path_factory, ci, shape)
    return ci, repo, answers


def markdown_files(repo: Path) -> list[Path]:
    return sorted(p for p in repo.rglob("*.md") if ".git" not in p.relative_to(repo).parts)


def test_generated_docs_pages_exist_and_the_readme_links_them(generated):
    _, repo, _ = generated
    pages = {p.name for p in (repo / "docs").glob("*.md")}
    assert GENERATED_PAGES <= pages
    for page in sorted(pages):
        assert (repo / "docs" / page).read_text().strip(), f"docs/{page} is empty"
    linked = {target.partition("#")[0] for _, target in Markdown.read(repo / "README.md").links()}
    assert {f"docs/{page}" for page in pages} <= linked


def test_generated_docs_links_resolve(generated):
    _, repo, _ = generated
    assert broken_links(markdown_files(repo), repo) == []


def test_generated_docs_and_ci_commands_parse(generated):
    ci, repo, _ = generated
    commands = [(p.relative_to(repo).as_posix(), n, c) for p in markdown_files(repo) for n, c in commands_in_markdown(p)]
    commands += [(name, n, c) for name in CI_FILES[ci] if (repo / name).exists() for n, c in commands_in_ci(repo / name)]
    assert len(commands) >= 10
    if ci != "none":
        assert any(c.startswith("gitops-forge update") for where, _, c in commands if where in CI_FILES[ci])
    assert unparsable(commands) == []


REPO_FILE = re.compile(r"^(\.github/|\.gitlab/|scripts/|docs/)[\w./-]+$|^(renovate\.json|\.pre-commit-config\.yaml|\.yamllint|"
                       r"\.gitlab-ci\.yml|\.copier-answers\.yml|\.gitignore)$")


def test_generated_docs_mention_only_files_the_variant_has(generated):
    _, repo, _ = generated
    missing = []
    for path in markdown_files(repo):
        for number, span in Markdown.read(path).inline_code():
            if REPO_FILE.match(span) and not span.endswith("/") and not (repo / span).exists():
                missing.append(f"{path.relative_to(repo)}:{number}: `{span}`")
            elif REPO_FILE.match(span) and span.endswith("/") and not (repo / span).is_dir():
                missing.append(f"{path.relative_to(repo)}:{number}: `{span}`")
    assert missing == []


@pytest.mark.parametrize("ci", CI_PROVIDERS)
def test_ci_docs_describe_the_chosen_provider(ci, tmp_path_factory):
    repo, _ = render(tmp_path_factory, ci, "defaults")
    text = (repo / "docs" / "ci.md").read_text()
    assert ("`.github/workflows/validate.yaml`" in text) == (ci == "github")
    assert ("`.gitlab-ci.yml`" in text) == (ci == "gitlab")
    assert ("ci: none" in text) == (ci == "none")
    protection = (repo / "docs" / "branch-protection.md").read_text()
    assert ("## GitHub" in protection) == (ci == "github")
    assert ("## GitLab" in protection) == (ci == "gitlab")
