"""The investigation graph, wiring only (the nodes are in :mod:`agent.nodes`)::

    intake ─► sweep ─► rules ─┬─► ground ─► finalize
      │             └► llm ───┘                ▲
      └── unknown output / no lineage ─────────┘

``llm`` runs the LLM tier's own graph (:mod:`agent.llm.graph`): call_model ⇄ call_tools,
then answer.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from langgraph.graph import END, START, StateGraph

from agent.nodes import (
    finalize,
    ground,
    intake,
    llm,
    route_after_intake,
    route_after_sweep,
    rules,
    sweep,
)
from agent.state import (
    InvestigationContext,
    InvestigationInput,
    InvestigationOutput,
    InvestigationState,
)

__all__ = ["build_graph"]


@cache
def build_graph() -> Any:
    """Compile the investigation graph once per process."""
    graph = StateGraph(
        InvestigationState,
        context_schema=InvestigationContext,
        input_schema=InvestigationInput,
        output_schema=InvestigationOutput,
    )
    for node in (intake, sweep, rules, llm, ground, finalize):
        graph.add_node(node)
    graph.add_edge(START, "intake")
    graph.add_conditional_edges("intake", route_after_intake)
    graph.add_conditional_edges("sweep", route_after_sweep)
    graph.add_edge("rules", "ground")
    graph.add_edge("llm", "ground")
    graph.add_edge("ground", "finalize")
    graph.add_edge("finalize", END)
    return graph.compile()
