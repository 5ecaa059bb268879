"""The service's Prometheus metrics, rendered in the text exposition format by hand."""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["Metrics"]

_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# what Metrics.count counts: kind -> (metric, help, label, the label's values)
_COUNTERS = {
    "decision": (
        "forest_gate_decisions_total",
        "Gate decisions by the rules tier.",
        "decision",
        ("train", "hold", "discard"),
    ),
    "llm": (
        "forest_llm_investigations_total",
        "LLM investigations by result.",
        "result",
        ("done", "failed"),
    ),
    "feedback": (
        "forest_feedback_total",
        "Human feedback on verdicts by kind.",
        "kind",
        ("agree", "override"),
    ),
}


class Metrics:
    """Counters, a gauge and a histogram, rendered in the Prometheus text format by hand."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.counts: Counter[tuple[str, str]] = Counter()  # (kind in _COUNTERS, value)
        self.latency: dict[str, list[float]] = {}  # tier -> bucket counts + [sum, count]

    def request(self, method: str, route: str, status: int) -> None:
        with self.lock:
            self.requests[(method, route, status)] += 1

    def count(self, kind: str, value: str) -> None:
        """One more ``value`` (e.g. "train") of a ``kind`` in _COUNTERS (e.g. "decision")."""
        with self.lock:
            self.counts[(kind, value)] += 1

    def observe(self, tier: str, seconds: float) -> None:
        with self.lock:
            h = self.latency.setdefault(tier, [0.0] * (len(_BUCKETS) + 2))
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self, depth: int, capacity: int, unflushed: int) -> str:
        out = [
            "# HELP forest_http_requests_total HTTP requests by method, route and status.",
            "# TYPE forest_http_requests_total counter",
        ]
        with self.lock:
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(
                    f'forest_http_requests_total{{method="{method}",route="{route}",'
                    f'status="{status}"}} {n}'
                )
            for kind, (metric, help_, label, values) in _COUNTERS.items():
                out += [f"# HELP {metric} {help_}", f"# TYPE {metric} counter"]
                out += [f'{metric}{{{label}="{v}"}} {self.counts[(kind, v)]}' for v in values]
            out += [
                "# HELP forest_queue_depth Rules decisions in flight plus queued LLM work.",
                "# TYPE forest_queue_depth gauge",
                f"forest_queue_depth {depth}",
                "# HELP forest_queue_capacity Queue depth past which POSTs get 429.",
                "# TYPE forest_queue_capacity gauge",
                f"forest_queue_capacity {capacity}",
                "# HELP forest_unflushed_rows Journaled rows not yet in the store.",
                "# TYPE forest_unflushed_rows gauge",
                f"forest_unflushed_rows {unflushed}",
                "# HELP forest_investigation_seconds Investigation latency by tier.",
                "# TYPE forest_investigation_seconds histogram",
            ]
            for tier, h in sorted(self.latency.items()):
                name = "forest_investigation_seconds_bucket"
                for bound, count in zip(_BUCKETS, h, strict=False):
                    out.append(f'{name}{{tier="{tier}",le="{bound}"}} {count:g}')
                out.append(
                    f'forest_investigation_seconds_bucket{{tier="{tier}",le="+Inf"}} {h[-1]:g}'
                )
                out.append(f'forest_investigation_seconds_sum{{tier="{tier}"}} {h[-2]:.6f}')
                out.append(f'forest_investigation_seconds_count{{tier="{tier}"}} {h[-1]:g}')
        return "\n".join(out) + "\n"
