"""Gate throughput: sustained POST /v1/evaluations against a local `forest serve`.

``run_gate_bench(store)`` copies the store to a temporary folder (the service writes its
verdicts there), starts ``forest serve`` on a free localhost port and posts evaluations
from ``concurrency`` client threads for ``seconds``. Each POST is about a different
output (the store's evaluations lend source, claim, comment and review delay; the output
is drawn from the store's outputs), so no two requests investigate the same lineage until
every output has had its turn. ``unknown_outputs`` posts evaluations of outputs the store
lacks instead: the gate answers them without a sweep, which measures its fixed cost.

Besides evaluations/s and POST latency it reports the CPU each evaluation cost the server
and the load generator, and the CPU-bound ceiling that leaves on this machine's cores.
"""

from __future__ import annotations

import datetime as dt
import os
import random
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
from tools.store.connection import fetch_dicts, open_readonly

__all__ = ["run_gate_bench"]

MAX_OUTPUTS = 50_000  # outputs drawn for the bench (all of them on the demo store)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bodies(store: Path, *, unknown_outputs: bool) -> list[dict[str, Any]]:
    """One evaluation body per output (shuffled), modelled on the store's evaluations."""
    con = open_readonly(store)
    try:
        templates = fetch_dicts(
            con,
            "SELECT e.*, o.captured_at FROM evaluations e JOIN outputs o USING (output_id)"
            " ORDER BY e.evaluation_id",
        )
        outputs = fetch_dicts(
            con,
            "SELECT output_id, captured_at FROM outputs"
            f" USING SAMPLE reservoir({MAX_OUTPUTS} ROWS) REPEATABLE (7) ORDER BY output_id",
        )
    finally:
        con.close()
    if not templates:
        raise ValueError(f"{store} holds no evaluations to model the posts on")
    random.Random(7).shuffle(outputs)
    bodies = []
    for n, output in enumerate(outputs):
        t = templates[n % len(templates)]
        body = {k: t[k] for k in ("source_kind", "source_id", "claim", "comment")}
        delay: dt.timedelta = t["created_at"] - t["captured_at"]
        body["output_id"] = f"unknown-{n}" if unknown_outputs else output["output_id"]
        body["created_at"] = output["captured_at"] + delay
        body["evaluation_id"] = "template"
        bodies.append(Evaluation.model_validate(body).model_dump(mode="json"))
    return bodies


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    store: str | Path,
    seconds: float = 30,
    *,
    concurrency: int = 8,
    workers: int = 2,
    unknown_outputs: bool = False,
) -> dict[str, Any]:
    """Evaluations/s sustained, p50/p95/p99 latency (ms) of POST /v1/evaluations, and CPU
    milliseconds per evaluation in the server and in the load generator."""
    bodies = _bodies(Path(store), unknown_outputs=unknown_outputs)
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
            statuses: dict[str, int] = {}
            lock = threading.Lock()
            counter = iter(range(10**9))
            stop_at = time.monotonic() + seconds

            def client() -> None:
                with httpx.Client(base_url=base, timeout=30) as http:
                    while time.monotonic() < stop_at and proc.poll() is None:
                        n = next(counter)
                        body = {**bodies[n % len(bodies)], "evaluation_id": f"bench-{n}"}
                        started = time.perf_counter()
                        try:
                            r = http.post("/v1/evaluations", json=body)
                        except httpx.TransportError as exc:
                            status = type(exc).__name__
                        else:
                            status = str(r.status_code)
                        took = time.perf_counter() - started
                        with lock:
                            statuses[status] = statuses.get(status, 0) + 1
                            if status == "200":
                                latencies.append(took)

            server_cpu = _cpu_seconds(proc.pid)
            client_cpu = time.process_time()
            started = time.monotonic()
            threads = [threading.Thread(target=client) for _ in range(concurrency)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
            client_cpu = time.process_time() - client_cpu
            server_end = _cpu_seconds(proc.pid)
            crashed = proc.poll() is not None
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:  # a stuck server must not hang the bench
                proc.kill()
                proc.wait()
    if crashed:
        raise RuntimeError(f"forest serve died during the bench (statuses {statuses})")
    latencies.sort()
    n = len(latencies)

    def pct(q: float) -> float | None:
        return round(1000 * latencies[min(n - 1, int(q * n))], 1) if n else None

    server_ms = (
        round(1000 * (server_end - server_cpu) / n, 2)
        if n and server_cpu is not None and server_end is not None
        else None
    )
    client_ms = round(1000 * client_cpu / n, 2) if n else None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "seconds": round(elapsed, 1),
        "evaluations": n,
        "distinct_outputs": min(n, len(bodies)),
        "evaluations_per_s": round(n / elapsed, 1),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "statuses": statuses,
        "concurrency": concurrency,
        "workers": workers,
        "unknown_outputs": unknown_outputs,
        "server_cpu_ms_per_evaluation": server_ms,
        "client_cpu_ms_per_evaluation": client_ms,
        "cores": cores,
        # what the cores could sustain if nothing but this CPU work limited the gate
        "cpu_ceiling_per_s": round(1000 * (cores or 1) / (server_ms + client_ms), 1)
        if server_ms and client_ms
        else None,
    }


if __name__ == "__main__":
    import json

    from agent.settings import Settings

    store = sys.argv[1] if len(sys.argv) > 1 else Settings().store
    print(json.dumps(run_gate_bench(store)))
