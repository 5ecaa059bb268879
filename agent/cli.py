"""Forest's command line (console script ``forest``).

Commands::

    forest ingest DIR --store PATH                    load a folder of table files into a store
    forest export DIR --store PATH [--format FMT]     write every table to DIR (parquet|csv|jsonl)
    forest tools list [--json]                        the evidence tools (JSON: OpenAI schemas)
    forest tools call NAME --args JSON [--store PATH] run one tool, print its ToolResult JSON
    forest schema                                     the Verdict JSON Schema
    forest investigate EVALUATION_ID [--reasoner R]   investigate one evaluation, append verdict
    forest demo [--store PATH] [--seed N] [--size S]  build the demo world and investigate it
    forest bench [--json]                             the scale benchmark
    forest eval [--reasoner R] [--tag T] [--json] [--baseline F] [--coverage] [--drift]
                                                      run the recorded-incident suite
    forest record-incident EVALUATION_ID --store PATH --out DIR [--from-override]
                                                      cut a regression incident from a store
    forest serve [--store PATH] [--host H] [--port P] the ingestion-gate HTTP service + Slack bot
    forest overrides [--store PATH] [--json]          humans' overrides of verdicts

Every ``--store`` (and ``serve``'s ``--workers``/``--queue-size``) left out falls back to
:class:`~agent.settings.Settings` (``FOREST_STORE``...), which holds the only defaults.
Global option ``--debug`` shows tracebacks. Results go to stdout, progress and errors to
stderr. Any ``ForestError`` is printed as one ``error: ...`` line with exit status 1 (usage
errors exit 2), by ``ForestGroup`` so that every command added here gets the same handling.
Heavy imports (DuckDB loaders, the tool registry, the graph) happen inside the commands so
``forest --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer
from typer.core import TyperGroup

from tools.errors import ForestError

if TYPE_CHECKING:
    from agent.settings import Settings

__all__ = ["app", "main"]


class ForestGroup(TyperGroup):
    """Turns a ``ForestError`` raised by any (sub)command into one line on stderr."""

    def invoke(self, ctx: Any) -> Any:  # typer.Context; its click base is private
        try:
            return super().invoke(ctx)
        except ForestError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=ForestGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold API keys
    help="Forest: evidence-backed root-cause investigation for operational ML.",
)
tools_app = typer.Typer(no_args_is_help=True, help="List and call the evidence tools.")
app.add_typer(tools_app, name="tools")

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="incident store (DuckDB file); default: setting FOREST_STORE"),
]


def _settings(store: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with the command line's given (non-None) values on
    top: a command never holds a default of its own."""
    from agent.settings import Settings

    given = {k: v for k, v in {"store": store, **overrides}.items() if v is not None}
    return Settings(**given)


@app.callback()
def _global(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on errors")] = False,
) -> None:
    ctx.ensure_object(dict)["debug"] = debug


def usage_error(message: str) -> NoReturn:
    """Print one ``error:`` line and exit 2 (bad command-line input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _print_counts(counts: dict[str, int]) -> None:
    width = max((len(t) for t in counts), default=0)
    for table, rows in counts.items():
        typer.echo(f"{table:<{width}}  {rows:>10}")


@app.command()
def ingest(
    src: Annotated[Path, typer.Argument(help="folder of <table>.parquet|csv|jsonl files")],
    store: StoreOption = None,
    openlineage_output: Annotated[
        Literal["root", "parent", "job"],
        typer.Option(
            "--openlineage-output",
            help="how an OpenLineage run maps to an output without a forest facet: the root "
            "parent run's id, the parent run's id, or the root job's namespace/name",
        ),
    ] = "root",
) -> None:
    """Load a folder of files named after the store's tables (all or nothing)."""
    store = _settings(store).store
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    from tools.store.ingest import ingest_dir

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("reading", total=None)

        def step(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        def warn(message: str) -> None:
            console.print(f"warning: {message}", markup=False, highlight=False)

        counts = ingest_dir(
            src, store, progress=step, warn=warn, openlineage_output=openlineage_output
        )
    _print_counts(counts)
    console.print(f"loaded {sum(counts.values())} rows into {store}")


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="folder to write <table>.<ext> files into")],
    store: StoreOption = None,
    fmt: Annotated[
        Literal["parquet", "csv", "jsonl"], typer.Option("--format", help="file format")
    ] = "parquet",
) -> None:
    """Write every table of the store to files that `forest ingest` loads back."""
    from tools.store.ingest import export_dir

    counts = export_dir(_settings(store).store, out, fmt)
    _print_counts(counts)
    typer.echo(f"wrote {len(counts)} tables to {out}", err=True)


