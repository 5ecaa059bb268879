"""``forest demo``: build the demo world, investigate every evaluation, score against truth."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.api import Investigator
from agent.persist import append_verdicts
from agent.settings import Settings
from evals.truth import load_truth, score
from evals.worlds import build_demo

__all__ = ["run_demo"]


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def run_demo(
    store: Path, *, seed: int, size: str, investigate: bool, console: Console | None = None
) -> dict:
    """Results go to ``console`` (stdout by default); progress bars go to stderr."""
    console = console or Console()
    err = Console(stderr=True)
    with _progress(err) as bar:
        task = bar.add_task("building demo world", total=100)

        def step(name: str, fraction: float) -> None:
            bar.update(task, description=f"building: {name}", completed=round(fraction * 100))

        summary = build_demo(store, seed=seed, size=size, progress=step)
    console.print(f"[bold]demo store[/bold] {store} (seed {seed}, {size})")
    table = Table(show_header=False)
    for key, value in summary.rows():
        table.add_row(str(key), str(value))
    console.print(table)
    if not investigate:
        return {"summary": summary}

    settings = Settings(store=store, reasoner="rules")
    with Investigator(store, settings=settings) as inv, _progress(err) as bar:
        ids = inv.evaluation_ids()
        task = bar.add_task("investigating", total=len(ids))
        verdicts = []
        for evaluation_id in ids:
            verdicts.append(inv.investigate(evaluation_id))
            bar.advance(task)
    append_verdicts(store, verdicts)
    result = score(verdicts, load_truth(store)).as_dict()
    _print_score(console, result)
    return {"summary": summary, "score": result}


def _print_score(console: Console, result: dict) -> None:
    console.print(
        f"[bold]rules verdicts vs truth[/bold] on {result['cases']} evaluations: "
        f"category {result['category_accuracy']:.1%} · node {result['node_accuracy']:.1%} · "
        f"action {result['action_accuracy']:.1%} · training precision "
        f"{result['training_precision']:.1%} recall {result['training_recall']:.1%} · "
        f"abstained {result['abstained']}"
    )
    table = Table("failure class", "cases", "category", "node")
    for name, row in result["by_class"].items():
        table.add_row(
            name,
            str(row["cases"]),
            f"{row['category_accuracy']:.0%}",
            f"{row['node_accuracy']:.0%}",
        )
    console.print(table)
    console.print(json.dumps({k: v for k, v in result.items() if k != "by_class"}))
