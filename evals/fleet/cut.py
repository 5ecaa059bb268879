"""Cut the fleet store's evaluations into ``3NN_fleet_<class>_<slug>`` incident cases.

The pick is a fixed rule, blind to any reasoner: per failure class a quota, taken round-robin
over the class's fault instances in evaluation-id order. Each case is written by
``evals.capture.record_incident``; its tags (difficulty, class, ``fleet``), ``abstain_ok``
and every acceptable causal path then come from the truth row.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from evals.capture import record_incident
from evals.incident import CASE_FILE, Incident, load_case
from evals.truth import truth_path

__all__ = ["QUOTA", "cut", "pick"]

QUOTA = {"model_error": 14, "model_regression": 3, "distribution_shift": 3}
DEFAULT_QUOTA = 2
CLASS_ORDER = (
    "model_error",
    "defocus",
    "exposure_stuck",
    "dropped_frames",
    "camera_moved",
    "config_drift",
    "fps_interaction",
    "late_events",
    "clock_skew",
    "shared_upstream",
    "stale_threshold",
    "policy_scope",
    "model_regression",
    "distribution_shift",
    "judge_degraded",
    "reviewer_tiny",
)


def pick(rows: list[dict]) -> list[dict]:
    by_class: dict[str, dict[str, list[dict]]] = {}
    for r in sorted(rows, key=lambda r: r["evaluation_id"]):
        by_class.setdefault(r["failure_class"], {}).setdefault(r["instance"], []).append(r)
    picked: list[dict] = []
    for cls in sorted(by_class, key=lambda c: (*CLASS_ORDER, c).index(c)):
        quota = QUOTA.get(cls, DEFAULT_QUOTA)
        queues = [list(v) for _, v in sorted(by_class[cls].items())]
        taken: list[dict] = []
        while len(taken) < quota and any(queues):
            for q in queues:
                if q and len(taken) < quota:
                    taken.append(q.pop(0))
        picked += taken
    return picked


def cut(store: Path, out_root: Path) -> list[Path]:
    store, out_root = Path(store), Path(out_root)
    with truth_path(store).open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    for old in out_root.glob("3[0-9][0-9]_fleet_*"):
        shutil.rmtree(old)
    written: list[Path] = []
    for number, row in enumerate(pick(rows), start=1):
        slug = row["instance"].split("-", 1)[-1].replace("-", "_").replace(".", "_")
        name = f"3{number:02d}_fleet_{row['failure_class']}_{slug}_{row['evaluation_id'][-3:]}"
        folder = out_root / name
        record_incident(
            row["evaluation_id"],
            store,
            folder,
            source=f"fleet world {store.name} {row['evaluation_id']}",
        )
        case = json.loads((folder / CASE_FILE).read_text(encoding="utf-8"))
        case["tags"] = row["tags"]
        case["expected"]["abstain_ok"] = row["abstain_ok"]
        case["expected"]["acceptable_causal_paths"] = row["acceptable_causal_paths"]
        Incident.model_validate(case)
        (folder / CASE_FILE).write_text(json.dumps(case, indent=2) + "\n", encoding="utf-8")
        load_case(folder)
        written.append(folder)
    return written