@tools_app.command("list")
def tools_list(
    as_json: Annotated[bool, typer.Option("--json", help="OpenAI function schemas")] = False,
) -> None:
    """List the evidence tools an investigation can call."""
    from tools.registry import TOOLS, openai_tools

    if as_json:
        typer.echo(json.dumps(openai_tools(), indent=2))
        return
    for name, tool in TOOLS.items():
        typer.echo(name)
        for line in tool.description.splitlines():
            typer.echo(f"    {line}".rstrip())


@tools_app.command("call")
def tools_call(
    name: Annotated[str, typer.Argument(help="tool name, see `forest tools list`")],
    args: Annotated[str, typer.Option("--args", help="tool arguments as a JSON object")] = "{}",
    store: StoreOption = None,
) -> None:
    """Run one tool against the store and print its ToolResult as JSON."""
    try:
        parsed = json.loads(args)
    except json.JSONDecodeError as exc:
        usage_error(f"--args is not valid JSON ({exc.msg} at position {exc.pos})")
    if not isinstance(parsed, dict):
        usage_error('--args must be a JSON object, e.g. \'{"output_id": "o-1"}\'')
    from tools.registry import get_tool
    from tools.store.connection import open_readonly

    tool = get_tool(name)
    con = open_readonly(_settings(store).store)
    try:
        result = tool.call(con, parsed)
    finally:
        con.close()
    typer.echo(result.model_dump_json(indent=2))


@app.command()
def schema() -> None:
    """Print the Verdict JSON Schema."""
    from agent.schemas import Verdict

    typer.echo(json.dumps(Verdict.model_json_schema(), indent=2))


@app.command()
def investigate(
    evaluation_id: Annotated[str, typer.Argument(help="evaluation id in the store")],
    store: StoreOption = None,
    reasoner: Annotated[
        Literal["rules", "llm"] | None,
        typer.Option("--reasoner", help="rules (no LLM) or llm; default FOREST_REASONER"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the Verdict JSON")] = False,
    no_persist: Annotated[
        bool, typer.Option("--no-persist", help="do not append the verdict to the store")
    ] = False,
) -> None:
    """Investigate one evaluation and append the verdict to the store."""
    from rich.console import Console

    from agent.api import investigate as run
    from agent.report import print_verdict

    settings = _settings(store, reasoner=reasoner)
    if settings.reasoner == "llm" and not settings.llm_configured:
        usage_error("--reasoner llm needs FOREST_LLM_BASE_URL or OPENAI_API_KEY to be set")
    verdict = run(evaluation_id, store=settings.store, settings=settings, persist=not no_persist)
    if as_json:
        typer.echo(verdict.model_dump_json(indent=2))
    else:
        print_verdict(Console(), verdict)


@app.command()
def demo(
    store: StoreOption = None,
    seed: Annotated[int, typer.Option("--seed", help="simulator seed")] = 7,
    size: Annotated[Literal["small", "medium"], typer.Option("--size")] = "small",
    investigate_all: Annotated[
        bool, typer.Option("--investigate/--no-investigate", help="investigate every evaluation")
    ] = True,
) -> None:
    """Build the demo world (a seeded camera fleet with every failure class) and investigate it."""
    from evals.demo import run_demo

    run_demo(_settings(store).store, seed=seed, size=size, investigate=investigate_all)


@app.command()
def bench(
    as_json: Annotated[bool, typer.Option("--json", help="print figures as JSON")] = False,
    path: Annotated[Path, typer.Option("--path", help="where to build the bench store")] = Path(
        "bench-store/forest-bench.duckdb"
    ),
    samples: Annotated[int, typer.Option("--samples", help="random outputs per tool")] = 300,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="rebuild even if present")] = False,
    gate_seconds: Annotated[
        float, typer.Option("--gate-seconds", help="seconds of gate load per store; 0 skips")
    ] = 30,
) -> None:
    """Build a large store (10M logs, 1M runs, 20M health rows), time every tool, a rules
    investigation and the HTTP gate's sustained throughput."""
    from evals.benchmarks.suite import run_bench

    run_bench(path, samples=samples, rebuild=rebuild, as_json=as_json, gate_seconds=gate_seconds)


