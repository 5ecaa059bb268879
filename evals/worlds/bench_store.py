"""The scale-bench store: the demo generator at bench size.

The demo path already writes every big table in SQL (``range()`` + hash noise, sorted by
``SORT_KEYS``), so the bench reuses it with a bigger profile: 240 cameras, ~91k outputs
(~1M runs), one health sample per minute (~21M rows), ~10M log lines (each run also logs
its DEBUG stage lines) and a handful of failure cases so flags exist. About 45 s on
2 cores.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import duckdb

from evals.worlds.build import Progress, build_world
from evals.worlds.staging import count_rows
from evals.worlds.world import PROFILES
from tools.store.contract import DATA_TABLES


def build_bench_store(
    path: str | Path,
    *,
    seed: int = 1,
    progress: Progress | None = None,
    scale: float = 1.0,
) -> dict[str, Any]:
    """Build the bench store at ``path``; ``scale`` < 1 shrinks fleet and outputs (for tests).

    Returns the row count of every data table, the build seconds and the file size."""
    base = PROFILES["bench"]
    profile = dataclasses.replace(
        base,
        tenants=max(2, round(base.tenants * scale)),
        outputs=max(500, int(base.outputs * scale)),
    )
    summary = build_world(path, seed=seed, profile=profile, progress=progress, threads=2)
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = {t: count_rows(con, t) for t in DATA_TABLES}
    finally:
        con.close()
    return {
        "path": str(path),
        "truth_path": summary.truth_path,
        "seconds": round(summary.seconds, 1),
        "bytes": Path(path).stat().st_size,
        "cameras": summary.cameras,
        "evaluations": summary.evaluations,
        "rows": rows,
    }
