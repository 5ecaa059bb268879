"""A readable terminal report of a verdict (rich). Model text is printed as plain text."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.schemas import Verdict

__all__ = ["print_verdict"]

_GATE_STYLE = {"train": "green", "hold": "yellow", "discard": "red"}


def print_verdict(console: Console, verdict: Verdict, *, evidence_limit: int = 8) -> None:
    gate = verdict.gate
    console.print(
        f"[bold]{escape(verdict.evaluation_id)}[/bold]  →  [bold]{verdict.category}[/bold]"
        f"  confidence {verdict.confidence:.2f}  gate [{_GATE_STYLE[gate]}]{gate}[/]"
    )
    console.print(f"failing node: {escape(verdict.failing_node or '-')}")
    if verdict.causal_path:
        console.print("causal path:  " + escape(" → ".join(verdict.causal_path)))
    console.print(f"action:       {verdict.action.kind} → {escape(verdict.action.target or '-')}")
    rel = verdict.evaluation_reliability
    if rel is not None:
        score = "unknown" if rel.score is None else f"{rel.score:.2f}"
        console.print(
            f"evaluator:    {escape(rel.source_id)} ({rel.source_kind}) reliability {score}"
        )
    console.print(f"summary:      {escape(verdict.summary)}")

    cited = {i for h in verdict.hypotheses if h.status == "supported" for i in h.evidence_ids}
    table = Table(title="evidence", show_lines=False, expand=False)
    for col in ("id", "tool", "node", "finding"):
        table.add_column(col, overflow="fold")
    ranked = sorted(verdict.evidence, key=lambda e: (e.id not in cited, not e.flags))
    for ev in ranked[:evidence_limit]:
        table.add_row(ev.id, ev.tool, escape(ev.node or "-"), escape(ev.finding))
    console.print(table)
    if len(verdict.evidence) > evidence_limit:
        console.print(f"… {len(verdict.evidence) - evidence_limit} more evidence items (--json)")
    p = verdict.provenance
    console.print(
        f"[dim]{p.reasoner}{' ' + p.model if p.model else ''} · {p.tool_calls} tool calls · "
        f"{p.llm_calls} LLM calls · {p.prompt_tokens} prompt tokens · {p.duration_s:.2f}s[/dim]"
    )
    for note in p.grounding_notes + p.errors:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
