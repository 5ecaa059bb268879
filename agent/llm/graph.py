"""The LLM tier as a graph of its own: call_model ⇄ call_tools, then answer."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph

from agent.llm.nodes import answer, call_model, call_tools
from agent.llm.state import LLMInput, LLMOutput, LLMState
from agent.state import InvestigationContext

__all__ = ["build_llm_graph"]


def route_after_call_model(state: LLMState) -> Literal["call_tools", "answer"]:
    return "call_tools" if state.get("pending") else "answer"


@cache
def build_llm_graph() -> Any:
    """Compile the LLM tier once per process."""
    graph = StateGraph(
        LLMState,
        context_schema=InvestigationContext,
        input_schema=LLMInput,
        output_schema=LLMOutput,
    )
    graph.add_node(call_model)
    graph.add_node(call_tools)
    graph.add_node(answer)
    graph.add_edge(START, "call_model")
    graph.add_conditional_edges("call_model", route_after_call_model)
    graph.add_edge("call_tools", "call_model")
    graph.add_edge("answer", END)
    return graph.compile()
