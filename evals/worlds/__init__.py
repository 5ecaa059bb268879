"""The demo-world simulator: a multi-tenant camera fleet with planted, labelled failures.

``build_demo`` writes a fresh incident store plus ``<stem>.truth.jsonl`` beside it (the
labels, kept out of the store); ``build_bench_store`` writes a large store for the scale
bench. Both are deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

from evals.worlds.bench_store import build_bench_store
from evals.worlds.build import DemoSummary, Progress, build_world, truth_path_for
from evals.worlds.world import PROFILES

__all__ = ["DemoSummary", "build_bench_store", "build_demo", "truth_path_for"]


def build_demo(
    path: str | Path,
    *,
    seed: int = 7,
    size: str = "small",
    progress: Progress | None = None,
) -> DemoSummary:
    """Build the demo store at ``path`` (replacing any existing file) for ``seed`` and ``size``
    ("small" or "medium"); report ``progress(step, fraction)`` if given."""
    if size not in ("small", "medium"):
        raise ValueError(f"unknown demo size {size!r}; use 'small' or 'medium'")
    return build_world(path, seed=seed, profile=PROFILES[size], progress=progress)
