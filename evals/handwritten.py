"""Hand-written incidents: explicit rows for worlds the simulator does not make.

Two pipelines unlike the demo fleet — a licence-plate gate (a second, non-camera sensor
joins at the policy node) and a retail shelf-gap pipeline without a tracker — with other
component ids, tenants whose sites and devices follow other naming, other log wording,
night-time and weekend timing, health sampled every 15 minutes, evaluations made days
later, and input drift measured on other features. Every row is written here; nothing is
copied from simulator output. ``python -m evals.handwritten evals/incidents`` rewrites
the ``1NN_hw_*`` folders deterministically.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import shutil
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.schemas import Evaluation
from evals.incident import CASE_FILE, SLICE_DIR, Expected, Incident, IncidentProvenance, load_case

__all__ = ["SCENARIOS", "write_all"]

RECORDED_ON = dt.date(2026, 11, 23)
H, M = dt.timedelta(hours=1), dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    version: str
    metrics: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pipeline:
    tenant: str
    site: str
    device: str
    model: str
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]
    nominal_fps: float
    nominal_h: float


def _gate_pipeline(device: str = "lpr-gate2-in") -> Pipeline:
    nodes = (
        Node(device, "sensor", "fw-5.51.3", {"frame_age_ms": 38.0}),
        Node("loop-ind-2", "sensor", "lp-2.0", {"occupancy": 1.0}),
        Node("rtsp-ingest", "capture", "0.9.14", {"jitter_ms": 11.0, "frames": 25.0}),
        Node("frame-normalizer", "transform", "3.2.0", {"mean_luma": 0.46, "clip_ratio": 0.02}),
        Node("plate-detector", "model", "pd-2026.02", {"boxes": 2.0, "top_score": 0.81}),
        Node("track-linker", "tracker", "1.4.1", {"tracks": 1.0}),
        Node("score-gate", "threshold", "1.0.7", {"score": 0.81}, {"gate.min_confidence": 0.55}),
        Node("rules-engine", "policy", "7.3.0", {"rules_hit": 1.0}, {"escalate.after_hours": True}),
        Node("notify-webhook", "sink", "2.2.5", {"latency_ms": 140.0}),
    )
    edges = (
        (device, "rtsp-ingest"),
        ("rtsp-ingest", "frame-normalizer"),
        ("frame-normalizer", "plate-detector"),
        ("plate-detector", "track-linker"),
        ("track-linker", "score-gate"),
        ("score-gate", "rules-engine"),
        ("loop-ind-2", "rules-engine"),
        ("rules-engine", "notify-webhook"),
    )
    return Pipeline("harbor-logistics", "gate-complex", device, "platenet", nodes, edges, 25, 720)


def _shelf_pipeline(device: str = "shelfcam-0042-a3", site: str = "store-0042") -> Pipeline:
    nodes = (
        Node(device, "sensor", "fw-2.8", {"frame_age_ms": 90.0}),
        Node("edge-decoder", "capture", "4.1.2", {"decode_ms": 21.0, "width": 1920.0}),
        Node("crop-tiler", "transform", "1.12.0", {"tiles": 9.0, "valid_tiles": 9.0}),
        Node("gap-segmenter", "model", "gs-7", {"gap_pixels": 5200.0, "mask_conf": 0.74}),
        Node("stock-counter", "fusion", "0.6.3", {"facings": 14.0}),
        Node("min-area-gate", "threshold", "0.3.1", {"area": 0.12}, {"gap.min_area": 0.08}),
        Node("restock-policy", "policy", "2.0.0", {"tasks": 1.0}, {"restock.weekend": "defer"}),
        Node("task-queue", "sink", "5.5.5", {"queued": 1.0}),
    )
    ids = [n.id for n in nodes]
    edges = tuple(itertools.pairwise(ids))
    return Pipeline("corner-grocer", site, device, "shelfgap", nodes, edges, 10, 1080)


class Slice:
    """The rows of one hand-written incident, table by table."""

    def __init__(self, p: Pipeline, capture: dt.datetime, seed: int) -> None:
        self.p, self.capture, self.rng = p, capture, random.Random(seed)
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, table: str, **row: Any) -> None:
        self.rows[table].append(row)

    def jitter(self, value: float, spread: float = 0.03) -> float:
        return round(value * (1 + self.rng.uniform(-spread, spread)), 4)

    def output(
        self,
        output_id: str,
        at: dt.datetime,
        *,
        versions: dict[str, str] | None = None,
        metrics: dict[str, dict[str, float]] | None = None,
        params: dict[str, dict[str, Any]] | None = None,
        decision: str = "no_alert",
        score: float = 0.31,
    ) -> dict[str, str]:
        """One output with a run per node (started a few seconds after capture)."""
        p, versions, metrics, params = self.p, versions or {}, metrics or {}, params or {}
        model_version = versions.get("model") or next(
            n.version for n in p.nodes if n.kind == "model"
        )
        self.add(
            "outputs",
            output_id=output_id,
            tenant_id=p.tenant,
            site_id=p.site,
            device_id=p.device,
            captured_at=at,
            decision=decision,
            label="gap" if p.model == "shelfgap" else "plate",
            score=score,
            model_id=p.model,
            model_version=model_version,
        )
        run_ids = {}
        for i, node in enumerate(p.nodes):
            run_id = f"{output_id}/{i:02d}-{node.kind}"
            start = at + dt.timedelta(milliseconds=400 * i + 250)
            version = model_version if node.kind == "model" else versions.get(node.id, node.version)
            values = {k: self.jitter(v) for k, v in node.metrics.items()} | metrics.get(node.id, {})
            self.add(
                "runs",
                run_id=run_id,
                output_id=output_id,
                component_id=node.id,
                kind=node.kind,
                version=version,
                started_at=start,
                ended_at=start + dt.timedelta(milliseconds=300),
                status="ok",
                params=node.params | params.get(node.id, {}),
                metrics=values,
            )
            run_ids[node.id] = run_id
        for parent, child in p.edges:
            self.add(
                "lineage_edges",
                output_id=output_id,
                parent_run_id=run_ids[parent],
                child_run_id=run_ids[child],
            )
        return run_ids

    def history(
        self,
        n: int = 12,
        every: dt.timedelta = 95 * M,
        change: Callable[[int], dict[str, Any]] | None = None,
    ) -> None:
        """Earlier outputs of the same device (``change(k)`` gives the k-th one's overrides):
        the baselines runs and versions are compared to."""
        for k in range(n, 0, -1):
            extra = change(k) if change else {}
            self.output(f"{self.p.device}:{k:02d}", self.capture - k * every, **extra)

    def health(
        self,
        device: str,
        normal: dict[str, float],
        fault: dict[str, float] | None = None,
        since: dt.timedelta = 40 * M,
    ) -> None:
        """Samples every 15 minutes from 24 h before to 1 h after capture."""
        fault = fault or {}
        t = self.capture - 24 * H
        while t <= self.capture + H:
            for metric, value in normal.items():
                bad = metric in fault and t >= self.capture - since
                self.add(
                    "device_health",
                    device_id=device,
                    ts=t,
                    metric=metric,
                    value=fault[metric] if bad else self.jitter(value, 0.02),
                )
            t += 15 * M

    def facts(self, device: str, kind: str, fps: float, height: float | None) -> None:
        self.add(
            "device_facts",
            device_id=device,
            tenant_id=self.p.tenant,
            site_id=self.p.site,
            kind=kind,
            model="AXIS Q1786-LE" if kind == "camera" else "inductive loop",
            firmware="10.12.4",
            install_date=dt.date(2024, 5, 2),
            last_maintenance=dt.date(2026, 1, 19),
            nominal_fps=fps,
            nominal_resolution_h=height,
        )

    def config(
        self,
        cid: str,
        key: str,
        scope: str,
        scope_id: str,
        value: Any,
        start: dt.datetime,
        end: dt.datetime | None,
        component: str,
        note: str = "",
    ) -> None:
        self.add(
            "config_versions",
            config_id=cid,
            key=key,
            scope=scope,
            scope_id=scope_id,
            value=value,
            valid_from=start,
            valid_to=end,
            author="ops@" + self.p.tenant,
            change_note=note,
            component_id=component,
        )

    def evaluator(self, source_id: str, n: int, agreed: int) -> None:
        for i in range(n):
            self.add(
                "evaluator_history",
                source_id=source_id,
                evaluation_id=f"adj-{source_id}-{i}",
                agreed=i < agreed,
                adjudicated_at=self.capture - (60 - i) * 24 * H,
            )

    def log(
        self,
        at: dt.datetime,
        node: str,
        level: str,
        message: str,
        run_id: str | None = None,
        **attributes: Any,
    ) -> None:
        self.add(
            "logs",
            ts=at,
            run_id=run_id,
            component_id=node,
            level=level,
            message=message,
            attributes=attributes,
        )

    def write(self, folder: Path) -> None:
        out = folder / SLICE_DIR
        out.mkdir(parents=True)
        for table, rows in sorted(self.rows.items()):
            with (out / f"{table}.jsonl").open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, default=_json_default, sort_keys=True) + "\n")


def _json_default(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(type(value))


CAMERA = {"focus_score": 0.82, "exposure": 0.47, "fps": 25.0, "dropped_frames": 0.4}
SHELF_CAMERA = {"focus_score": 0.77, "exposure": 0.55, "fps": 10.0, "bitrate_kbps": 2400.0}
LOOP = {"fps": 50.0, "dropped_frames": 0.2}


@dataclass(frozen=True)
class Scenario:
    slug: str
    tags: tuple[str, ...]
    expected: dict[str, Any]
    build: Callable[[], tuple[Slice, dict[str, Any]]]


def _world(
    p: Pipeline,
    capture: dt.datetime,
    seed: int,
    source: str,
    agreed: tuple[int, int],
    claim: str = "false_negative",
    comment: str = "",
    kind: str = "human",
    delay: dt.timedelta = 3 * 24 * H,
    release: tuple[dt.timedelta, float] | None = None,
) -> tuple[Slice, dict[str, Any]]:
    """The parts every incident has: devices, configs, model registry, evaluator, evaluation."""
    s = Slice(p, capture, seed)
    gate = p.model == "platenet"
    s.facts(p.device, "camera", p.nominal_fps, p.nominal_h)
    s.health(p.device, CAMERA if gate else SHELF_CAMERA)
    if gate:
        s.facts("loop-ind-2", "loop_sensor", 50, None)
        s.health("loop-ind-2", LOOP)
        s.config(
            "cfg-g1",
            "gate.min_confidence",
            "global",
            "*",
            0.55,
            capture - 60 * 24 * H,
            None,
            "score-gate",
            "fleet default",
        )
        s.config(
            "cfg-t1",
            "escalate.after_hours",
            "tenant",
            p.tenant,
            True,
            capture - 90 * 24 * H,
            None,
            "rules-engine",
            "night shift has no guard",
        )
    else:
        s.config(
            "cfg-t1",
            "gap.min_area",
            "tenant",
            p.tenant,
            0.08,
            capture - 45 * 24 * H,
            None,
            "min-area-gate",
            "calibrated on planogram audit",
        )
        s.config(
            "cfg-s1",
            "restock.weekend",
            "site",
            p.site,
            "defer",
            capture - 70 * 24 * H,
            None,
            "restock-policy",
            "weekend crew is small",
        )
    model = next(n for n in p.nodes if n.kind == "model")
    threshold = 0.55 if gate else 0.08
    released, recommended = release or (30 * 24 * H, threshold)
    s.add(
        "models",
        model_id=p.model,
        version="prev",
        component_id=model.id,
        released_at=capture - 120 * 24 * H,
        recommended_threshold=threshold,
        metrics={"recall": 0.9},
        notes="superseded",
    )
    s.add(
        "models",
        model_id=p.model,
        version=model.version,
        component_id=model.id,
        released_at=capture - released,
        recommended_threshold=recommended,
        metrics={"recall": 0.93, "precision": 0.9},
        notes="retrained on winter data",
    )
    s.evaluator(source, *agreed)
    evaluation = {
        "evaluation_id": f"hw-{seed}",
        "output_id": f"{p.device}:now",
        "source_kind": kind,
        "source_id": source,
        "claim": claim,
        "comment": comment or None,
        "created_at": capture + delay,
    }
    s.add("evaluations", **evaluation)
    return s, evaluation


def _path(p: Pipeline, start: str) -> list[str]:
    """The chain from ``start`` to the sink along the pipeline's edges."""
    path, children = [start], dict(p.edges)
    while path[-1] in children:
        path.append(children[path[-1]])
    return path


SAT_NIGHT = dt.datetime(2026, 3, 14, 2, 37, 12, 250000, tzinfo=dt.UTC)
SUN_MORNING = dt.datetime(2026, 4, 5, 6, 4, 51, tzinfo=dt.UTC)


def _expect(
    category: str,
    node: str | None,
    path: list[str],
    action: str,
    *,
    train: bool = False,
    abstain_ok: bool = False,
) -> dict[str, Any]:
    return {
        "category": category,
        "failing_node": node,
        "acceptable_causal_paths": [path] if path else [],
        "action": action,
        "route_to_training": train,
        "abstain_ok": abstain_ok,
    }


def defocus() -> tuple[Slice, dict[str, Any]]:
    p = _gate_pipeline()
    s, ev = _world(
        p,
        SAT_NIGHT,
        101,
        "gate-desk-anna",
        (40, 38),
        comment="truck left through gate 2, plate unreadable, nothing raised",
    )
    s.rows["device_health"] = [r for r in s.rows["device_health"] if r["device_id"] != p.device]
    s.health(p.device, CAMERA, {"focus_score": 0.29}, since=40 * M)
    s.history()
    s.output(ev["output_id"], SAT_NIGHT)
    return s, ev


def dropped_frames() -> tuple[Slice, dict[str, Any]]:
    p = _gate_pipeline("lpr-gate1-out")
    s, ev = _world(
        p,
        SAT_NIGHT + 26 * H,
        102,
        "gate-desk-omar",
        (35, 33),
        comment="van tailgated out, no event at all",
        delay=9 * 24 * H,
    )
    s.rows["device_health"] = [r for r in s.rows["device_health"] if r["device_id"] != p.device]
    s.health(p.device, CAMERA, {"dropped_frames": 14.0}, since=25 * M)
    # red herrings: a tracker release two days earlier, and a webhook retry after the fact
    s.history(12, 5 * H, lambda k: {"versions": {"track-linker": "1.4.0"}} if k > 8 else {})
    s.output(ev["output_id"], s.capture)
    s.log(s.capture + 4 * M, "notify-webhook", "WARN", "POST ops-pager -> 503, retry in 30s")
    return s, ev


def tiler_regression() -> tuple[Slice, dict[str, Any]]:
    p = _shelf_pipeline()
    s, ev = _world(
        p,
        SUN_MORNING,
        103,
        "store-lead-0042",
        (22, 21),
        comment="aisle 3 bottom shelf empty since opening, no restock task",
    )
    bad = {"crop-tiler": {"tiles": 9.0, "valid_tiles": 2.0}}
    s.history(
        12,
        60 * M,
        lambda k: {"versions": {"crop-tiler": "1.13.0"}, "metrics": bad} if k < 5 else {},
    )
    runs = s.output(ev["output_id"], SUN_MORNING, versions={"crop-tiler": "1.13.0"}, metrics=bad)
    ms = dt.timedelta(milliseconds=1)
    for i, at in enumerate((SUN_MORNING + 1100 * ms, SUN_MORNING + 1200 * ms)):
        s.log(
            at,
            "crop-tiler",
            "ERROR",
            f"tiler: 7/9 tiles rejected, stride 1920 != 1280 (#{i})",
            run_id=runs["crop-tiler"],
            rejected=7,
        )
    s.log(SUN_MORNING - 5 * H, "crop-tiler", "INFO", "rolled out crop-tiler 1.13.0 via fleetctl")
    return s, ev


def tiler_config_drift() -> tuple[Slice, dict[str, Any]]:
    p = _shelf_pipeline("shelfcam-0107-b1", "store-0107")
    s, ev = _world(
        p,
        SUN_MORNING + 2 * H,
        104,
        "store-lead-0107",
        (30, 29),
        claim="bad_localization",
        comment="gap box covers two facings",
    )
    change = s.capture - 8 * H
    s.config(
        "cfg-s2",
        "tiler.grid",
        "site",
        p.site,
        3,
        s.capture - 60 * 24 * H,
        change,
        "crop-tiler",
        "default 3x3",
    )
    s.config(
        "cfg-s3",
        "tiler.grid",
        "site",
        p.site,
        5,
        change,
        None,
        "crop-tiler",
        "finer grid for the new freezer doors",
    )
    new: dict[str, Any] = {
        "params": {"crop-tiler": {"tiler.grid": 5}},
        "metrics": {"crop-tiler": {"tiles": 25.0, "valid_tiles": 25.0}},
    }
    old: dict[str, Any] = {"params": {"crop-tiler": {"tiler.grid": 3}}}
    s.history(12, 100 * M, lambda k: new if k * 100 * M < 8 * H else old)
    s.output(ev["output_id"], s.capture, **new)
    return s, ev


def stale_threshold() -> tuple[Slice, dict[str, Any]]:
    p = _gate_pipeline("lpr-gate3-in")
    s, ev = _world(
        p,
        SAT_NIGHT + 50 * H,
        105,
        "gate-desk-anna",
        (40, 38),
        claim="false_positive",
        comment="alert on an allow-listed plate, score 0.58",
        release=(4 * 24 * H, 0.68),
    )
    s.history()
    s.output(ev["output_id"], s.capture, decision="alert", score=0.58)
    return s, ev


def shadowed_policy() -> tuple[Slice, dict[str, Any]]:
    p = _gate_pipeline("lpr-gate2-in")
    s, ev = _world(
        p,
        SAT_NIGHT + 7 * 24 * H,
        106,
        "gate-desk-omar",
        (35, 33),
        comment="someone climbed the barrier at 03:10, guard never paged",
    )
    s.config(
        "cfg-d1",
        "escalate.after_hours",
        "device",
        p.device,
        False,
        s.capture - 40 * 24 * H,
        None,
        "rules-engine",
        "temporary: contractor works nights",
    )
    s.config(
        "cfg-s1",
        "escalate.after_hours",
        "site",
        p.site,
        True,
        s.capture - 2 * 24 * H,
        None,
        "rules-engine",
        "contractor gone, escalate again",
    )
    off: dict[str, Any] = {"params": {"rules-engine": {"escalate.after_hours": False}}}
    s.history(change=lambda k: off)
    s.output(ev["output_id"], s.capture, **off)
    return s, ev


def snow_glare() -> tuple[Slice, dict[str, Any]]:
    p = _gate_pipeline("lpr-gate4-in")
    s, ev = _world(
        p,
        SAT_NIGHT - 20 * 24 * H,
        107,
        "gate-desk-anna",
        (40, 38),
        comment="plate missed in the snow, glare on the lens",
    )
    s.history()
    s.output(ev["output_id"], s.capture)
    edges, shares = [0.2, 0.4, 0.6, 0.8], [0.5, 0.3, 0.15, 0.045, 0.005]
    s.add(
        "feature_baselines",
        model_id=p.model,
        version="pd-2026.02",
        feature="glare_index",
        bin_edges=edges,
        expected=shares,
    )
    for k in range(1, 31):  # the device's recent inputs follow the baseline
        value = [0.1, 0.3, 0.5, 0.1, 0.3, 0.7, 0.1, 0.3, 0.5, 0.1][k % 10]
        s.add(
            "input_features",
            output_id=f"{p.device}:{k:02d}",
            device_id=p.device,
            ts=s.capture - k * 11 * M,
            feature="glare_index",
            value=value,
        )
    s.add(
        "input_features",
        output_id=ev["output_id"],
        device_id=p.device,
        ts=s.capture,
        feature="glare_index",
        value=0.93,
    )
    return s, ev


def flaky_contractor() -> tuple[Slice, dict[str, Any]]:
    p = _shelf_pipeline()
    s, ev = _world(
        p,
        SUN_MORNING + 30 * H,
        108,
        "qa-contractor-17",
        (31, 9),
        claim="false_positive",
        comment="looked fine to me",
    )
    s.history()
    s.output(ev["output_id"], s.capture, decision="restock_task", score=0.22)
    return s, ev


def true_miss() -> tuple[Slice, dict[str, Any]]:
    p = _gate_pipeline("lpr-gate5-out")
    s, ev = _world(
        p,
        SAT_NIGHT + 3 * 24 * H,
        109,
        "gate-desk-anna",
        (40, 38),
        comment="clear plate, good light, not detected",
    )
    s.history()
    s.output(ev["output_id"], s.capture, score=0.12)
    return s, ev


def quality_floor_interaction() -> tuple[Slice, dict[str, Any]]:
    p = _shelf_pipeline("shelfcam-0042-c1")
    s, ev = _world(
        p,
        SUN_MORNING + 4 * 24 * H,
        110,
        "store-lead-0042",
        (22, 21),
        comment="three empty facings, no task",
    )
    for cid, key, node, old, new, hours in (
        ("cfg-t2", "decoder.jpeg_quality", "edge-decoder", 90, 80, 10),
        ("cfg-t3", "segmenter.score_floor", "gap-segmenter", 0.40, 0.46, 9),
    ):
        start, change = s.capture - 60 * 24 * H, s.capture - hours * H
        s.config(cid + "a", key, "tenant", p.tenant, old, start, change, node, "baseline")
        s.config(cid + "b", key, "tenant", p.tenant, new, change, None, node, "save bandwidth")
    after: dict[str, Any] = {
        "params": {
            "edge-decoder": {"decoder.jpeg_quality": 80},
            "gap-segmenter": {"segmenter.score_floor": 0.46},
        },
        "metrics": {"gap-segmenter": {"gap_pixels": 900.0, "mask_conf": 0.31}},
    }
    s.history(12, 100 * M, lambda k: after if k * 100 * M < 9 * H else {})
    s.output(ev["output_id"], s.capture, **after)
    return s, ev


def two_sensors() -> tuple[Slice, dict[str, Any]]:
    p = _gate_pipeline("lpr-gate6-in")
    s, ev = _world(
        p,
        SAT_NIGHT + 12 * 24 * H,
        111,
        "gate-desk-omar",
        (35, 33),
        comment="car passed, barrier stayed closed, nobody told",
    )
    s.rows["device_health"] = []
    s.health(p.device, CAMERA, {"focus_score": 0.33}, since=50 * M)
    s.health("loop-ind-2", LOOP, {"dropped_frames": 9.0}, since=30 * M)
    s.history()
    s.output(ev["output_id"], s.capture)
    return s, ev


def judge_true_miss() -> tuple[Slice, dict[str, Any]]:
    p = _shelf_pipeline("shelfcam-0042-d2")
    s, ev = _world(
        p,
        SUN_MORNING + 6 * 24 * H,
        112,
        "judge:shelf-vlm@2026-02",
        (50, 47),
        kind="automated",
        comment="gap of 2 facings at x=410..520 not reported",
        delay=2 * H,
    )
    change = s.capture - 3 * 24 * H
    s.config(
        "cfg-t4a",
        "queue.batch_size",
        "tenant",
        p.tenant,
        20,
        change - 30 * 24 * H,
        change,
        "task-queue",
        "default",
    )
    s.config(
        "cfg-t4b",
        "queue.batch_size",
        "tenant",
        p.tenant,
        25,
        change,
        None,
        "task-queue",
        "fewer API calls",
    )
    s.history()
    s.output(ev["output_id"], s.capture, score=0.05)
    s.log(s.capture - 20 * M, "task-queue", "INFO", "flushed 25 tasks to WMS")
    return s, ev


def _gate_path(start: str, device: str = "lpr-gate2-in") -> list[str]:
    return _path(_gate_pipeline(device), start)


def _shelf_path(start: str, device: str = "shelfcam-0042-a3") -> list[str]:
    return _path(_shelf_pipeline(device), start)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "defocus_gate_night",
        ("medium", "defocus"),
        _expect("sensor_fault", "lpr-gate2-in", _gate_path("lpr-gate2-in"), "hardware_maintenance"),
        defocus,
    ),
    Scenario(
        "dropped_frames_late_review",
        ("hard", "dropped_frames", "red_herring"),
        _expect(
            "sensor_fault",
            "lpr-gate1-out",
            _gate_path("lpr-gate1-out", "lpr-gate1-out"),
            "hardware_maintenance",
        ),
        dropped_frames,
    ),
    Scenario(
        "tiler_release_regression",
        ("easy", "preprocess_regression"),
        _expect(
            "data_pipeline_regression",
            "crop-tiler",
            _shelf_path("crop-tiler"),
            "flag_pipeline_regression",
        ),
        tiler_regression,
    ),
    Scenario(
        "tiler_grid_config_drift",
        ("medium", "config_drift"),
        _expect("config_drift", "crop-tiler", _shelf_path("crop-tiler"), "revert_config"),
        tiler_config_drift,
    ),
    Scenario(
        "gate_threshold_after_release",
        ("medium", "stale_threshold"),
        _expect(
            "threshold_miscalibration",
            "score-gate",
            _gate_path("score-gate"),
            "recalibrate_threshold",
        ),
        stale_threshold,
    ),
    Scenario(
        "after_hours_device_shadow",
        ("hard", "policy_misresolution"),
        _expect(
            "policy_misresolution", "rules-engine", _gate_path("rules-engine"), "revisit_policy"
        ),
        shadowed_policy,
    ),
    Scenario(
        "snow_glare_edge_case",
        ("hard", "edge_case"),
        _expect(
            "distribution_shift",
            "plate-detector",
            _gate_path("plate-detector"),
            "collect_edge_case",
        ),
        snow_glare,
    ),
    Scenario(
        "contractor_reviewer",
        ("easy", "unreliable_reviewer"),
        _expect("evaluation_unreliable", None, [], "discard_evaluation"),
        flaky_contractor,
    ),
    Scenario(
        "clear_plate_miss",
        ("easy", "model_error"),
        _expect(
            "model_error", "plate-detector", _gate_path("plate-detector"), "train_model", train=True
        ),
        true_miss,
    ),
    Scenario(
        "quality_and_floor_interaction",
        ("hard", "interaction"),
        _expect(
            "component_interaction", "gap-segmenter", _shelf_path("edge-decoder"), "escalate_human"
        ),
        quality_floor_interaction,
    ),
    Scenario(
        "camera_and_loop_both_faulty",
        ("hard", "defocus", "dropped_frames", "multi_fault"),
        _expect("inconclusive", None, [], "escalate_human", abstain_ok=True),
        two_sensors,
    ),
    Scenario(
        "judge_true_gap_miss",
        ("medium", "model_error", "red_herring"),
        _expect(
            "model_error", "gap-segmenter", _shelf_path("gap-segmenter"), "train_model", train=True
        ),
        judge_true_miss,
    ),
)


def write_all(root: Path, first_number: int = 101) -> list[Path]:
    """(Re)write every hand-written case folder under ``root``."""
    written = []
    for i, scenario in enumerate(SCENARIOS):
        folder = root / f"{first_number + i:03d}_hw_{scenario.slug}"
        shutil.rmtree(folder, ignore_errors=True)
        rows, evaluation = scenario.build()
        rows.write(folder)
        incident = Incident(
            evaluation=Evaluation.model_validate(evaluation),
            expected=Expected(**scenario.expected),
            tags=[*scenario.tags, "handwritten"],
            provenance=IncidentProvenance(
                source="handwritten (evals/handwritten.py)", date=RECORDED_ON
            ),
        )
        (folder / CASE_FILE).write_text(incident.model_dump_json(indent=2) + "\n", "utf-8")
        written.append(load_case(folder).folder)
    return written


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "evals/incidents")):
        print(path)
