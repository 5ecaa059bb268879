"""The deterministic sweep: which evidence to gather for every lineage node."""

from __future__ import annotations

from agent.dag import Lineage
from agent.evidence import PlannedCall
from agent.schemas import Evaluation

__all__ = ["plan_sweep"]


def plan_sweep(evaluation: Evaluation, captured_at: str, lineage: Lineage) -> list[PlannedCall]:
    """Every tool the sweep runs, in a fixed order so evidence ids are stable."""
    output_id = evaluation.output_id
    calls: list[PlannedCall] = []
    for node in lineage.order:
        info = lineage.nodes[node]
        if info.get("run_id"):
            calls.append(PlannedCall("get_run", {"run_id": info["run_id"]}, node))
        if info.get("kind") == "sensor":
            calls.append(
                PlannedCall("get_device_health", {"device_id": node, "at": captured_at}, node)
            )
    calls += [
        PlannedCall("search_logs", {"output_id": output_id, "min_level": "WARN"}),
        PlannedCall("get_component_changes", {"output_id": output_id}),
        PlannedCall("get_config_in_force", {"output_id": output_id}),
        PlannedCall("get_config_history", {"output_id": output_id}),
        PlannedCall("get_input_drift", {"output_id": output_id}),
        PlannedCall(
            "get_evaluator_reliability",
            {
                "source_id": evaluation.source_id,
                "at": evaluation.created_at.isoformat(),
                "evaluation_id": evaluation.evaluation_id,
            },
        ),
    ]
    return calls
