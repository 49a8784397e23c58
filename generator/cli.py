"""The gitops-forge command line: parse, call one workflow, print the result.

Heavy modules (copier, yaml, jinja) are imported inside the commands so that
`--help` and shell completion stay fast.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

app = typer.Typer(
    name="gitops-forge",
    help="Generate a best-practice GitOps monorepo and keep it current with its template.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
add_app = typer.Typer(help="Add an app, environment, cluster or team and re-render.", no_args_is_help=True)
remove_app = typer.Typer(help="Remove an app, environment, cluster or team and re-render.", no_args_is_help=True)
app.add_typer(add_app, name="add", rich_help_panel="Change a repo")
app.add_typer(remove_app, name="remove", rich_help_panel="Change a repo")

CREATE = "Create"
KEEP_CURRENT = "Keep current"
CHECK = "Check"

RepoPath = Annotated[Path, typer.Argument(help="Generated repository (default: current directory).", show_default=False)]
RepoOption = Annotated[Path, typer.Option("--path", "-C", help="Generated repository to change.", show_default=False)]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn every expected failure into one sentence and exit code 2."""
    from .answers import AnswersError
    from .scaffold import ScaffoldError
    from .template_source import TemplateUnavailable

    try:
        yield
    except AnswersError as error:
        raise _fail(f"{error}.") from None
    except (ScaffoldError, TemplateUnavailable) as error:
        raise _fail(f"{str(error).rstrip('.')}.") from None


def _version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"gitops-forge {version('gitops-forge')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit.")
    ] = None,
) -> None:
    """Generate a best-practice GitOps monorepo and keep it current with its template."""


