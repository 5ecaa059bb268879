"""Scoring verdicts against the demo simulator's ground truth.

Only evaluation code reads the truth file; nothing under ``agent/`` or ``tools/`` does
(``tests/evals/test_worlds.py`` enforces it), so no reasoner can peek at the answers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.incident import failure_classes

__all__ = ["Score", "load_truth", "score", "truth_path"]


def truth_path(store: Path) -> Path:
    return store.with_name(store.stem + ".truth.jsonl")


def load_truth(store: Path) -> dict[str, dict[str, Any]]:
    path = truth_path(store)
    with path.open(encoding="utf-8") as fh:
        return {row["evaluation_id"]: row for row in map(json.loads, filter(str.strip, fh))}


@dataclass
class Score:
    cases: int = 0
    category_hits: int = 0
    node_hits: int = 0
    action_hits: int = 0
    abstained: int = 0
    train_tp: int = 0
    train_fp: int = 0
    train_fn: int = 0
    by_class: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))

    def ratio(self, hits: int) -> float:
        return hits / self.cases if self.cases else 0.0

    @property
    def training_precision(self) -> float:
        sent = self.train_tp + self.train_fp
        return self.train_tp / sent if sent else 1.0

    @property
    def training_recall(self) -> float:
        due = self.train_tp + self.train_fn
        return self.train_tp / due if due else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "category_accuracy": round(self.ratio(self.category_hits), 4),
            "node_accuracy": round(self.ratio(self.node_hits), 4),
            "action_accuracy": round(self.ratio(self.action_hits), 4),
            "abstained": self.abstained,
            "training_precision": round(self.training_precision, 4),
            "training_recall": round(self.training_recall, 4),
            "by_class": {
                k: {
                    "cases": v[0],
                    "category_accuracy": round(v[1] / v[0], 4),
                    "node_accuracy": round(v[2] / v[0], 4),
                }
                for k, v in sorted(self.by_class.items())
            },
        }


def score(verdicts: Iterable[Any], truth: dict[str, dict[str, Any]]) -> Score:
    """Compare verdicts (objects with category, failing_node, ...) to the truth rows."""
    result = Score()
    for v in verdicts:
        t = truth.get(v.evaluation_id)
        if t is None:
            continue
        cat_ok = v.category == t["category"]
        node_ok = v.failing_node == t["failing_node"]
        result.cases += 1
        result.category_hits += cat_ok
        result.node_hits += node_ok
        result.action_hits += v.action.kind == t["action"]
        result.abstained += v.category == "inconclusive"
        result.train_tp += v.route_to_training and t["route_to_training"]
        result.train_fp += v.route_to_training and not t["route_to_training"]
        result.train_fn += (not v.route_to_training) and t["route_to_training"]
        row = result.by_class[next(iter(failure_classes(t.get("tags", []))), "unknown")]
        row[0] += 1
        row[1] += cat_ok
        row[2] += node_ok
    return result
