"""Gate throughput: sustained POST /v1/evaluations against a local `forest serve`.

``run_gate_bench(store)`` copies the store to a temporary folder (the service writes its
verdicts there), starts ``forest serve`` on a free localhost port, replays the store's
evaluations under fresh ids from ``concurrency`` client threads for ``seconds``, and
returns evaluations/s and latency percentiles of the POST (rules tier inline).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from agent.schemas import Evaluation
from tools.store import open_readonly

__all__ = ["run_gate_bench"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _evaluations(store: Path) -> list[dict[str, Any]]:
    con = open_readonly(store)
    try:
        cur = con.execute(
            "SELECT evaluation_id, output_id, source_kind, source_id, claim, comment, created_at"
            " FROM evaluations ORDER BY evaluation_id"
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    return [Evaluation.model_validate(r).model_dump(mode="json") for r in rows]


def _wait_up(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("forest serve exited before answering /healthz")
        time.sleep(0.2)
    raise RuntimeError("forest serve did not come up")


def run_gate_bench(
    store: str | Path, seconds: float = 30, *, concurrency: int = 8, workers: int = 2
) -> dict[str, Any]:
    """Evaluations/s sustained and p50/p95/p99 latency (ms) of POST /v1/evaluations."""
    templates = _evaluations(Path(store))
    if not templates:
        raise ValueError(f"{store} holds no evaluations to replay")
    with tempfile.TemporaryDirectory(prefix="forest-gate-bench-") as tmp:
        copy = Path(shutil.copy(store, Path(tmp) / "gate.duckdb"))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        forest = Path(sys.executable).with_name("forest")
        argv = [str(forest), "serve", "--store", str(copy), "--port", str(port)]
        argv += ["--workers", str(workers), "--queue-size", str(4 * concurrency)]
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_up(base, proc)
            latencies: list[float] = []
            statuses: dict[int, int] = {}
            lock = threading.Lock()
            counter = iter(range(10**9))
            stop_at = time.monotonic() + seconds

            def client() -> None:
                with httpx.Client(base_url=base, timeout=30) as http:
                    while time.monotonic() < stop_at:
                        n = next(counter)
                        body = {**templates[n % len(templates)], "evaluation_id": f"bench-{n}"}
                        started = time.perf_counter()
                        r = http.post("/v1/evaluations", json=body)
                        took = time.perf_counter() - started
                        with lock:
                            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                            if r.is_success:
                                latencies.append(took)

            started = time.monotonic()
            threads = [threading.Thread(target=client) for _ in range(concurrency)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
        finally:
            proc.terminate()
            proc.wait(60)
    latencies.sort()

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)

    return {
        "seconds": round(elapsed, 1),
        "evaluations": len(latencies),
        "evaluations_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50) if latencies else None,
        "p95_ms": pct(0.95) if latencies else None,
        "p99_ms": pct(0.99) if latencies else None,
        "statuses": statuses,
        "concurrency": concurrency,
        "workers": workers,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run_gate_bench(sys.argv[1] if len(sys.argv) > 1 else "forest-demo.duckdb")))