@app.command(rich_help_panel=CREATE)
def new(
    destination: Annotated[Path, typer.Argument(help="Directory to create (its name is the default project_name).")],
    defaults: Annotated[bool, typer.Option("--defaults", help="Use the default for every answer not given.")] = False,
    data: Annotated[
        Optional[list[str]], typer.Option("--data", "-d", metavar="KEY=VALUE", help="An answer; VALUE is YAML for list answers, verbatim text otherwise. Repeatable.")
    ] = None,
    data_file: Annotated[
        Optional[Path], typer.Option("--data-file", metavar="FILE", help="YAML mapping of answers.", dir_okay=False)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty directory.")] = False,
    git: Annotated[bool, typer.Option("--git/--no-git", help="Initialise git and commit the generated files.")] = True,
) -> None:
    """Generate a new GitOps repository."""
    from . import answers, progress, scaffold, workflows
    from .prompts import ask_missing

    with _errors():
        scaffold.check_destination(destination.absolute(), force=force)  # before asking anyone anything
        given = answers.load_data_file(data_file) if data_file else {}
        given.update(answers.parse_data_pairs(data or []))
        # Without --defaults every missing answer is asked; piped input works too.
        complete = workflows.gather_answers(destination, data=given, use_defaults=defaults, prompter=None if defaults else ask_missing)
        with progress.rendering(f"Generating {destination}"):
            result = workflows.new_repo(destination, complete, force=force, git=git)
    typer.secho(f"Created {result.destination} from template {result.version}:", fg=typer.colors.GREEN)
    typer.echo(
        f"  {len(complete['environments'])} environment(s), {len(complete['clusters'])} cluster(s), "
        f"{len(complete['teams'])} team(s), {len(complete['apps'])} app(s); {len(result.written)} files."
    )
    typer.echo("Next:")
    typer.echo(f"  cd {result.destination}")
    if not result.committed:
        typer.echo(f"  git init -b {complete['default_branch']} && git add -A && git commit -m 'Generate repository with gitops-forge'")
    typer.echo(f"  git remote add origin {complete['git_url']} && git push -u origin {complete['default_branch']}")
    first_cluster = complete["clusters"][0]["name"]
    if complete["engine"] == "flux":
        how = "the Flux Operator" if complete["flux_install"] == "operator" else "flux bootstrap, after the install pull request"
        typer.echo(f"  then install Flux on each cluster with {how}: clusters/{first_cluster}/flux-system/README.md")
    else:
        typer.echo(f"  then bootstrap Argo CD on each cluster: clusters/{first_cluster}/README.md")


@app.command(rich_help_panel=KEEP_CURRENT)
def update(
    path: RepoPath = Path("."),
    to: Annotated[Optional[str], typer.Option("--to", metavar="VERSION", help="Template version (default: newest).")] = None,
    conflict: Annotated[
        str, typer.Option("--conflict", help="How to show conflicts: inline markers or .rej files.", case_sensitive=False)
    ] = "inline",
    pretend: Annotated[bool, typer.Option("--pretend", help="Show what would change; touch nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Update a generated repository to a newer template version (3-way merge keeps your edits)."""
    from . import progress, workflows

    if conflict not in ("inline", "rej"):
        raise _fail(f"--conflict must be 'inline' or 'rej', not {conflict!r}.")
    with _errors(), progress.rendering("Updating (old, merged and new copies)", quiet=as_json):
        result = workflows.update_repo(path, to_version=to, conflict=conflict, pretend=pretend)
    _report_change(result, verb="would change" if pretend else "changed", as_json=as_json, path=path)


@app.command("check-update", rich_help_panel=KEEP_CURRENT)
def check_update(
    path: RepoPath = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    drift_too: Annotated[bool, typer.Option("--drift", help="Instead list files changed since generation (same as gitops-forge drift).")] = False,
) -> None:
    """Tell whether a newer template version is available (exit 0 either way)."""
    from . import workflows

    if drift_too:
        drift(path, show_diff=False, as_json=as_json)
        return
    with _errors():
        check = workflows.check_update(path)
    if as_json:
        typer.echo(json.dumps({"current": check.current, "latest": check.latest, "update_available": check.available}))
    elif check.available:
        typer.echo(f"Template {check.latest} is available (this repo is on {check.current}); run: gitops-forge update")
    else:
        typer.echo(f"Up to date: template {check.current}.")


@app.command(rich_help_panel=KEEP_CURRENT)
def drift(
    path: RepoPath = Path("."),
    show_diff: Annotated[bool, typer.Option("--diff", help="Print a unified diff per file (template → repo).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """List files edited by hand, removed or added since the repo was generated at its recorded template version (exit 0 either way)."""
    from .drift import drift as find_drift

    with _errors():
        result = find_drift(path)
    if as_json:
        typer.echo(json.dumps(result.as_dict(with_diffs=show_diff)))
        return
    if not result.drifted:
        typer.echo(f"No drift: the repo matches template {result.version} rendered with its answers.")
    else:
        typer.echo(f"Drift from template {result.version}:")
        for label, names in (("edited", result.edited), ("removed", result.removed), ("added", result.added)):
            for name in names:
                typer.echo(f"  {label:8} {name}")
    for name in result.replaced:
        typer.echo(f"  (replaced by a tool, expected) {name}")
    if show_diff:
        for name in result.edited + result.removed + result.added:
            typer.echo(result.diffs[name], nl=False)


def _report_change(result, *, verb: str, as_json: bool, path: Path) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {"from": result.old_version, "to": result.new_version, "changed": result.changed, "conflicts": result.conflicts}
            )
        )
    else:
        arrow = f"{result.old_version} → {result.new_version}" if result.old_version != result.new_version else result.new_version
        typer.echo(f"Template {arrow}: {len(result.changed)} path(s) {verb}.")
        for changed in result.changed:
            typer.echo(f"  {changed}")
    if result.conflicts:
        _report_conflicts(result.conflicts, path)
    if not as_json and result.changed and "would" not in verb:
        typer.echo("Review with git diff, then commit.")


def _report_conflicts(conflicts: list[str], path: Path) -> None:
    """Conflicts of update, add, remove, set and adopt --write: list them, say how to resolve or abort, exit 1."""
    typer.secho(f"{len(conflicts)} file(s) have conflicts:", err=True, fg=typer.colors.RED)
    for name in conflicts:
        typer.echo(f"  {name}", err=True)
    typer.echo(
        "Resolve: edit each file (remove the <<<<<<< ======= >>>>>>> markers, or apply the .rej hunk and delete it), "
        f"then git add -A && git commit. Abort: git -C {path} reset --hard && git -C {path} clean -fd",
        err=True,
    )
    raise typer.Exit(1)


@app.command(rich_help_panel=KEEP_CURRENT)
def adopt(
    path: RepoPath = Path("."),
    data: Annotated[
        Optional[list[str]], typer.Option("--data", "-d", metavar="KEY=VALUE", help="An answer that overrides or fills the inferred ones; VALUE is YAML for list answers. Repeatable.")
    ] = None,
    data_file: Annotated[Optional[Path], typer.Option("--data-file", metavar="FILE", help="YAML mapping of answers.", dir_okay=False)] = None,
    defaults: Annotated[bool, typer.Option("--defaults", help="Answer every open question with its default.")] = False,
    write: Annotated[bool, typer.Option("--write", help="Write .copier-answers.yml and the files the repo lacks; a file the repo has its own version of gets inline conflict markers like update (exit 1). Commits nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Infer the answers of an existing repo and show (or, with --write, apply) what the golden path changes in it.

    With --write, every file the template renders and the repo has with other content is written as a conflict,
    as update writes one: the repo's text between <<<<<<< before updating and =======, the template's between
    ======= and >>>>>>> after updating, unmerged in git's index. The command then lists the files and exits 1;
    resolve them (keep your side, the template's, or both), then git add -A && git commit."""
    from . import adopt as adoption
    from . import answers

    with _errors():
        repo = path.absolute()
        if not repo.is_dir():
            raise _fail(f"{path} is not a directory.")
        given = answers.load_data_file(data_file) if data_file else {}
        given.update(answers.parse_data_pairs(data or []))
        inference = adoption.infer(repo)
        try:
            complete = adoption.complete(inference, given, use_defaults=defaults)
        except answers.AnswersError as error:
            _print_inference(inference, given)
            raise _fail(f"{error}.") from None
        has_answers = (repo / ".copier-answers.yml").exists()
        plan, version = adoption.adopt(repo, complete, write=write and not has_answers)
    if as_json:
        typer.echo(json.dumps({
            "answers": complete, "evidence": inference.evidence,
            "questions": [{"name": q.name, "why": q.why} for q in inference.questions if q.name not in given],
            "version": version, "add": plan.add, "same": plan.same, "differ": plan.differ, "replaced": plan.replaced,
            "unknown": plan.unknown, "written": bool(write and not has_answers), "conflicts": plan.conflicts,
        }))
    else:
        _print_inference(inference, given)
        typer.echo("Answers:")
        typer.echo("  " + json.dumps(complete, sort_keys=True))
        typer.echo(f"Golden path at template {version}: {len(plan.add)} file(s) to add, {len(plan.same)} identical, "
                   f"{len(plan.differ)} the repo has its own version of (a conflict to resolve with --write), "
                   f"{len(plan.replaced)} replaced by a tool (kept), {len(plan.unknown)} not from the template (left alone).")
        for name in plan.add:
            typer.echo(f"  add      {name}")
        for name in plan.differ:
            typer.echo(f"  conflict {name}")
        for name in plan.replaced:
            typer.echo(f"  keep     {name}")
    if write and has_answers:
        raise _fail(f"{path} already has .copier-answers.yml; use gitops-forge update, or delete it to adopt again")
    if write and not as_json:
        typer.echo(f"Wrote .copier-answers.yml and {len(plan.add)} file(s), and {len(plan.conflicts)} conflict(s). "
                   "Review with git status, then commit.")
    if write and plan.conflicts:
        _report_conflicts(plan.conflicts, path)


def _print_inference(inference, given: dict) -> None:
    for name, why in inference.evidence.items():
        if name not in given:
            typer.echo(f"inferred {name}: from {why}")
    for name in given:
        typer.echo(f"given    {name}")
    for question in inference.questions:
        if question.name not in given:
            typer.echo(f"question {question.name}: {question.why} (answer with --data {question.name}=…, or --defaults)")


@app.command(rich_help_panel=CHECK)
def validate(
    path: Annotated[Path, typer.Argument(help="GitOps repository to check (default: current directory).", show_default=False)] = Path("."),
    schema_location: Annotated[
        Optional[list[str]],
        typer.Option("--schema-location", "-s", metavar="LOC", help="More CRD schemas, tried before the bundled ones: a directory or URL template in kubeconform's {group}/{kind}_{version}.json layout. Repeatable. Default: $GITOPS_FORGE_SCHEMAS."),
    ] = None,
    no_catalog: Annotated[bool, typer.Option("--no-catalog", help="Do not look up kinds the bundled schemas and the repo lack in the online CRDs-catalog (air-gapped CI).")] = False,
    kubernetes_version: Annotated[
        Optional[str], typer.Option("--kubernetes-version", metavar="VERSION", help="Kubernetes version of the built-in schemas, e.g. 1.33 (default: newest bundled).")
    ] = None,
    ignore_missing_schemas: Annotated[bool, typer.Option("--ignore-missing-schemas", help="Do not fail on objects without a schema (they are still listed).")] = False,
    output_format: Annotated[str, typer.Option("--format", "-o", metavar="FORMAT", help="text, json or sarif (GitHub code scanning).")] = "text",
    skip: Annotated[Optional[list[str]], typer.Option("--skip", metavar="CHECK_ID", help="Leave out a check, e.g. GF011. Repeatable.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Render and check every entrypoint again instead of reusing unchanged results.")] = False,
) -> None:
    """Render every entrypoint and check it: strict schemas, cross-references, best-practice policy (exit 1 on findings)."""
    from .validate.command import ValidateSetupError, check_format, parse_skip, run
    from .validate.report import render

    try:
        fmt = check_format(output_format)
        report = run(path, schema_locations=schema_location, kubernetes_version=kubernetes_version,
                     ignore_missing_schemas=ignore_missing_schemas, skip=parse_skip(skip),
                     schema_catalog="" if no_catalog else None,
                     progress=None if fmt == "text" else False, cache=not no_cache)
    except ValidateSetupError as error:
        raise _fail(str(error)) from None
    typer.echo(render(report, fmt, repo=path, version=_installed_version()), nl=False)
    raise typer.Exit(0 if report.ok else 1)


@app.command(rich_help_panel=KEEP_CURRENT)
def promote(
    apps: Annotated[Optional[list[str]], typer.Argument(metavar="APP", help="Apps to promote.", show_default=False)] = None,
    source: Annotated[str, typer.Option("--from", metavar="ENV", help="Environment whose released version is promoted.")] = ...,
    target: Annotated[Optional[str], typer.Option("--to", metavar="ENV", help="Environment to promote to (default: the next one).")] = None,
    all_apps: Annotated[bool, typer.Option("--all", help="Every app of the --from environment.")] = False,
    charts: Annotated[Optional[list[str]], typer.Option("--chart", metavar="NAME", help="Promote this platform chart's version instead (repeatable).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; touch nothing.")] = False,
    commit: Annotated[bool, typer.Option("--commit", help="Commit the changed overlays with a conventional message.")] = False,
    allow_backwards: Annotated[bool, typer.Option("--allow-backwards", help="Allow promoting to an earlier environment (a rollback).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    path: RepoOption = Path("."),
) -> None:
    """Promote apps' released version (image tag and digest), or a platform chart's version, from one environment's overlay to the next."""
    from .promote import PromoteError
    from .promote import promote as run

    try:
        result = run(path, list(apps or []), source=source, target=target, all_apps=all_apps, charts=charts,
                     allow_backwards=allow_backwards, dry_run=dry_run, commit=commit)
    except PromoteError as error:
        raise _fail(str(error)) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    verb = "Would promote" if dry_run else "Promoted"
    for app in result.changed:
        typer.echo(f"{verb} {app.app} {app.version} from {result.source} to {result.target}: {app.file}")
        for image in app.images:
            typer.echo(f"  {image.image}: {_version_text(image.before)} → {_version_text(image.after)}")
    for app in result.unchanged:
        typer.echo(f"{app.app}: {result.target} is already at {app.version}; nothing changed.")
    for chart in result.charts:
        if chart.changed:
            typer.echo(f"{verb} chart {chart.chart} {chart.version} from {result.source} to {result.target}: "
                       f"{chart.file} ({chart.before} → {chart.version})")
        else:
            typer.echo(f"Chart {chart.chart}: {result.target} is already at {chart.version}; nothing changed.")
    if result.commit:
        typer.echo(f"Committed {result.commit[:12]}.")
    elif (result.changed or any(c.changed for c in result.charts)) and not dry_run:
        typer.echo("Review with git diff, then commit (or run with --commit).")


def _version_text(versions: dict[str, str]) -> str:
    tag, digest = versions.get("newTag"), versions.get("digest")
    return " ".join(filter(None, [tag, f"({digest})" if digest else None])) or "(none)"


@app.command(rich_help_panel=CHECK)
def diff(
    path: Annotated[Path, typer.Argument(help="GitOps repository, or a directory of one (default: current directory).", show_default=False)] = Path("."),
    base: Annotated[Optional[str], typer.Option("--base", metavar="REF", help="Revision to compare with (default: the merge base with the default branch).")] = None,
    head: Annotated[Optional[str], typer.Option("--head", metavar="REF", help="Revision to compare (default: the working tree).")] = None,
    output_format: Annotated[str, typer.Option("--format", "-o", metavar="FORMAT", help="text, markdown (a PR comment) or json.")] = "text",
    exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when a rendered object changed.")] = False,
) -> None:
    """Render every entrypoint at two revisions and show what changes, cluster by cluster (secrets masked)."""
    import sys

    from .diff import DiffError, check_format, diff_repo, render
    from .render import RenderToolMissing

    try:
        fmt = check_format(output_format)
        report = diff_repo(path, base=base, head=head)
    except (DiffError, RenderToolMissing) as error:
        raise _fail(str(error)) from None
    typer.echo(render(report, fmt, colour=fmt == "text" and sys.stdout.isatty()), nl=False)
    raise typer.Exit(1 if exit_code and report.changed else 0)


@app.command(rich_help_panel=CHECK)
def audit(
    path: Annotated[Path, typer.Argument(help="GitOps repository to score (default: current directory).", show_default=False)] = Path("."),
    output_format: Annotated[str, typer.Option("--format", "-o", metavar="FORMAT", help="text, markdown, json or sarif.")] = "text",
    min_score: Annotated[Optional[int], typer.Option("--min-score", metavar="N", help="Exit 1 when the overall score is below N (0-100).")] = None,
) -> None:
    """Score a Flux or Argo CD repo per area against the practices gitops-forge generates (exit 1 below --min-score)."""
    from .audit import audit as score
    from .audit import render

    if output_format not in ("text", "markdown", "json", "sarif"):
        raise _fail(f"--format must be text, markdown, json or sarif, not {output_format!r}.")
    if min_score is not None and not 0 <= min_score <= 100:
        raise _fail(f"--min-score must be between 0 and 100, not {min_score}.")
    if not path.is_dir():
        raise _fail(f"{path} is not a directory.")
    from .render import RenderToolMissing

    try:
        card = score(path)
    except RenderToolMissing as error:
        raise _fail(str(error)) from None
    typer.echo(render(card, output_format), nl=False)
    if min_score is not None and card.score < min_score:
        typer.secho(f"Score {card.score} is below --min-score {min_score}.", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gitops-forge")
    except PackageNotFoundError:
        return ""


@add_app.command("app")
def add_app_cmd(
    name: Annotated[str, typer.Argument(help="App name (DNS-1123 label).")],
    team: Annotated[str, typer.Option("--team", help="Owning team (must exist).")],
    image: Annotated[str, typer.Option("--image", help="Image with a pinned tag, e.g. ghcr.io/org/app:1.2.3.")],
    port: Annotated[int, typer.Option("--port", help="Container port serving HTTP.")],
    path: RepoOption = Path("."),
) -> None:
    """Add an app: base manifests plus one overlay per environment."""
    _change(path, "add", "app", {"name": name, "team": team, "image": image, "port": port})


@add_app.command("env")
def add_env_cmd(name: Annotated[str, typer.Argument(help="Environment name.")], path: RepoOption = Path(".")) -> None:
    """Add an environment (last in promotion order); add a cluster for it next."""
    _change(path, "add", "env", name)


@add_app.command("cluster")
def add_cluster_cmd(
    name: Annotated[str, typer.Argument(help="Cluster name.")],
    env: Annotated[str, typer.Option("--env", help="Environment the cluster runs (must exist).")],
    path: RepoOption = Path("."),
) -> None:
    """Add a cluster bound to an environment."""
    _change(path, "add", "cluster", {"name": name, "environment": env})


@add_app.command("team")
def add_team_cmd(
    name: Annotated[str, typer.Argument(help="Team name (becomes its namespace).")],
    group: Annotated[list[str], typer.Option("--group", help="Identity-provider group of the team. Repeatable.")],
    path: RepoOption = Path("."),
) -> None:
    """Add a tenant team with its identity-provider groups."""
    _change(path, "add", "team", {"name": name, "groups": list(group)})


def _remove(kind: str):
    def command(name: Annotated[str, typer.Argument(help="Name of the item to remove.")], path: RepoOption = Path(".")) -> None:
        _change(path, "remove", kind, name)

    command.__doc__ = f"Remove a {kind} and the files generated for it (refused while something refers to it)."
    return command


for _kind in ("app", "env", "cluster", "team"):
    remove_app.command(_kind)(_remove(_kind))


def _change(path: Path, action: str, kind: str, item) -> None:
    from . import progress, workflows

    with _errors(), progress.rendering(f"Re-rendering with the {kind} {'added' if action == 'add' else 'removed'}"):
        if action == "add":
            result = workflows.add_item(path, kind, item)
        else:
            result = workflows.remove_item(path, kind, item)
    _report_change(result, verb="changed", as_json=False, path=path)
    if action == "remove" and (runbook := workflows.after_removal(path, kind, item)):
        typer.echo(runbook)


@app.command("set", rich_help_panel="Change a repo")
def set_cmd(
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE...", help="Answers to change, e.g. monitoring=false ci=gitlab.")],
    path: RepoOption = Path("."),
) -> None:
    """Change answers such as secrets, verify, monitoring, alerts_to or ci, and re-render (hand edits stay)."""
    from . import answers, progress, workflows

    with _errors(), progress.rendering("Re-rendering with the changed answers"):
        result = workflows.set_answers(path, answers.parse_data_pairs(pairs))
    _report_change(result, verb="changed", as_json=False, path=path)