@app.command("eval")
def eval_suite(
    reasoner: Annotated[
        Literal["rules", "llm"], typer.Option("--reasoner", help="rules (no LLM) or llm")
    ] = "rules",
    tag: Annotated[str | None, typer.Option("--tag", help="only incidents with this tag")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="a saved --json report; exit 1 when a metric drops"),
    ] = None,
    show_coverage: Annotated[
        bool, typer.Option("--coverage", help="coverage matrix and case ages; runs nothing")
    ] = False,
    show_drift: Annotated[
        bool, typer.Option("--drift", help="compare the suite's mix with --store's verdicts")
    ] = False,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store", help="store whose recent verdicts --drift reads; default FOREST_STORE"
        ),
    ] = None,
    incidents: Annotated[
        Path | None, typer.Option("--incidents", help="incidents folder (default: the suite)")
    ] = None,
) -> None:
    """Run the recorded incidents, grade every verdict and report by tag and failure class."""
    from rich.console import Console

    from evals import runner
    from evals.incident import load_suite

    root = incidents or runner.DEFAULT_INCIDENTS
    console = Console()
    if show_drift or show_coverage:
        cases = load_suite(root, tag)
        if show_drift:
            result = runner.drift(cases, _settings(store).store)
        else:
            result = runner.coverage(cases)
        if as_json:
            typer.echo(json.dumps(result, indent=2))
        elif show_drift:
            runner.print_drift(console, result)
        else:
            runner.print_coverage(console, result)
        return
    base_metrics = None
    if baseline is not None:
        try:
            base_metrics = json.loads(baseline.read_text(encoding="utf-8"))["metrics"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            usage_error(f"--baseline {baseline}: not a saved `forest eval --json` report ({exc})")
    if reasoner == "llm":
        from agent.settings import Settings

        if not Settings(reasoner="llm").llm_configured:
            usage_error("--reasoner llm needs FOREST_LLM_BASE_URL or OPENAI_API_KEY to be set")
    workers = 1 if reasoner == "llm" else 2
    results = runner.run_suite(root, reasoner=reasoner, tag=tag, workers=workers)
    if not results:
        usage_error(f"no incidents under {root}" + (f" tagged {tag!r}" if tag else ""))
    report = runner.build_report(results)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        runner.print_report(console, report)
    if base_metrics is not None:
        worse = runner.compare_baseline(report["metrics"], base_metrics)
        for line in worse:
            typer.echo(f"regression: {line}", err=True)
        if worse:
            raise typer.Exit(1)


@app.command()
def overrides(
    store: StoreOption = None,
    evaluation_id: Annotated[
        str | None, typer.Option("--evaluation", help="only this evaluation's overrides")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one override each")] = False,
) -> None:
    """List humans' overrides of verdicts (from Slack), oldest first; feed one to
    `forest record-incident --from-override`."""
    store = _settings(store).store
    from agent.overrides import list_overrides
    from agent.service.journal import journaled_overrides

    rows = list_overrides(store, evaluation_id, pending=journaled_overrides)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    if not rows:
        typer.echo("no overrides", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "created_at",
        "evaluation",
        "verdict",
        "author",
        "category",
        "node",
        "action",
        "reason",
        "source",
    )
    for r in rows:
        table.add_row(
            r["created_at"],
            r["evaluation_id"],
            r["verdict_id"],
            r["author"],
            r["category"],
            r["failing_node"] or "-",
            r["action"],
            (r["reason"] or "")[:80],
            r["source"],
        )
    Console().print(table)


@app.command("record-incident")
def record_incident(
    evaluation_id: Annotated[str, typer.Argument(help="evaluation id in the store")],
    out: Annotated[Path, typer.Option("--out", help="new case folder to write")],
    from_override: Annotated[
        bool,
        typer.Option("--from-override", help="expect the latest human override's answer"),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Cut the slice of the store an evaluation needs into a case folder `forest eval` runs."""
    from evals.capture import record_incident as record

    folder = record(evaluation_id, _settings(store).store, out, from_override)
    typer.echo(f"recorded {evaluation_id} into {folder}", err=True)


@app.command()
def serve(
    store: StoreOption = None,
    host: Annotated[str, typer.Option("--host", help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="rules-tier worker threads; default FOREST_SERVE_WORKERS"),
    ] = None,
    queue_size: Annotated[
        int | None,
        typer.Option(
            "--queue-size",
            help="work in flight past which POSTs get 429; default FOREST_SERVE_QUEUE_SIZE",
        ),
    ] = None,
) -> None:
    """Serve the ingestion gate over HTTP (POST /v1/evaluations); the store's single writer."""
    import uvicorn

    from agent.service import create_app

    settings = _settings(store, serve_workers=workers, serve_queue_size=queue_size)
    application = create_app(settings)
    extras = [
        "LLM tier on" if settings.llm_configured else "rules tier only",
        "Slack bot at /slack/events" if settings.slack_configured else "no Slack bot",
        "bearer auth on" if settings.api_token else "no auth",
    ]
    typer.echo(
        f"forest gate on http://{host}:{port} for {settings.store} ({', '.join(extras)})", err=True
    )
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
