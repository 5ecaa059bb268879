"""The LLM tier: an OpenAI-compatible chat model that reads the sweep, may call the evidence
tools within a budget, then answers with a verdict draft.

- :mod:`agent.llm.budget` — the budget check, a pure function of the usage in state;
- :mod:`agent.llm.answer` — the answer schema, parsing and the repair turn's error text;
- :mod:`agent.llm.nodes` — the subgraph's nodes; :mod:`agent.llm.graph` — its wiring.

The chat model itself (:mod:`agent.chat`) lies below the investigation's state, which
records its usage; it is re-exported here.
"""

from agent.chat import ChatModel, ChatResult, OpenAIChatModel, ToolCallRequest

__all__ = ["ChatModel", "ChatResult", "OpenAIChatModel", "ToolCallRequest"]
