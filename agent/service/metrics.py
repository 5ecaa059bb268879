"""The service's Prometheus metrics, exposed through ``prometheus-client``.

Each :class:`Metrics` has its own :class:`~prometheus_client.CollectorRegistry` (never the
process-global one), so two apps in one process (tests, a restart in place) count apart.
"""

from __future__ import annotations

import threading

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

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
    """Counters, gauges and a histogram in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "forest_http_requests_total",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=reg,
        )
        self.counters: dict[str, Counter] = {}
        for kind, (metric, help_, label, values) in _COUNTERS.items():
            counter = Counter(metric, help_, [label], registry=reg)
            for value in values:  # every known value is exposed, at 0 until counted
                counter.labels(value)
            self.counters[kind] = counter
        self.depth = Gauge(
            "forest_queue_depth", "Rules decisions in flight plus queued LLM work.", registry=reg
        )
        self.capacity = Gauge(
            "forest_queue_capacity", "Queue depth past which POSTs get 429.", registry=reg
        )
        self.unflushed = Gauge(
            "forest_unflushed_rows", "Journaled rows not yet in the store.", registry=reg
        )
        self.flush_failed = Gauge(
            "forest_flush_failed_rows",
            "Journaled rows set aside because the store could not take them.",
            registry=reg,
        )
        self.flush_failing = Gauge(
            "forest_flush_failing", "1 while the last flush into the store failed.", registry=reg
        )
        self.latency = Histogram(
            "forest_investigation_seconds",
            "Investigation latency by tier.",
            ["tier"],
            buckets=_BUCKETS,
            registry=reg,
        )
        self._render_lock = threading.Lock()  # the gauges set and the text read together

    def request(self, method: str, route: str, status: int) -> None:
        self.requests.labels(method, route, str(status)).inc()

    def count(self, kind: str, value: str) -> None:
        """One more ``value`` (e.g. "train") of a ``kind`` in _COUNTERS (e.g. "decision")."""
        self.counters[kind].labels(value).inc()

    def observe(self, tier: str, seconds: float) -> None:
        self.latency.labels(tier).observe(seconds)

    def render(
        self,
        depth: int,
        capacity: int,
        unflushed: int,
        *,
        flush_failed: int = 0,
        flush_failing: bool = False,
    ) -> bytes:
        """The exposition (served as :data:`CONTENT_TYPE_LATEST`) with the gauges as given."""
        with self._render_lock:
            self.depth.set(depth)
            self.capacity.set(capacity)
            self.unflushed.set(unflushed)
            self.flush_failed.set(flush_failed)
            self.flush_failing.set(int(flush_failing))
            return generate_latest(self.registry)
