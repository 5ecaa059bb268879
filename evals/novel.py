"""Hand-written "novel" incidents: deployments unlike the simulator's camera pipelines.

This module writes the ``4NN_novel_<category>_<slug>`` case folders of the eval suite. Each
case is a small, deterministic world for one deployment that does not look like the
camera -> detector -> tracker fleet the simulator builds:

* ``lpr``        licence-plate reader (plate locator, OCR only when a plate was found,
                 allow-list policy, gate relay), outdoor lanes with an IR night cycle
* ``shelf``      retail shelf-gap detection (rectify -> segmenter -> threshold -> task sink,
                 no tracker), indoor, fixed lighting, 10 min health cadence
* ``thermal``    substation perimeter thermal camera (radiometric AGC, detector, tracker,
                 fence-zone rule, SOC sink), ambient-temperature day cycle
* ``warehouse``  dock safety: pose model + zone rules fused with a forklift UWB proximity
                 tag that has its own health (battery, heartbeat gap, signal strength)
* ``traffic``    corridor vehicle counting: detector -> tracker -> stop-line counter ->
                 hourly roll-up sink (one output per camera-hour)
* ``drone``      solar-farm inspection drone, health only while it flies
* ``doorbell``   consumer doorbell with a cloud snapshot API, package detector,
                 notification threshold and quiet-hours policy

Every world carries several days of ordinary history for every component and device
(day/night cycles outdoors, none indoors, noise, integer run counters that are usually
constant, unrelated config changes at all four scopes, evaluator track records of varied
size). One fault (or none, for the genuine model errors) is planted per case, and the
expected verdict is written to ``case.json`` only, never to the slice.

The cases were authored from the store contract alone, without reading how Forest
reasons, so they measure generalization. Run::

    python -m evals.novel --out evals/incidents
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from agent.schemas import ACTION_FOR_CATEGORY
from evals.incident import CASE_FILE, SLICE_DIR, Incident
from tools.store.contract import SORT_KEYS, TABLES, columns
from tools.store.ingest import ingest_dir

_PARQUET = "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 19)"

UTC = dt.UTC
RECORDED_ON = "2026-12-02"
SOURCE = "handwritten-novel"

# The store contract's columns, in contract order, of the tables a slice holds.
# optional columns these deployments do not use (ingest leaves them NULL)
UNUSED = {("evaluator_history", "claim")}
COLUMNS: dict[str, tuple[str, ...]] = {
    t: tuple(c for c in columns(t) if (t, c) not in UNUSED)
    for t in TABLES
    if t not in ("verdicts", "overrides")
}


def ts(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def at(s: str) -> dt.datetime:
    """'2026-11-24 03:10' (UTC) as an aware datetime."""
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


def daylight(t: dt.datetime, utc_offset_h: float) -> float:
    """0 at night, 1 in full daylight, smooth ramps around 06:30 and 17:30 local time."""
    h = (t.hour + t.minute / 60 + utc_offset_h) % 24
    rise = min(max((h - 6.0) / 1.0, 0.0), 1.0)
    fall = min(max((18.0 - h) / 1.0, 0.0), 1.0)
    return min(rise, fall)


def r(x: float, n: int = 3) -> float:
    return round(x, n)


# --------------------------------------------------------------------------- the world


@dataclass
class Stage:
    """One component's run for one output."""

    comp: str
    kind: str
    version: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    parents: tuple[str, ...] = ()
    dur_ms: float = 40.0
    status: str = "ok"
    offset_ms: float = 0.0  # start after capture for a root stage
    logs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


class World:
    """Rows for every store table of one case, built deterministically."""

    def __init__(self, prefix: str, seed: int, t0: dt.datetime, days: float = 3.5) -> None:
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.t0 = t0
        self.start = t0 - dt.timedelta(days=days)
        self.end = t0 + dt.timedelta(hours=6)
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in COLUMNS}
        self._n = 0
        self._cfg = 0

    def uid(self, kind: str) -> str:
        self._n += 1
        return f"{self.prefix}-{kind}-{self._n:05d}"

    def add(self, table: str, **row: Any) -> None:
        assert set(row) == set(COLUMNS[table]), (table, set(row) ^ set(COLUMNS[table]))
        self.rows[table].append({c: row[c] for c in COLUMNS[table]})

    # devices and their health --------------------------------------------------------
    def device(
        self,
        device_id: str,
        tenant: str,
        site: str,
        kind: str,
        model: str,
        firmware: str,
        installed: str,
        maintained: str | None,
        fps: float | None,
        res_h: float | None,
    ) -> None:
        self.add(
            "device_facts",
            device_id=device_id,
            tenant_id=tenant,
            site_id=site,
            kind=kind,
            model=model,
            firmware=firmware,
            install_date=installed,
            last_maintenance=maintained,
            nominal_fps=fps,
            nominal_resolution_h=res_h,
        )

    def health(
        self,
        device_id: str,
        cadence_s: int,
        sample: Callable[[dt.datetime, random.Random], dict[str, float] | None],
        start: dt.datetime | None = None,
    ) -> None:
        """Samples every ``cadence_s`` from the start of history to its end; ``sample``
        returns the metric values at ``t`` (None: the device sent nothing then)."""
        t = start or self.start
        t = t.replace(second=0, microsecond=0)
        while t <= self.end:
            values = sample(t, self.rng)
            for metric, value in (values or {}).items():
                self.add(
                    "device_health",
                    device_id=device_id,
                    ts=ts(t),
                    metric=metric,
                    value=r(float(value), 3),
                )
            t += dt.timedelta(seconds=cadence_s)

    # outputs and their lineage -------------------------------------------------------
    def output(
        self,
        output_id: str,
        tenant: str,
        site: str,
        device: str,
        captured: dt.datetime,
        decision: str,
        label: str | None,
        score: float | None,
        model: tuple[str, str] | None,
        stages: list[Stage],
        features: dict[str, float] | None = None,
    ) -> dict[str, str]:
        self.add(
            "outputs",
            output_id=output_id,
            tenant_id=tenant,
            site_id=site,
            device_id=device,
            captured_at=ts(captured),
            decision=decision,
            label=label,
            score=None if score is None else r(score),
            model_id=model[0] if model else None,
            model_version=model[1] if model else None,
        )
        run_ids: dict[str, str] = {}
        ends: dict[str, dt.datetime] = {}
        for st in stages:
            rid = self.uid("run")
            run_ids[st.comp] = rid
            if st.parents:
                begin = max(ends[p] for p in st.parents) + dt.timedelta(milliseconds=3)
            else:
                begin = captured + dt.timedelta(milliseconds=st.offset_ms)
            end = begin + dt.timedelta(milliseconds=st.dur_ms)
            ends[st.comp] = end
            self.add(
                "runs",
                run_id=rid,
                output_id=output_id,
                component_id=st.comp,
                kind=st.kind,
                version=st.version,
                started_at=begin.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                ended_at=end.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                status=st.status,
                params=st.params,
                metrics=st.metrics,
            )
            for p in st.parents:
                self.add(
                    "lineage_edges", output_id=output_id, parent_run_id=run_ids[p], child_run_id=rid
                )
            for level, message, attrs in st.logs:
                self.log(end, st.comp, level, message, run_id=rid, **attrs)
        for feature, value in (features or {}).items():
            self.add(
                "input_features",
                output_id=output_id,
                device_id=device,
                ts=ts(captured),
                feature=feature,
                value=r(value, 4),
            )
        return run_ids

    def log(
        self,
        t: dt.datetime,
        comp: str,
        level: str,
        message: str,
        run_id: str | None = None,
        **attrs: Any,
    ) -> None:
        self.add(
            "logs",
            ts=t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            run_id=run_id,
            component_id=comp,
            level=level,
            message=message,
            attributes=attrs,
        )

    # configuration ---------------------------------------------------------------------
    def config(
        self,
        key: str,
        scope: str,
        scope_id: str,
        value: Any,
        valid_from: str,
        valid_to: str | None = None,
        author: str = "ops",
        note: str = "",
        comp: str | None = None,
    ) -> None:
        self._cfg += 1
        self.add(
            "config_versions",
            config_id=f"{self.prefix}-cfg-{self._cfg:04d}",
            key=key,
            scope=scope,
            scope_id=scope_id,
            value=value,
            valid_from=ts(at(valid_from)),
            valid_to=None if valid_to is None else ts(at(valid_to)),
            author=author,
            change_note=note,
            component_id=comp,
        )

    # models and their input baselines -------------------------------------------------
    def model(
        self,
        model_id: str,
        version: str,
        comp: str,
        released: str,
        threshold: float | None,
        metrics: dict[str, float],
        notes: str,
    ) -> None:
        self.add(
            "models",
            model_id=model_id,
            version=version,
            component_id=comp,
            released_at=ts(at(released)),
            recommended_threshold=threshold,
            metrics=metrics,
            notes=notes,
        )

    def baseline(
        self,
        model_id: str,
        version: str,
        feature: str,
        edges: list[float],
        draw: Callable[[random.Random], float],
        n: int = 5000,
    ) -> None:
        """The baseline shares of ``draw``'s values in the bins ``edges`` define."""
        rng = random.Random(f"{model_id}/{version}/{feature}")
        counts = [0] * (len(edges) + 1)
        for _ in range(n):
            v = draw(rng)
            counts[sum(v >= e for e in edges)] += 1
        # a little smoothing so no bin is exactly empty
        shares = [(c + 1) / (n + len(counts)) for c in counts]
        total = sum(shares)
        expected = [r(s / total, 4) for s in shares]
        expected[-1] = r(1 - sum(expected[:-1]), 4)
        self.add(
            "feature_baselines",
            model_id=model_id,
            version=version,
            feature=feature,
            bin_edges=edges,
            expected=expected,
        )

    # evaluations ---------------------------------------------------------------------
    def evaluation(
        self,
        evaluation_id: str,
        output_id: str,
        kind: str,
        source: str,
        claim: str,
        comment: str | None,
        created: dt.datetime,
    ) -> dict[str, Any]:
        row = dict(
            evaluation_id=evaluation_id,
            output_id=output_id,
            source_kind=kind,
            source_id=source,
            claim=claim,
            comment=comment,
            created_at=ts(created),
        )
        self.add("evaluations", **row)
        return row

    def track_record(
        self,
        source: str,
        n: int,
        agree_rate: float,
        start: dt.datetime,
        end: dt.datetime,
        *,
        kind: str = "human",
        outputs: list[str] | None = None,
        claims: list[tuple[str, float, float]] | None = None,
    ) -> None:
        """``n`` adjudicated past evaluations of ``source`` spread over [start, end).

        With ``outputs`` the past evaluations themselves are stored too (round-robin over
        those outputs), so their claims can be read; ``claims`` lists (claim, share,
        agreement rate) when the source's agreement differs by claim.
        """
        rng = random.Random(f"{self.prefix}/{source}")
        claims = claims or [
            ("false_positive", 0.6, agree_rate),
            ("false_negative", 0.4, agree_rate),
        ]
        for i in range(n):
            t = start + (end - start) * (i + rng.random() * 0.8) / n
            eid = f"{self.prefix}-hist-{source.replace('@', '-')}-{i:04d}"
            u, acc = (i * 0.6180339887) % 1.0, 0.0
            claim, rate = claims[-1][0], claims[-1][2]
            for c, share, rr in claims:
                acc += share
                if u < acc:
                    claim, rate = c, rr
                    break
            agreed = rng.random() < rate
            if outputs:
                self.evaluation(
                    eid,
                    outputs[i % len(outputs)],
                    kind,
                    source,
                    claim,
                    None,
                    t - dt.timedelta(hours=2),
                )
            self.add(
                "evaluator_history",
                source_id=source,
                evaluation_id=eid,
                agreed=agreed,
                adjudicated_at=ts(t),
            )

    # writing ---------------------------------------------------------------------------
    def write(self, folder: Path) -> None:
        """The slice as compressed Parquet, typed by the store: the rows go through
        ``forest ingest`` (so the contract checks them) and out sorted by its keys."""
        sl = folder / SLICE_DIR
        sl.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            raw, store = Path(tmp) / "raw", Path(tmp) / "slice.duckdb"
            raw.mkdir()
            for table, rows in self.rows.items():
                if rows:
                    with (raw / f"{table}.jsonl").open("w", encoding="utf-8") as fh:
                        fh.writelines(json.dumps(row) + "\n" for row in rows)
            ingest_dir(raw, store)
            con = duckdb.connect(str(store), read_only=True)
            try:
                for table, rows in self.rows.items():
                    if rows:
                        order = ", ".join(SORT_KEYS[table])
                        path = str(sl / f"{table}.parquet")
                        cols = ", ".join(COLUMNS[table])
                        con.execute(
                            f"COPY (SELECT {cols} FROM {table} ORDER BY {order}) TO ? {_PARQUET}",
                            [path],
                        )
            finally:
                con.close()


def background_configs(w: World, tenant: str, site: str, device: str, day: str) -> None:
    """Config changes at all four scopes that no component of the incident depends on."""
    d0 = at(day)

    def d(days: float) -> str:
        return ts(d0 + dt.timedelta(days=days))

    w.config(
        "telemetry.upload_interval_s",
        "global",
        "*",
        300,
        "2026-06-01 00:00:00",
        d(-1.6),
        author="platform-sre",
        note="default telemetry cadence",
    )
    w.config(
        "telemetry.upload_interval_s",
        "global",
        "*",
        120,
        d(-1.6),
        author="platform-sre",
        note="finer telemetry for the fleet dashboard",
    )
    w.config(
        "storage.clip_retention_days",
        "tenant",
        tenant,
        30,
        "2026-03-10 09:00:00",
        d(-2.3),
        author="tenant-admin",
        note="contract default",
    )
    w.config(
        "storage.clip_retention_days",
        "tenant",
        tenant,
        45,
        d(-2.3),
        author="tenant-admin",
        note="legal asked for longer retention",
    )
    w.config(
        "ui.display_timezone",
        "site",
        site,
        "local",
        "2026-04-02 12:00:00",
        d(-0.8),
        author="site-manager",
        note="",
    )
    w.config(
        "ui.display_timezone",
        "site",
        site,
        "site",
        d(-0.8),
        author="site-manager",
        note="show site time in the console",
    )
    w.config(
        "maintenance.contact",
        "device",
        device,
        "field-team-a",
        "2026-05-20 08:00:00",
        d(-3.1),
        author="field-ops",
        note="",
    )
    w.config(
        "maintenance.contact",
        "device",
        device,
        "field-team-c",
        d(-3.1),
        author="field-ops",
        note="territory reshuffle",
    )


def routine_logs(w: World, lines: dict[str, list[str]], every_h: float = 7.0) -> None:
    """Ordinary INFO chatter: each component repeats its own wording every few hours."""
    for comp, messages in lines.items():
        t = w.start + dt.timedelta(hours=w.rng.random() * every_h)
        i = 0
        while t < w.end:
            w.log(t, comp, "INFO", messages[i % len(messages)])
            t += dt.timedelta(hours=every_h * (0.7 + 0.6 * w.rng.random()))
            i += 1


def noise_counter(rng: random.Random, p: float = 0.02) -> int:
    """An integer counter that is 0 almost always."""
    return 1 if rng.random() < p else 0


def every(w: World, minutes: float, jitter_min: float = 0.0) -> list[dt.datetime]:
    """Ordinary event times over the history window (the incident time excluded)."""
    out = []
    t = w.start + dt.timedelta(minutes=w.rng.random() * minutes)
    while t < w.end:
        jit = (w.rng.random() - 0.5) * 2 * jitter_min
        tt = (t + dt.timedelta(minutes=jit)).replace(microsecond=0)
        if abs((tt - w.t0).total_seconds()) > 120:
            out.append(tt)
        t += dt.timedelta(minutes=minutes)
    return out


# --------------------------------------------------------------------------- cases


@dataclass
class Built:
    world: World
    evaluation: dict[str, Any]
    category: str
    failing_node: str | None
    paths: list[list[str]]
    difficulty: str
    abstain_ok: bool = False
    extra_tags: tuple[str, ...] = ()


# ---- licence-plate reader ---------------------------------------------------------

LPR_TENANT, LPR_SITE = "civicpark", "cp-garage-5th"
LPR_CAMS = ("cp5-lane1-anpr", "cp5-lane2-anpr")
LPR_OCR_MODEL = ("civicpark-plate-ocr", "4.2.0")


def lpr_world(prefix: str, seed: int, t0: dt.datetime, fault: str | None) -> World:
    """Two entry lanes; OCR and allow-list only run when the locator found a plate.

    ``fault='renamed_key'``: two days before t0 a tenant 'key cleanup' closed
    ``ocr.char_conf_min`` and wrote ``ocr.min_char_confidence`` instead, which nothing
    reads, so the OCR silently falls back to the global default 0.30.
    """
    w = World(prefix, seed, t0)
    drift_at = t0 - dt.timedelta(days=2, hours=3)
    for cam, fw in zip(LPR_CAMS, ("3.14.2", "3.14.2"), strict=True):
        w.device(
            cam,
            LPR_TENANT,
            LPR_SITE,
            "camera",
            "Vigilant ANPR-IR 6",
            fw,
            "2025-08-19",
            "2026-09-30",
            25.0,
            1080.0,
        )

        def cam_health(t: dt.datetime, rng: random.Random) -> dict[str, float]:
            day = daylight(t, -8)
            return {
                "exposure": 0.6 + (1 - day) * 3.4 + rng.gauss(0, 0.08),  # ms, IR flash at night
                "focus_score": 0.81 + rng.gauss(0, 0.015),
                "fps": 25.0 if rng.random() > 0.01 else 24.0,
                "dropped_frames": 0 if rng.random() > 0.03 else rng.randint(1, 3),
                "bitrate_kbps": 3100 + (1 - day) * 900 + rng.gauss(0, 80),
                "ir_led_current_ma": (1 - day) * 420 + rng.gauss(0, 5) * (1 - day),
            }

        w.health(cam, 300, cam_health)
    w.config(
        "ocr.char_conf_min",
        "global",
        "*",
        0.30,
        "2025-01-15 00:00:00",
        author="vendor-defaults",
        note="library default",
        comp="anpr-ocr",
    )
    w.config(
        "ocr.char_conf_min",
        "tenant",
        LPR_TENANT,
        0.65,
        "2025-09-02 16:20:00",
        ts(drift_at) if fault == "renamed_key" else None,
        author="cp-integrator",
        note="commissioning: reject low-confidence characters to manual review",
        comp="anpr-ocr",
    )
    if fault == "renamed_key":
        w.config(
            "ocr.min_char_confidence",
            "tenant",
            LPR_TENANT,
            0.65,
            ts(drift_at),
            author="cp-admin-portal",
            note="key cleanup: harmonise names with v4 docs",
        )
    w.config(
        "allowlist.fuzzy_max_edits",
        "site",
        LPR_SITE,
        0,
        "2025-09-02 16:20:00",
        author="cp-integrator",
        note="exact match only",
        comp="plate-allowlist",
    )
    w.config(
        "relay.pulse_ms",
        "device",
        LPR_CAMS[1],
        800,
        "2025-10-11 10:00:00",
        author="cp-integrator",
        note="lane 2 barrier is slower",
        comp="gate-relay",
    )
    background_configs(w, LPR_TENANT, LPR_SITE, LPR_CAMS[0], ts(t0))
    w.model(
        *LPR_OCR_MODEL,
        "anpr-ocr",
        "2026-09-08 06:00:00",
        None,
        {"char_accuracy": 0.991, "plate_accuracy": 0.962},
        "US plates, IR + colour",
    )
    w.model(
        "civicpark-plate-locator",
        "2.8.1",
        "plate-locator",
        "2026-05-02 06:00:00",
        0.5,
        {"ap50": 0.985},
        "",
    )
    w.baseline(*LPR_OCR_MODEL, "plate_height_px", [22, 28, 34, 40, 48], lambda g: g.gauss(36, 6))
    w.baseline(
        *LPR_OCR_MODEL, "plate_contrast", [0.3, 0.45, 0.6, 0.75], lambda g: g.gauss(0.58, 0.11)
    )

    routine_logs(
        w,
        {
            "anpr-ocr": ["ocr pool healthy: 2 workers, queue 0", "charset US-CA loaded (v2026.10)"],
            "plate-allowlist": [
                "permit list permits-2026Q4 synced from CivicPark portal (1843 plates)"
            ],
            "gate-relay": ["relay self-test ok lane1/lane2"],
        },
        every_h=9,
    )
    if fault == "renamed_key":
        w.log(
            drift_at + dt.timedelta(minutes=1),
            "anpr-ocr",
            "INFO",
            "config reload: 14 keys, char_conf_min=0.3",
            source="resolved",
        )
    for i, t in enumerate(every(w, 35, 10)):
        cam = LPR_CAMS[i % 2]
        w_conf = 0.30 if (fault == "renamed_key" and t >= drift_at) else 0.65
        lpr_event(w, f"{prefix}-ev{i:04d}", cam, t, w_conf)
    return w


def lpr_event(
    w: World,
    oid: str,
    cam: str,
    t: dt.datetime,
    char_conf_min: float,
    *,
    plate_found: bool | None = None,
    min_char: float | None = None,
    decision: str | None = None,
    label: str | None = None,
    mean_char: float | None = None,
) -> dict[str, str]:
    g = w.rng
    day = daylight(t, -8)
    found = plate_found if plate_found is not None else g.random() > 0.06
    height = g.gauss(36, 6)
    feats = {"plate_height_px": height, "plate_contrast": g.gauss(0.58, 0.11)}
    stages = [
        Stage(
            cam,
            "capture",
            "3.14.2",
            {"mode": "ir" if day < 0.5 else "colour"},
            {"frames": 1, "trigger_loop": 1},
            dur_ms=20,
        ),
        Stage(
            "plate-locator",
            "model",
            "2.8.1",
            {"min_box_px": 18},
            {
                "plates_found": int(found),
                "box_conf": r(g.uniform(0.9, 0.99) if found else 0),
                "latency_ms": r(g.gauss(14, 2), 1),
                "retries": noise_counter(g),
            },
            parents=(cam,),
            dur_ms=15,
        ),
    ]
    if not found:
        w.output(
            oid,
            LPR_TENANT,
            LPR_SITE,
            cam,
            t,
            "manual_review",
            None,
            None,
            ("civicpark-plate-locator", "2.8.1"),
            [
                *stages,
                Stage(
                    "gate-relay",
                    "sink",
                    "1.2.0",
                    {"pulse_ms": 500},
                    {"relay_pulses": 0, "intercom_calls": 1},
                    parents=("plate-locator",),
                ),
            ],
        )
        return {}
    mc = min_char if min_char is not None else min(0.99, max(0.2, g.gauss(0.86, 0.09)))
    accepted = mc >= char_conf_min
    mean = mean_char if mean_char is not None else min(0.995, mc + abs(g.gauss(0.07, 0.02)))
    permit = g.random() < 0.7
    dec = decision or (
        "open_gate" if accepted and permit else "deny" if accepted else "manual_review"
    )
    lab = (
        label
        if label is not None
        else ("permit_holder" if accepted and permit else "visitor" if accepted else None)
    )
    stages += [
        Stage(
            "anpr-ocr",
            "model",
            LPR_OCR_MODEL[1],
            {"char_conf_min": char_conf_min, "charset": "US-CA", "max_chars": 8},
            {
                "chars_read": 7,
                "min_char_conf": r(mc),
                "mean_char_conf": r(mean),
                "rejected_chars": 0 if accepted else 1,
                "latency_ms": r(g.gauss(22, 3), 1),
                "gpu_oom": 0,
            },
            parents=("plate-locator",),
            dur_ms=24,
        ),
        Stage(
            "plate-allowlist",
            "policy",
            "0.9.4",
            {"fuzzy_max_edits": 0, "list": "permits-2026Q4"},
            {"candidates": int(dec == "open_gate"), "list_size": 1843},
            parents=("anpr-ocr",),
            dur_ms=4,
        ),
        Stage(
            "gate-relay",
            "sink",
            "1.2.0",
            {"pulse_ms": 800 if cam == LPR_CAMS[1] else 500},
            {"relay_pulses": int(dec == "open_gate"), "intercom_calls": int(dec != "open_gate")},
            parents=("plate-allowlist",),
            dur_ms=6,
        ),
    ]
    return w.output(oid, LPR_TENANT, LPR_SITE, cam, t, dec, lab, mean, LPR_OCR_MODEL, stages, feats)


def case_lpr_model_error() -> Built:
    t0 = at("2026-11-26 21:42:10")  # 13:42 local, full daylight
    w = lpr_world("cp401", 401, t0, None)
    oid = "cp401-ev-incident"
    lpr_event(
        w,
        oid,
        LPR_CAMS[0],
        t0,
        0.65,
        plate_found=True,
        min_char=0.78,
        mean_char=0.93,
        decision="deny",
        label="visitor",
    )
    rev = "gateops.mlee"
    w.track_record(rev, 180, 0.94, w.start - dt.timedelta(days=60), t0 - dt.timedelta(hours=3))
    w.track_record("gateops.dnguyen", 22, 0.86, w.start, t0)
    ev = w.evaluation(
        "cp401-review-7781",
        oid,
        "human",
        rev,
        "wrong_class",
        "Permit holder 7BKR218 denied: OCR read the last 8 as B (7BKR21B). "
        "Plate is clean and well lit in the snapshot.",
        t0 + dt.timedelta(hours=2),
    )
    return Built(
        w,
        ev,
        "model_error",
        "anpr-ocr",
        [["anpr-ocr", "plate-allowlist", "gate-relay"], ["anpr-ocr"]],
        "medium",
    )


def case_lpr_config_drift() -> Built:
    t0 = at("2026-11-29 02:15:40")  # 18:15 local, dusk, IR mode
    w = lpr_world("cp409", 409, t0, "renamed_key")
    oid = "cp409-ev-incident"
    lpr_event(
        w,
        oid,
        LPR_CAMS[1],
        t0,
        0.30,
        plate_found=True,
        min_char=0.37,
        mean_char=0.81,
        decision="open_gate",
        label="permit_holder",
    )
    rev = "gateops.dnguyen"
    w.track_record(rev, 64, 0.92, w.start - dt.timedelta(days=40), t0 - dt.timedelta(hours=5))
    w.track_record("gateops.mlee", 150, 0.94, w.start - dt.timedelta(days=30), t0)
    ev = w.evaluation(
        "cp409-review-8120",
        oid,
        "human",
        rev,
        "false_positive",
        "Barrier opened for 1BKR718 (not a permit). It was read as 7BKR718 with a "
        "very unsure first character; these used to go to the intercom.",
        t0 + dt.timedelta(hours=14),
    )
    return Built(
        w,
        ev,
        "config_drift",
        "anpr-ocr",
        [["anpr-ocr", "plate-allowlist", "gate-relay"], ["anpr-ocr"]],
        "hard",
    )


# ---- retail shelf gaps ----------------------------------------------------------------

SHELF_TENANT, SHELF_SITE = "freshmart", "fm-store-0412"
SHELF_CAMS = ("fm412-aisle07-cam", "fm412-aisle09-cam")
GAPSEG = ("freshmart-gapseg", "1.9.3")


def shelf_world(prefix: str, seed: int, t0: dt.datetime, fault: str | None) -> World:
    """Indoor shelf cameras, no tracker: rectify -> segmenter -> threshold -> task sink.

    ``fault='holiday_reset'``: aisle 9 was reset to holiday gift packaging (foil and
    mirror-finish boxes) 40 h before t0; the planogram revision is consumed fine by the
    rectifier, but the segmenter now sees highly specular shelves.
    """
    w = World(prefix, seed, t0)
    reset_at = t0 - dt.timedelta(hours=40)
    for cam in SHELF_CAMS:
        w.device(
            cam,
            SHELF_TENANT,
            SHELF_SITE,
            "camera",
            "Axis M3086 fixed dome",
            "11.9.62",
            "2026-02-11",
            "2026-10-04",
            2.0,
            1440.0,
        )

        def cam_health(t: dt.datetime, rng: random.Random) -> dict[str, float]:
            return {  # store lights are on 24/7: no day/night cycle
                "exposure": 8.2 + rng.gauss(0, 0.15),
                "focus_score": 0.77 + rng.gauss(0, 0.01),
                "fps": 2.0,
                "dropped_frames": 0 if rng.random() > 0.02 else 1,
                "resolution_h": 1440,
                "bitrate_kbps": 640 + rng.gauss(0, 25),
            }

        w.health(cam, 600, cam_health)
    w.config(
        "threshold.shelf_gap",
        "global",
        "*",
        0.5,
        "2026-01-05 00:00:00",
        author="fm-ml-platform",
        note="fleet default",
        comp="gap-threshold",
    )
    w.config(
        "threshold.shelf_gap",
        "tenant",
        SHELF_TENANT,
        0.55,
        "2026-08-21 10:00:00",
        author="fm-ml-platform",
        note="gapseg 1.9.x operating point",
        comp="gap-threshold",
    )
    w.config(
        "planogram.revision",
        "site",
        SHELF_SITE,
        "P-0412-2026-09",
        "2026-09-12 04:00:00",
        ts(reset_at) if fault == "holiday_reset" else None,
        author="fm-merch-sync",
        note="autumn reset",
        comp="shelf-rectify",
    )
    if fault == "holiday_reset":
        w.config(
            "planogram.revision",
            "site",
            SHELF_SITE,
            "P-0412-2026-HOL",
            ts(reset_at),
            author="fm-merch-sync",
            note="holiday reset aisles 9-11",
            comp="shelf-rectify",
        )
    w.config(
        "tasks.dedupe_minutes",
        "device",
        SHELF_CAMS[1],
        45,
        "2026-05-01 00:00:00",
        author="fm-store-0412-mgr",
        note="aisle 9 restocks slowly",
        comp="restock-task-sink",
    )
    background_configs(w, SHELF_TENANT, SHELF_SITE, SHELF_CAMS[0], ts(t0))
    w.model(
        *GAPSEG,
        "gap-seg",
        "2026-08-20 03:00:00",
        0.55,
        {"gap_iou": 0.81, "gap_recall": 0.93, "gap_precision": 0.9},
        "trained on 2025-2026 planograms, matte and gloss packaging",
    )
    normal = {
        "shelf_brightness": lambda g: g.gauss(0.62, 0.04),
        "specular_ratio": lambda g: abs(g.gauss(0.05, 0.02)),
        "label_text_density": lambda g: g.gauss(0.33, 0.06),
    }
    edges = {
        "shelf_brightness": [0.5, 0.56, 0.62, 0.68, 0.74],
        "specular_ratio": [0.03, 0.06, 0.09, 0.14, 0.2],
        "label_text_density": [0.2, 0.28, 0.36, 0.44],
    }
    for f, draw in normal.items():
        w.baseline(*GAPSEG, f, edges[f], draw)
    routine_logs(
        w,
        {
            "shelf-rectify": ["homography cache refreshed for 24 bays"],
            "gap-seg": ["gapseg worker ready on edge-npu0", "batch window 8 frames"],
            "restock-task-sink": ["task queue flushed to StoreOps (0 pending)"],
        },
        every_h=6,
    )
    if fault == "holiday_reset":
        w.log(
            reset_at + dt.timedelta(minutes=4),
            "shelf-rectify",
            "INFO",
            "planogram P-0412-2026-HOL loaded: 24 bays, 3 bays re-measured",
        )
    for i, t in enumerate(every(w, 20, 4)):
        cam = SHELF_CAMS[i % 2]
        shiny = fault == "holiday_reset" and cam == SHELF_CAMS[1] and t >= reset_at
        plan = "P-0412-2026-HOL" if fault == "holiday_reset" and t >= reset_at else "P-0412-2026-09"
        shelf_capture(w, f"{prefix}-bay{i:04d}", cam, t, plan, shiny=shiny)
    return w


def shelf_capture(
    w: World,
    oid: str,
    cam: str,
    t: dt.datetime,
    planogram: str,
    *,
    shiny: bool = False,
    score: float | None = None,
    feats: dict[str, float] | None = None,
) -> None:
    g = w.rng
    gap_true = g.random() < 0.18
    sc = (
        score
        if score is not None
        else (g.uniform(0.62, 0.97) if gap_true else g.uniform(0.02, 0.4))
    )
    if shiny and score is None and g.random() < 0.35:
        sc = g.uniform(0.58, 0.86)  # foil reads as empty shelf
    f = feats or {
        "shelf_brightness": g.gauss(0.62, 0.04) + (0.12 if shiny else 0),
        "specular_ratio": abs(g.gauss(0.05, 0.02)) + (g.uniform(0.22, 0.35) if shiny else 0),
        "label_text_density": g.gauss(0.33, 0.06) - (0.1 if shiny else 0),
    }
    task = sc >= 0.55
    stages = [
        Stage(cam, "capture", "11.9.62", {"snapshot": "full"}, {"frames": 1}, dur_ms=60),
        Stage(
            "shelf-rectify",
            "transform",
            "0.14.1",
            {"planogram": planogram, "bays": 24},
            {
                "reproj_err_px": r(abs(g.gauss(1.1, 0.2)), 2),
                "bays_rectified": 24,
                "bays_skipped": 0,
            },
            parents=(cam,),
            dur_ms=35,
        ),
        Stage(
            "gap-seg",
            "model",
            GAPSEG[1],
            {"input_px": 1024, "tiles": 6},
            {
                "gaps_found": int(task),
                "max_gap_score": r(sc),
                "latency_ms": r(g.gauss(88, 7), 1),
                "npu_resets": 0,
            },
            parents=("shelf-rectify",),
            dur_ms=90,
        ),
        Stage(
            "gap-threshold",
            "threshold",
            "1.0.2",
            {"min_gap_score": 0.55, "min_gap_width_cm": 8},
            {"gaps_kept": int(task)},
            parents=("gap-seg",),
            dur_ms=2,
        ),
        Stage(
            "restock-task-sink",
            "sink",
            "2.3.0",
            {"dedupe_minutes": 45 if cam == SHELF_CAMS[1] else 30},
            {"tasks_created": int(task), "api_errors": noise_counter(g, 0.01)},
            parents=("gap-threshold",),
            dur_ms=30,
        ),
    ]
    w.output(
        oid,
        SHELF_TENANT,
        SHELF_SITE,
        cam,
        t,
        "restock_task" if task else "no_task",
        "shelf_gap" if task else None,
        sc,
        GAPSEG,
        stages,
        f,
    )


def case_shelf_model_error() -> Built:
    t0 = at("2026-11-24 15:20:00")
    w = shelf_world("fm402", 402, t0, None)
    oid = "fm402-bay-incident"
    shelf_capture(
        w,
        oid,
        SHELF_CAMS[0],
        t0,
        "P-0412-2026-09",
        score=0.21,
        feats={"shelf_brightness": 0.61, "specular_ratio": 0.04, "label_text_density": 0.35},
    )
    judge = "planogram-auditor@1.4"
    hist = [row["output_id"] for row in w.rows["outputs"][:60]]
    w.track_record(
        judge,
        310,
        0.93,
        w.start - dt.timedelta(days=25),
        t0 - dt.timedelta(hours=1),
        kind="automated",
    )
    w.track_record("fm-merch-jsoto", 12, 0.83, w.start, t0, outputs=hist[:12])
    ev = w.evaluation(
        "fm402-audit-55190",
        oid,
        "automated",
        judge,
        "false_negative",
        "bay 3 top shelf: two empty facings (cereal 750g), no restock task",
        t0 + dt.timedelta(minutes=35),
    )
    return Built(
        w,
        ev,
        "model_error",
        "gap-seg",
        [["gap-seg", "gap-threshold", "restock-task-sink"], ["gap-seg"]],
        "easy",
    )


def case_shelf_distribution_shift() -> Built:
    t0 = at("2026-11-28 19:05:00")
    w = shelf_world("fm410", 410, t0, "holiday_reset")
    oid = "fm410-bay-incident"
    shelf_capture(
        w,
        oid,
        SHELF_CAMS[1],
        t0,
        "P-0412-2026-HOL",
        shiny=True,
        score=0.81,
        feats={"shelf_brightness": 0.77, "specular_ratio": 0.34, "label_text_density": 0.19},
    )
    rev = "fm-merch-jsoto"
    w.track_record(rev, 58, 0.9, w.start - dt.timedelta(days=50), t0 - dt.timedelta(hours=6))
    w.track_record(
        "planogram-auditor@1.4", 240, 0.93, w.start - dt.timedelta(days=20), t0, kind="automated"
    )
    ev = w.evaluation(
        "fm410-review-2231",
        oid,
        "human",
        rev,
        "false_positive",
        "Restock task for bay 5 but the shelf is full: silver foil gift boxes "
        "from the holiday reset. Third one like this since the reset.",
        t0 + dt.timedelta(hours=3),
    )
    return Built(
        w,
        ev,
        "distribution_shift",
        "gap-seg",
        [["gap-seg", "gap-threshold", "restock-task-sink"], ["gap-seg"]],
        "medium",
    )


# ---- substation thermal perimeter -----------------------------------------------------

GL_TENANT, GL_SITE = "gridline", "gl-sub-ridgeway"
GL_THERMAL, GL_PTZ = "ridgeway-n-fence-thermal", "ridgeway-gate-ptz"
GL_MODEL = "gridline-thermal-person"


def thermal_world(prefix: str, seed: int, t0: dt.datetime, release: str | None) -> World:
    """Thermal fence camera (2 min health) plus a visible gate PTZ (1 min health).

    ``release``: when set, detector 5.1.0 (an int8 edge build) went live at that time.
    """
    w = World(prefix, seed, t0)
    rel = at(release) if release else None
    w.device(
        GL_THERMAL,
        GL_TENANT,
        GL_SITE,
        "thermal_camera",
        "FLIR FH-384 R",
        "2.4.1",
        "2025-03-03",
        "2026-08-14",
        9.0,
        288.0,
    )
    w.device(
        GL_PTZ,
        GL_TENANT,
        GL_SITE,
        "camera",
        "Bosch Autodome 7100i",
        "8.71.0023",
        "2025-03-03",
        "2026-08-14",
        30.0,
        1080.0,
    )

    def thermal_health(t: dt.datetime, rng: random.Random) -> dict[str, float]:
        day = daylight(t, -7)
        return {
            "fps": 9.0,
            "dropped_frames": 0 if rng.random() > 0.03 else 1,
            "focus_score": 0.72 + rng.gauss(0, 0.012),
            "resolution_h": 288,
            "fpa_temp_c": 18 + 14 * day + rng.gauss(0, 0.4),
            "scene_temp_c": 2 + 15 * day + rng.gauss(0, 0.6),
            "nuc_events": 1 if rng.random() < 0.03 else 0,
        }

    def ptz_health(t: dt.datetime, rng: random.Random) -> dict[str, float]:
        day = daylight(t, -7)
        return {
            "fps": 30.0 if rng.random() > 0.005 else 29.0,
            "exposure": 1.2 + (1 - day) * 30 + rng.gauss(0, 0.5),
            "bitrate_kbps": 4200 + (1 - day) * 1500 + rng.gauss(0, 120),
        }

    w.health(GL_THERMAL, 120, thermal_health)
    w.health(GL_PTZ, 180, ptz_health)
    w.config(
        "threshold.person",
        "global",
        "*",
        0.5,
        "2025-01-01 00:00:00",
        author="gl-platform",
        note="default",
        comp="intruder-det-thr",
    )
    w.config(
        "threshold.person",
        "site",
        GL_SITE,
        0.45,
        "2026-06-10 12:00:00",
        author="gl-secops",
        note="perimeter favours recall",
        comp="intruder-det-thr",
    )
    w.config(
        "zone.fence_inner.min_track_s",
        "tenant",
        GL_TENANT,
        2.0,
        "2025-04-01 00:00:00",
        author="gl-secops",
        note="",
        comp="fence-zone-rule",
    )
    w.config(
        "soc.escalation_contacts",
        "tenant",
        GL_TENANT,
        ["soc-night", "duty-engineer"],
        ts(t0 - dt.timedelta(hours=20)),
        author="gl-secops",
        note="winter rota",
    )
    background_configs(w, GL_TENANT, GL_SITE, GL_THERMAL, ts(t0))
    w.model(
        GL_MODEL,
        "5.0.2",
        "intruder-det",
        "2026-10-01 09:00:00",
        0.45,
        {"recall": 0.94, "recall_small": 0.86, "precision": 0.91},
        "fp16, trained on 4 winters of perimeter footage",
    )
    if rel:
        w.model(
            GL_MODEL,
            "5.1.0",
            "intruder-det",
            ts(rel),
            0.45,
            {"recall": 0.9, "recall_small": 0.71, "precision": 0.93},
            "int8 quantised edge build, 2.3x faster; small-target recall lower",
        )
    for version in ["5.0.2"] + (["5.1.0"] if rel else []):
        w.baseline(
            GL_MODEL, version, "target_height_px", [16, 24, 32, 44, 60], lambda g: g.gauss(34, 10)
        )
        w.baseline(
            GL_MODEL,
            version,
            "thermal_contrast_c",
            [2, 4, 6, 9, 12],
            lambda g: abs(g.gauss(8 - 4 * (g.random() < 0.45), 2.2)),
        )
    routine_logs(
        w,
        {
            "radiometric-agc": ["AGC plateau recomputed (histogram 14-bit)"],
            "intruder-det": ["jetson-orin edge node ridgeway-e1 temperature 51C"],
            "soc-alert-sink": ["SOC webhook keepalive 200"],
        },
        every_h=8,
    )
    if rel:
        w.log(
            rel,
            "intruder-det",
            "INFO",
            f"rollout {GL_MODEL} 5.1.0 (int8) to edge node ridgeway-e1, canary skipped",
        )
    for i, t in enumerate(every(w, 25, 8)):
        version = "5.1.0" if rel and t >= rel else "5.0.2"
        thermal_event(w, f"{prefix}-trk{i:04d}", t, version)
    return w


def thermal_event(
    w: World,
    oid: str,
    t: dt.datetime,
    version: str,
    *,
    person: bool | None = None,
    score: float | None = None,
    height: float | None = None,
    contrast: float | None = None,
) -> None:
    g = w.rng
    day = daylight(t, -7)
    is_person = person if person is not None else g.random() < 0.4
    h = height if height is not None else g.gauss(34, 10)
    c = contrast if contrast is not None else abs(g.gauss(8 - 4 * day, 2.2))
    if score is None:
        base = g.uniform(0.6, 0.95) if is_person else g.uniform(0.05, 0.38)
        if version == "5.1.0" and is_person and h < 32:
            base -= g.uniform(0.15, 0.35)
        score = max(0.02, base)
    alert = score >= 0.45
    stages = [
        Stage(
            GL_THERMAL,
            "capture",
            "2.4.1",
            {"palette": "white_hot", "radiometric": True},
            {"frames": 27},
            dur_ms=3000,
        ),
        Stage(
            "radiometric-agc",
            "transform",
            "1.6.0",
            {"agc": "plateau", "span_c": 20},
            {"clipped_px_pct": r(abs(g.gauss(0.4, 0.2)), 2), "frames_out": 27},
            parents=(GL_THERMAL,),
            dur_ms=30,
        ),
        Stage(
            "intruder-det",
            "model",
            version,
            {"input": "384x288", "classes": ["person", "animal"]},
            {
                "max_person_conf": r(score),
                "detections": int(score > 0.3),
                "latency_ms": r(g.gauss(41 if version == "5.0.2" else 18, 3), 1),
                "trt_rebuilds": 0,
            },
            parents=("radiometric-agc",),
            dur_ms=50,
        ),
        Stage(
            "intruder-det-thr",
            "threshold",
            "1.1.0",
            {"threshold.person": 0.45},
            {"kept": int(alert)},
            parents=("intruder-det",),
            dur_ms=1,
        ),
        Stage(
            "perimeter-track",
            "tracker",
            "0.8.3",
            {"max_age_frames": 18},
            {
                "tracks": int(alert),
                "track_len_s": r(g.uniform(3, 9), 1) if alert else 0,
                "id_switches": 0,
            },
            parents=("intruder-det-thr",),
            dur_ms=5,
        ),
        Stage(
            "fence-zone-rule",
            "policy",
            "0.5.0",
            {"zone": "fence_inner", "min_track_s": 2.0},
            {"in_zone": int(alert)},
            parents=("perimeter-track",),
            dur_ms=2,
        ),
        Stage(
            "soc-alert-sink",
            "sink",
            "3.0.1",
            {"webhook": "soc-primary"},
            {"alerts_sent": int(alert), "http_retries": noise_counter(g)},
            parents=("fence-zone-rule",),
            dur_ms=40,
        ),
    ]
    w.output(
        oid,
        GL_TENANT,
        GL_SITE,
        GL_THERMAL,
        t,
        "soc_alert" if alert else "no_alert",
        "person" if alert else None,
        score,
        (GL_MODEL, version),
        stages,
        {"target_height_px": h, "thermal_contrast_c": c},
    )


def case_thermal_model_error() -> Built:
    t0 = at("2026-11-25 10:10:30")  # 03:10 local
    w = thermal_world("gl403", 403, t0, None)
    oid = "gl403-trk-incident"
    thermal_event(w, oid, t0, "5.0.2", person=True, score=0.34, height=41, contrast=9.5)
    # red herring after capture: a NUC shutter cycle and a focus dip 20 minutes later
    for k, (m, v) in enumerate([("nuc_events", 3), ("focus_score", 0.55), ("dropped_frames", 6)]):
        w.add(
            "device_health",
            device_id=GL_THERMAL,
            ts=ts(t0 + dt.timedelta(minutes=21, seconds=k)),
            metric=m,
            value=v,
        )
    w.log(t0 + dt.timedelta(minutes=21), GL_THERMAL, "WARN", "FFC shutter stuck 4s, recovered")
    rev = "soc-analyst.pkaur"
    w.track_record(rev, 45, 0.91, w.start - dt.timedelta(days=90), t0 - dt.timedelta(hours=9))
    w.track_record("soc-analyst.jbrandt", 7, 0.71, w.start, t0)
    ev = w.evaluation(
        "gl403-soc-3317",
        oid,
        "human",
        rev,
        "false_negative",
        "Person walking upright along inner fence, bright silhouette, ~40 px tall, "
        "in view for 9 s. No alert.",
        t0 + dt.timedelta(hours=5),
    )
    return Built(
        w,
        ev,
        "model_error",
        "intruder-det",
        [
            [
                "intruder-det",
                "intruder-det-thr",
                "perimeter-track",
                "fence-zone-rule",
                "soc-alert-sink",
            ],
            ["intruder-det"],
        ],
        "hard",
        extra_tags=("red_herring",),
    )


def case_thermal_model_regression() -> Built:
    t0 = at("2026-11-30 12:40:00")  # 05:40 local
    release = "2026-11-27 17:00:00"
    w = thermal_world("gl414", 414, t0, release)
    oid = "gl414-trk-incident"
    thermal_event(w, oid, t0, "5.1.0", person=True, score=0.29, height=24, contrast=7.8)
    after = [
        row["output_id"]
        for row in w.rows["outputs"]
        if at(row["captured_at"]) > at(release) and row["decision"] == "no_alert"
    ][:9]
    for j, o in enumerate(after[:5]):
        w.evaluation(
            f"gl414-soc-old-{j}",
            o,
            "human",
            "soc-analyst.jbrandt",
            "false_negative",
            "person at far fence not alerted",
            at(release) + dt.timedelta(hours=8 + 9 * j),
        )
    rev = "soc-analyst.pkaur"
    w.track_record(rev, 51, 0.92, w.start - dt.timedelta(days=90), t0 - dt.timedelta(hours=9))
    w.track_record("soc-analyst.jbrandt", 30, 0.87, w.start - dt.timedelta(days=30), t0)
    ev = w.evaluation(
        "gl414-soc-3502",
        oid,
        "human",
        rev,
        "false_negative",
        "Small figure at the far fence (~25 px), clearly warm. Fourth far-fence miss "
        "this week; we never missed these before.",
        t0 + dt.timedelta(hours=3),
    )
    return Built(
        w,
        ev,
        "model_regression",
        "intruder-det",
        [
            [
                "intruder-det",
                "intruder-det-thr",
                "perimeter-track",
                "fence-zone-rule",
                "soc-alert-sink",
            ],
            ["intruder-det"],
        ],
        "medium",
    )


# ---- warehouse dock safety --------------------------------------------------------------

NB_TENANT, NB_SITE = "northbay", "nb-dc-fresno"
NB_CAM, NB_TAG = "nbf-dock3-ceiling-cam", "nbf-fl22-uwb-tag"
NB_POSE = ("northbay-pose", "2.2.0")


def warehouse_world(
    prefix: str, seed: int, t0: dt.datetime, fault: str | None, tag_cadence_s: int = 60
) -> World:
    """Ceiling camera -> frame sampler -> pose -> zone tracker -> zone rules, fused with a
    forklift-mounted UWB proximity tag -> stop alarm -> PLC horn.

    ``fault='tag_battery'``: the tag's battery runs down over the last day; heartbeats
    become sparse and weak, the fusion gets no fresh ranges.
    ``fault='fps_cut'``: the site cut the sampler to 5 fps 3 days ago (GPU budget); the
    tracker still needs 12 frames of dwell, sized for 15 fps.
    """
    w = World(prefix, seed, t0)
    cut_at = t0 - dt.timedelta(days=2, hours=20)
    w.device(
        NB_CAM,
        NB_TENANT,
        NB_SITE,
        "camera",
        "Hanwha XNV-8082R",
        "2.21.02",
        "2025-11-03",
        "2026-07-22",
        15.0,
        1080.0,
    )
    w.device(
        NB_TAG,
        NB_TENANT,
        NB_SITE,
        "uwb_proximity_tag",
        "Sewio Tag Leonardo Vehicle",
        "fw-1.7.3",
        "2025-11-03",
        "2026-05-09",
        None,
        None,
    )

    def cam_health(t: dt.datetime, rng: random.Random) -> dict[str, float]:
        return {  # indoor high-bay lighting, no cycle
            "fps": 15.0 if rng.random() > 0.01 else 14.0,
            "exposure": 10.0 + rng.gauss(0, 0.2),
            "focus_score": 0.8 + rng.gauss(0, 0.01),
            "dropped_frames": 0 if rng.random() > 0.03 else 1,
            "bitrate_kbps": 2900 + rng.gauss(0, 70),
        }

    drain = t0 - dt.timedelta(hours=26)

    def tag_health(t: dt.datetime, rng: random.Random) -> dict[str, float] | None:
        hours_in = (t - w.start).total_seconds() / 3600
        battery = 86 - hours_in * 0.12
        gap, rssi = tag_cadence_s + rng.gauss(0, 2), -61 + rng.gauss(0, 3)
        if fault == "tag_battery" and t > drain:
            frac = min((t - drain).total_seconds() / (26 * 3600), 1.2)
            battery = max(2.0, battery - 76 * frac)
            if battery < 15 and rng.random() < 0.6:
                return None  # missed heartbeat
            gap = tag_cadence_s * (1 + 6 * frac) + rng.gauss(0, 10)
            rssi = -61 - 34 * frac + rng.gauss(0, 3)
        return {
            "battery_pct": battery,
            "heartbeat_gap_s": abs(gap),
            "rssi_dbm": rssi,
            "range_updates_per_min": 0 if battery < 15 else 60 + rng.gauss(0, 2),
        }

    w.health(NB_CAM, 300, cam_health)
    w.health(NB_TAG, tag_cadence_s, tag_health)
    w.config(
        "pipeline.sample_fps",
        "tenant",
        NB_TENANT,
        15,
        "2025-11-03 08:00:00",
        author="nb-safety-eng",
        note="full rate for safety zones",
        comp="frame-sampler",
    )
    if fault == "fps_cut":
        w.config(
            "pipeline.sample_fps",
            "site",
            NB_SITE,
            5,
            ts(cut_at),
            author="dc-it-ops",
            note="cut GPU load on dock edge box (ticket NB-4411)",
            comp="frame-sampler",
        )
    w.config(
        "zone.min_dwell_frames",
        "tenant",
        NB_TENANT,
        12,
        "2025-11-03 08:00:00",
        author="nb-safety-eng",
        note="0.8 s in lane before alarm, suppress pass-by flicker",
        comp="zone-tracker",
    )
    w.config(
        "alarm.stop_distance_m",
        "site",
        NB_SITE,
        3.0,
        "2025-11-03 08:00:00",
        author="nb-safety-eng",
        note="",
        comp="stop-alarm",
    )
    w.config(
        "alarm.horn_ms",
        "device",
        NB_CAM,
        1500,
        "2026-02-10 08:00:00",
        author="nb-safety-eng",
        note="dock 3 is loud",
        comp="plc-horn",
    )
    background_configs(w, NB_TENANT, NB_SITE, NB_CAM, ts(t0))
    w.model(
        *NB_POSE,
        "pose-net",
        "2026-07-15 05:00:00",
        0.5,
        {"oks_ap": 0.74, "person_recall": 0.97},
        "",
    )
    w.baseline(*NB_POSE, "person_height_px", [80, 120, 160, 200], lambda g: g.gauss(150, 30))
    w.baseline(*NB_POSE, "scene_brightness", [0.4, 0.5, 0.6, 0.7], lambda g: g.gauss(0.55, 0.04))
    routine_logs(
        w,
        {
            "uwb-fusion": ["anchor sync ok (6 anchors, dock 1-4)"],
            "pose-net": ["pose worker ready (TensorRT fp16)"],
            "plc-horn": ["Modbus link to PLC-D3 ok"],
        },
        every_h=5,
    )
    if fault == "tag_battery":
        for k in range(4):
            w.log(
                t0 - dt.timedelta(hours=6 - k * 1.5),
                "uwb-fusion",
                "WARN",
                f"tag {NB_TAG} heartbeat late ({200 + k * 60}s)",
                tag=NB_TAG,
            )
    if fault == "fps_cut":
        w.log(
            cut_at + dt.timedelta(minutes=2),
            "frame-sampler",
            "INFO",
            "sample rate now 5 fps (was 15) per site config",
        )
    for i, t in enumerate(every(w, 30, 10)):
        fps = 5 if fault == "fps_cut" and t >= cut_at else 15
        low = fault == "tag_battery" and t > t0 - dt.timedelta(hours=5)
        dock_event(w, f"{prefix}-zn{i:04d}", t, fps, tag_ok=not low)
    return w


def dock_event(
    w: World,
    oid: str,
    t: dt.datetime,
    fps: int,
    *,
    tag_ok: bool = True,
    crossing_s: float | None = None,
    distance: float | None = None,
    persons: int = 1,
    person_conf: float | None = None,
) -> None:
    g = w.rng
    cross = crossing_s if crossing_s is not None else g.uniform(1.5, 6.0)
    frames = int(cross * fps)
    in_zone = frames >= 12
    dist = distance if distance is not None else g.uniform(1.0, 9.0)
    samples = int(cross * 10) if tag_ok else 0
    near = tag_ok and dist < 3.0
    risk = (0.9 if near else 0.25) if in_zone else 0.05
    if not tag_ok and in_zone:
        risk = 0.3
    alarm = risk >= 0.6
    conf = person_conf if person_conf is not None else g.uniform(0.8, 0.97)
    stages = [
        Stage(
            NB_CAM,
            "capture",
            "2.21.02",
            {"stream": "main"},
            {"frames": int(cross * 15)},
            dur_ms=cross * 1000,
        ),
        Stage(
            "frame-sampler",
            "transform",
            "1.3.0",
            {"sample_fps": fps},
            {"frames_out": frames, "frames_in": int(cross * 15)},
            parents=(NB_CAM,),
            dur_ms=8,
        ),
        Stage(
            "pose-net",
            "model",
            NB_POSE[1],
            {"input_px": 640},
            {
                "persons": persons,
                "mean_keypoint_conf": r(conf),
                "latency_ms": r(g.gauss(19, 2), 1),
                "cuda_errors": 0,
            },
            parents=("frame-sampler",),
            dur_ms=25,
        ),
        Stage(
            "zone-tracker",
            "tracker",
            "0.6.2",
            {"min_dwell_frames": 12, "zone": "dock3_ped_lane"},
            {"track_frames_in_zone": frames, "dwell_qualified": int(in_zone), "id_switches": 0},
            parents=("pose-net",),
            dur_ms=4,
        ),
        Stage(
            "zone-rules",
            "policy",
            "2.0.0",
            {"zone": "dock3_ped_lane", "hours": "24/7"},
            {"in_zone": int(in_zone)},
            parents=("zone-tracker",),
            dur_ms=2,
        ),
        Stage(
            NB_TAG,
            "sensor",
            "fw-1.7.3",
            {"anchors": 6},
            {"ranges": samples, "min_range_m": r(dist, 2) if tag_ok else -1},
            offset_ms=0,
            dur_ms=cross * 1000,
        ),
        Stage(
            "uwb-fusion",
            "fusion",
            "1.9.1",
            {"max_range_age_s": 2.0},
            {"prox_samples": samples, "fused_risk": r(risk), "stale_ranges": 0 if tag_ok else 1},
            parents=("zone-rules", NB_TAG),
            dur_ms=5,
            logs=[]
            if tag_ok
            else [
                (
                    "WARN",
                    f"no fresh range from {NB_TAG}; proximity unknown, "
                    "treating forklift as out of range",
                    {"tag": NB_TAG},
                )
            ],
        ),
        Stage(
            "stop-alarm",
            "threshold",
            "1.0.4",
            {"risk_min": 0.6, "stop_distance_m": 3.0},
            {"fired": int(alarm)},
            parents=("uwb-fusion",),
            dur_ms=1,
        ),
        Stage(
            "plc-horn",
            "sink",
            "1.1.0",
            {"horn_ms": 1500},
            {"horn_pulses": int(alarm), "modbus_retries": noise_counter(g, 0.01)},
            parents=("stop-alarm",),
            dur_ms=12,
        ),
    ]
    w.output(
        oid,
        NB_TENANT,
        NB_SITE,
        NB_CAM,
        t,
        "horn_and_slowdown" if alarm else "no_alarm",
        "person_near_forklift" if alarm else None,
        risk,
        NB_POSE,
        stages,
        {"person_height_px": g.gauss(150, 30), "scene_brightness": g.gauss(0.55, 0.04)},
    )


def case_warehouse_sensor_fault() -> Built:
    t0 = at("2026-11-27 16:32:05")
    w = warehouse_world("nb404", 404, t0, "tag_battery", tag_cadence_s=30)
    oid = "nb404-zn-incident"
    dock_event(w, oid, t0, 15, tag_ok=False, crossing_s=4.2, distance=1.4)
    rev = "nb-safety.okafor"
    w.track_record(rev, 96, 0.95, w.start - dt.timedelta(days=60), t0 - dt.timedelta(hours=4))
    ev = w.evaluation(
        "nb404-nearmiss-118",
        oid,
        "human",
        rev,
        "false_negative",
        "Picker walked the dock 3 lane while FL-22 reversed past at ~1.5 m. No horn, no slowdown.",
        t0 + dt.timedelta(hours=1),
    )
    return Built(
        w, ev, "sensor_fault", NB_TAG, [[NB_TAG, "uwb-fusion", "stop-alarm", "plc-horn"]], "hard"
    )


def case_warehouse_interaction() -> Built:
    t0 = at("2026-11-29 22:48:30")
    w = warehouse_world("nb411", 411, t0, "fps_cut", tag_cadence_s=120)
    oid = "nb411-zn-incident"
    dock_event(w, oid, t0, 5, crossing_s=1.9, distance=2.1)
    rev = "nb-safety.okafor"
    w.track_record(rev, 88, 0.95, w.start - dt.timedelta(days=60), t0 - dt.timedelta(hours=4))
    ev = w.evaluation(
        "nb411-nearmiss-131",
        oid,
        "human",
        rev,
        "false_negative",
        "Person ran across the lane in front of FL-22 (about 2 m). Camera saw him, "
        "tag range fine, no horn.",
        t0 + dt.timedelta(hours=9),
    )
    return Built(
        w,
        ev,
        "component_interaction",
        "zone-tracker",
        [
            ["frame-sampler", "zone-tracker", "zone-rules", "uwb-fusion", "stop-alarm", "plc-horn"],
            ["zone-tracker", "zone-rules", "uwb-fusion", "stop-alarm", "plc-horn"],
        ],
        "hard",
        abstain_ok=True,
    )


def case_warehouse_unreliable_reviewer() -> Built:
    t0 = at("2026-11-26 09:14:50")
    w = warehouse_world("nb412", 412, t0, None, tag_cadence_s=60)
    oid = "nb412-zn-incident"
    dock_event(w, oid, t0, 15, crossing_s=3.6, distance=1.6, person_conf=0.93)
    rev = "agency-temp-0931"
    w.track_record(rev, 5, 0.2, t0 - dt.timedelta(days=2), t0 - dt.timedelta(hours=2))
    w.track_record("nb-safety.okafor", 90, 0.95, w.start - dt.timedelta(days=60), t0)
    ev = w.evaluation(
        "nb412-review-140",
        oid,
        "human",
        rev,
        "false_positive",
        "horn for nothing, nobody there",
        t0 + dt.timedelta(seconds=40),
    )
    return Built(w, ev, "evaluation_unreliable", None, [], "medium", abstain_ok=True)


# ---- corridor traffic counting ------------------------------------------------------

MD_TENANT, MD_SITE, MD_CAM = "metro-dot", "mdot-corridor-9", "mdot-c9-5thave-eb"
MD_MODEL = ("mdot-vehicles", "7.1.0")


def traffic_world(prefix: str, seed: int, t0: dt.datetime, deploy: str | None) -> World:
    """One output per camera-hour: detector -> tracker -> stop-line counter -> hourly
    roll-up sink. ``deploy``: hourly-rollup 1.8.0 (event-time buckets with a 5 min
    watermark) went live then; the counter flushes every 10 min, so most events arrive
    after the watermark and are dropped."""
    w = World(prefix, seed, t0)
    dep = at(deploy) if deploy else None
    w.device(
        MD_CAM,
        MD_TENANT,
        MD_SITE,
        "camera",
        "Iteris Vantage Apex",
        "5.2.7",
        "2024-06-18",
        "2026-10-20",
        15.0,
        1080.0,
    )

    def cam_health(t: dt.datetime, rng: random.Random) -> dict[str, float]:
        day = daylight(t, -6)
        return {
            "exposure": 0.8 + (1 - day) * 24 + rng.gauss(0, 0.4),
            "fps": 15.0,
            "focus_score": 0.79 + rng.gauss(0, 0.012),
            "dropped_frames": 0 if rng.random() > 0.04 else rng.randint(1, 5),
            "bitrate_kbps": 3500 + (1 - day) * 1100 + rng.gauss(0, 90),
        }

    w.health(MD_CAM, 120, cam_health)
    w.config(
        "counter.line",
        "device",
        MD_CAM,
        {"x1": 210, "y1": 640, "x2": 1710, "y2": 655},
        "2024-06-20 15:00:00",
        author="mdot-its",
        note="stop bar EB",
        comp="stopline-counter",
    )
    w.config(
        "rollup.bucket",
        "tenant",
        MD_TENANT,
        "1h",
        "2024-06-01 00:00:00",
        author="mdot-its",
        note="",
        comp="hourly-rollup",
    )
    w.config(
        "tracker.max_age_frames",
        "site",
        MD_SITE,
        30,
        "2025-02-01 00:00:00",
        author="mdot-its",
        note="",
        comp="bytetrack-c9",
    )
    background_configs(w, MD_TENANT, MD_SITE, MD_CAM, ts(t0))
    w.model(
        *MD_MODEL,
        "vehicle-det",
        "2026-07-01 07:00:00",
        0.4,
        {"ap50_car": 0.95, "ap50_truck": 0.91},
        "",
    )
    w.baseline(
        *MD_MODEL,
        "scene_brightness",
        [0.15, 0.3, 0.45, 0.6],
        lambda g: (
            0.12
            + 0.5 * daylight(dt.datetime(2026, 1, 1, g.randrange(24), tzinfo=UTC), -6)
            + g.gauss(0, 0.04)
        ),
    )
    routine_logs(
        w,
        {
            "hourly-rollup": ["partition written to ts-warehouse.counts_hourly"],
            "stopline-counter": ["flush 10-min batch to rollup queue"],
        },
        every_h=4,
    )
    if dep:
        w.log(
            dep,
            "hourly-rollup",
            "INFO",
            "deployed hourly-rollup 1.8.0: bucket by event time, watermark 5m",
        )
    hour = w.start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    i = 0
    while hour < w.t0 - dt.timedelta(minutes=30):
        traffic_hour(w, f"{prefix}-h{i:04d}", hour, "1.8.0" if dep and hour >= dep else "1.7.4")
        hour += dt.timedelta(hours=1)
        i += 1
    return w


def traffic_hour(w: World, oid: str, hour: dt.datetime, rollup: str) -> None:
    g = w.rng
    local = (hour.hour - 6) % 24
    demand = 40 + 420 * math.exp(-((local - 8) ** 2) / 4) + 380 * math.exp(-((local - 17) ** 2) / 5)
    demand += 150 * daylight(hour, -6)
    crossings = max(0, int(g.gauss(demand, demand * 0.06)))
    late = 0
    if rollup == "1.8.0":
        late = int(crossings * g.uniform(0.82, 0.9))
    published = crossings - late
    day = daylight(hour, -6)
    stages = [
        Stage(MD_CAM, "capture", "5.2.7", {"stream": "h264-main"}, {"frames": 54000}, dur_ms=5),
        Stage(
            "vehicle-det",
            "model",
            MD_MODEL[1],
            {"conf_min": 0.4},
            {
                "frames_processed": 54000,
                "mean_conf": r(0.82 + 0.05 * day + g.gauss(0, 0.01)),
                "gpu_restarts": 0,
            },
            parents=(MD_CAM,),
            dur_ms=900,
        ),
        Stage(
            "bytetrack-c9",
            "tracker",
            "0.9.0",
            {"max_age_frames": 30},
            {"tracks": int(crossings * 1.3), "id_switches": int(crossings * 0.01)},
            parents=("vehicle-det",),
            dur_ms=200,
        ),
        Stage(
            "stopline-counter",
            "transform",
            "2.0.3",
            {"flush_min": 10, "direction": "EB"},
            {"crossings": crossings, "batches": 6, "double_counts_suppressed": g.randint(0, 3)},
            parents=("bytetrack-c9",),
            dur_ms=50,
        ),
        Stage(
            "hourly-rollup",
            "sink",
            rollup,
            {"bucket": "1h"}
            | (
                {"time_basis": "event", "watermark_min": 5}
                if rollup == "1.8.0"
                else {"time_basis": "arrival"}
            ),
            {
                "events_in": crossings,
                "late_events_dropped": late,
                "published_count": published,
                "rows_written": 1,
            },
            parents=("stopline-counter",),
            dur_ms=120,
        ),
    ]
    w.output(
        oid,
        MD_TENANT,
        MD_SITE,
        MD_CAM,
        hour,
        "count_published",
        "vehicles_eb",
        None,
        MD_MODEL,
        stages,
        {"scene_brightness": 0.12 + 0.5 * day + g.gauss(0, 0.04)},
    )


def case_traffic_pipeline_regression() -> Built:
    t0 = at("2026-11-27 14:00:00")  # 08:00 local hour
    w = traffic_world("md406", 406, t0, "2026-11-26 16:30:00")
    oid = "md406-h-incident"
    traffic_hour(w, oid, t0, "1.8.0")
    rev = "mdot-analyst.bchen"
    w.track_record(rev, 130, 0.9, w.start - dt.timedelta(days=120), t0 - dt.timedelta(days=1))
    published = w.rows["runs"][-1]["metrics"]["published_count"]
    ev = w.evaluation(
        "md406-qa-0419",
        oid,
        "human",
        rev,
        "false_negative",
        f"5th Ave EB 08:00-09:00 published {published} vehicles; the loop detector "
        "and last week say ~500.",
        t0 + dt.timedelta(hours=4),
    )
    return Built(
        w,
        ev,
        "data_pipeline_regression",
        "hourly-rollup",
        [["hourly-rollup"], ["stopline-counter", "hourly-rollup"]],
        "hard",
    )


# ---- solar-farm inspection drone --------------------------------------------------------

SK_TENANT, SK_SITE, SK_DRONE = "skyline-solar", "sk-mojave-array-2", "sk-m30t-unit04"
SK_MODEL = ("skyline-pvdefect", "3.3.0")


def drone_world(prefix: str, seed: int, t0: dt.datetime, fault: str | None) -> World:
    """A drone camera that only reports health (every 30 s) while flying two sorties a
    day; each output is one panel string's defect decision.

    ``fault='hard_landing'``: a hard landing the evening before t0 cracked the gimbal
    damper; every later flight has low sharpness and high gimbal vibration.
    """
    w = World(prefix, seed, t0)
    landing = t0 - dt.timedelta(hours=19)
    w.device(
        SK_DRONE,
        SK_TENANT,
        SK_SITE,
        "drone_camera",
        "DJI M30T",
        "07.01.0102",
        "2026-03-01",
        "2026-10-28",
        30.0,
        1080.0,
    )
    flights = []
    d = w.start.replace(hour=0, minute=0, second=0, microsecond=0)
    while d < w.end:
        for h in (16, 22):  # 08:00 and 14:00 local (UTC-8)
            flights.append((d + dt.timedelta(hours=h, minutes=w.rng.randint(0, 20)), 50))
        d += dt.timedelta(days=1)
    flights.append((t0 - dt.timedelta(minutes=20), 50))  # the incident's sortie

    def in_flight(t: dt.datetime) -> bool:
        return any(s <= t < s + dt.timedelta(minutes=m) for s, m in flights)

    def drone_health(t: dt.datetime, rng: random.Random) -> dict[str, float] | None:
        if not in_flight(t):
            return None
        broken = fault == "hard_landing" and t > landing
        return {
            "focus_score": (0.31 if broken else 0.78) + rng.gauss(0, 0.03),
            "exposure": 0.5 + rng.gauss(0, 0.05),
            "fps": 30.0,
            "dropped_frames": 0 if rng.random() > 0.05 else 1,
            "gimbal_vibration_rms": (2.9 if broken else 0.4) + abs(rng.gauss(0, 0.1)),
            "altitude_m": 38 + rng.gauss(0, 1.5),
            "battery_pct": 95 - rng.uniform(0, 60),
        }

    w.health(SK_DRONE, 30, drone_health)
    w.config(
        "threshold.pv_defect",
        "tenant",
        SK_TENANT,
        0.6,
        "2026-04-01 00:00:00",
        author="sk-asset-mgmt",
        note="",
        comp="defect-threshold",
    )
    w.config(
        "tiler.gsd_cm",
        "site",
        SK_SITE,
        2.5,
        "2026-03-05 00:00:00",
        author="sk-flight-ops",
        note="38 m AGL",
        comp="geo-tiler",
    )
    background_configs(w, SK_TENANT, SK_SITE, SK_DRONE, ts(t0))
    w.model(
        *SK_MODEL,
        "panel-defect-net",
        "2026-08-12 00:00:00",
        0.6,
        {"hotspot_recall": 0.95, "crack_recall": 0.9, "precision": 0.92},
        "RGB + radiometric",
    )
    w.baseline(
        *SK_MODEL, "tile_sharpness", [0.4, 0.55, 0.65, 0.75, 0.85], lambda g: g.gauss(0.74, 0.06)
    )
    w.baseline(*SK_MODEL, "irradiance_wm2", [300, 500, 700, 900], lambda g: g.gauss(720, 120))
    routine_logs(
        w,
        {
            "geo-tiler": ["orthomosaic job complete, 1 flight"],
            "cmms-workorder-sink": ["Maximo sync ok"],
        },
        every_h=10,
    )
    if fault == "hard_landing":
        w.log(landing, SK_DRONE, "WARN", "flight controller: hard landing 3.1 g at pad B")
    i = 0
    for start, minutes in flights[:-1]:
        if start + dt.timedelta(minutes=minutes) > w.end:
            continue
        for k in range(6):
            t = start + dt.timedelta(minutes=5 + k * 7)
            drone_tile(w, f"{prefix}-str{i:04d}", t, blurry=fault == "hard_landing" and t > landing)
            i += 1
    return w


def drone_tile(
    w: World,
    oid: str,
    t: dt.datetime,
    *,
    blurry: bool = False,
    score: float | None = None,
    label: str | None = None,
) -> None:
    g = w.rng
    defect = g.random() < 0.15
    sc = (
        score if score is not None else (g.uniform(0.65, 0.97) if defect else g.uniform(0.02, 0.35))
    )
    if blurry and score is None and defect:
        sc = g.uniform(0.1, 0.4)
    sharp = (0.3 if blurry else 0.74) + g.gauss(0, 0.04)
    hit = sc >= 0.6
    stages = [
        Stage(
            SK_DRONE,
            "capture",
            "07.01.0102",
            {"mode": "wide+ir", "agl_m": 38},
            {"images": 24},
            dur_ms=400,
        ),
        Stage(
            "geo-tiler",
            "transform",
            "4.0.2",
            {"gsd_cm": 2.5},
            {"tiles": 24, "tiles_unmatched": 0, "gsd_cm_actual": r(2.5 + g.gauss(0, 0.05), 2)},
            parents=(SK_DRONE,),
            dur_ms=1500,
        ),
        Stage(
            "panel-defect-net",
            "model",
            SK_MODEL[1],
            {"classes": ["hotspot", "crack", "soiling"]},
            {"max_defect_score": r(sc), "defects": int(hit), "latency_ms": r(g.gauss(140, 10), 1)},
            parents=("geo-tiler",),
            dur_ms=150,
        ),
        Stage(
            "defect-threshold",
            "threshold",
            "1.0.0",
            {"threshold.pv_defect": 0.6},
            {"kept": int(hit)},
            parents=("panel-defect-net",),
            dur_ms=1,
        ),
        Stage(
            "cmms-workorder-sink",
            "sink",
            "2.2.1",
            {"system": "maximo"},
            {"work_orders": int(hit), "api_retries": noise_counter(g)},
            parents=("defect-threshold",),
            dur_ms=300,
        ),
    ]
    lab = label or (g.choice(["hotspot", "crack", "soiling"]) if hit else None)
    w.output(
        oid,
        SK_TENANT,
        SK_SITE,
        SK_DRONE,
        t,
        "work_order" if hit else "no_defect",
        lab,
        sc,
        SK_MODEL,
        stages,
        {"tile_sharpness": sharp, "irradiance_wm2": g.gauss(720, 120)},
    )


def case_drone_sensor_fault() -> Built:
    t0 = at("2026-11-25 16:48:00")
    w = drone_world("sk405", 405, t0, "hard_landing")
    oid = "sk405-str-incident"
    drone_tile(w, oid, t0, blurry=True, score=0.22)
    rev = "sk-thermographer.alvarez"
    w.track_record(rev, 70, 0.93, w.start - dt.timedelta(days=80), t0 - dt.timedelta(hours=8))
    ev = w.evaluation(
        "sk405-qa-901",
        oid,
        "human",
        rev,
        "false_negative",
        "Cracked cell on string B12-07 found on the manual walk; the sortie "
        "imagery for that string looks smeared.",
        t0 + dt.timedelta(hours=6),
    )
    return Built(
        w,
        ev,
        "sensor_fault",
        SK_DRONE,
        [[SK_DRONE, "geo-tiler", "panel-defect-net", "defect-threshold", "cmms-workorder-sink"]],
        "medium",
    )


def case_drone_judge_unreliable() -> Built:
    t0 = at("2026-11-28 22:31:00")
    w = drone_world("sk413", 413, t0, None)
    oid = "sk413-str-incident"
    drone_tile(w, oid, t0, score=0.08)
    hist = [row["output_id"] for row in w.rows["outputs"]]
    judge = "vlm-auditor@2.3"
    w.track_record(
        judge,
        140,
        0.0,
        t0 - dt.timedelta(days=3.2),
        t0 - dt.timedelta(hours=2),
        kind="automated",
        outputs=hist,
        claims=[("false_positive", 0.7, 0.93), ("false_negative", 0.3, 0.17)],
    )
    w.track_record(
        "vlm-auditor@2.2",
        60,
        0.0,
        t0 - dt.timedelta(days=3.5),
        t0 - dt.timedelta(days=3.2),
        kind="automated",
        outputs=hist,
        claims=[("false_positive", 0.7, 0.92), ("false_negative", 0.3, 0.9)],
    )
    ev = w.evaluation(
        "sk413-auto-77812",
        oid,
        "automated",
        judge,
        "false_negative",
        "possible hotspot cluster row 7, recommend work order",
        t0 + dt.timedelta(minutes=50),
    )
    return Built(w, ev, "evaluation_unreliable", None, [], "hard")


# ---- doorbell with cloud snapshots -------------------------------------------------------

HN_TENANT, HN_SITE, HN_BELL = "homenest", "hn-home-88213", "hn-db-88213-front"
HN_MODEL = "homenest-package"


def doorbell_world(prefix: str, seed: int, t0: dt.datetime, fault: str | None) -> World:
    """Battery doorbell (10 min health) -> cloud snapshot API -> package/person detector ->
    notification threshold -> quiet-hours policy -> push.

    ``fault='v3_threshold'``: detector 3.0.0 (recalibrated, recommended 0.62) went live 6
    days ago, the global ``threshold.package`` still says 0.35 (tuned for 2.4).
    ``fault='quiet_shadow'``: a 2025 provisioning device-scope quiet-hours entry
    (disabled) shadows the household's quiet hours set in the app.
    """
    w = World(prefix, seed, t0)
    v3 = t0 - dt.timedelta(days=6)
    w.device(
        HN_BELL,
        HN_TENANT,
        HN_SITE,
        "doorbell_camera",
        "HomeNest Bell 2",
        "2.9.14",
        "2025-06-02",
        None,
        15.0,
        1536.0,
    )

    def bell_health(t: dt.datetime, rng: random.Random) -> dict[str, float]:
        day = daylight(t, -5)
        return {
            "exposure": 1.0 + (1 - day) * 30 + rng.gauss(0, 0.6),
            "focus_score": 0.7 + rng.gauss(0, 0.02),
            "resolution_h": 1536,
            "battery_pct": 71 - (t - w.start).total_seconds() / 86400 * 1.1,
            "wifi_rssi_dbm": -58 + rng.gauss(0, 4),
        }

    w.health(HN_BELL, 600, bell_health)
    w.config(
        "threshold.package",
        "global",
        "*",
        0.35,
        "2026-02-01 00:00:00",
        author="hn-ml",
        note="package 2.4 operating point",
        comp="notify-threshold",
    )
    w.config(
        "policy.quiet_hours",
        "tenant",
        HN_TENANT,
        {"enabled": False},
        "2025-01-01 00:00:00",
        author="hn-product",
        note="off unless the household turns it on",
        comp="quiet-hours",
    )
    w.config(
        "policy.quiet_hours",
        "site",
        HN_SITE,
        {"enabled": True, "start": "22:30", "end": "06:30", "suppress": ["person", "motion"]},
        "2026-11-12 03:10:00",
        author="app:household-88213",
        note="set in app",
        comp="quiet-hours",
    )
    if fault == "quiet_shadow":
        w.config(
            "policy.quiet_hours",
            "device",
            HN_BELL,
            {"enabled": False},
            "2025-06-02 18:00:00",
            author="installer-provisioning",
            note="factory profile",
            comp="quiet-hours",
        )
    background_configs(w, HN_TENANT, HN_SITE, HN_BELL, ts(t0))
    w.model(
        HN_MODEL,
        "2.4.1",
        "package-det",
        "2026-01-20 00:00:00",
        0.35,
        {"package_ap": 0.86, "person_ap": 0.93},
        "",
    )
    w.model(
        HN_MODEL,
        "3.0.0",
        "package-det",
        ts(v3),
        0.62,
        {"package_ap": 0.9, "person_ap": 0.94},
        "recalibrated (temperature scaling); scores run higher, use 0.62",
    )
    for version in ("2.4.1", "3.0.0"):
        w.baseline(
            HN_MODEL,
            version,
            "snapshot_brightness",
            [0.15, 0.3, 0.45, 0.6],
            lambda g: 0.1 + 0.5 * (g.random() < 0.55) + g.gauss(0, 0.05),
        )
    routine_logs(
        w,
        {
            "hn-snapshot-api": ["snapshot p99 820ms region us-east-2"],
            "push-notify": ["APNs/FCM token refresh ok"],
        },
        every_h=8,
    )
    w.log(v3, "package-det", "INFO", f"serving {HN_MODEL} 3.0.0 (100% rollout)")
    for i, t in enumerate(every(w, 70, 30)):
        version = "3.0.0" if t >= v3 else "2.4.1"
        bell_event(w, f"{prefix}-evt{i:04d}", t, version, quiet_shadow=fault == "quiet_shadow")
    return w


def in_quiet(t: dt.datetime) -> bool:
    local = ((t.hour - 5) % 24) + t.minute / 60
    return local >= 22.5 or local < 6.5


def bell_event(
    w: World,
    oid: str,
    t: dt.datetime,
    version: str,
    *,
    quiet_shadow: bool,
    label: str | None = None,
    score: float | None = None,
) -> None:
    g = w.rng
    kind = label or g.choice(["person", "person", "package", "none", "none"])
    if score is None:
        real = g.uniform(0.55, 0.95) if kind != "none" else g.uniform(0.05, 0.3)
        score = min(0.99, real + (0.12 if version == "3.0.0" else 0))
    detected = score >= 0.35
    lab = (kind if kind != "none" else g.choice(["package", "person"])) if detected else None
    quiet = in_quiet(t) and not quiet_shadow
    resolved = (
        {"enabled": False, "source": "device"}
        if quiet_shadow
        else {"enabled": True, "start": "22:30", "end": "06:30", "source": "site"}
    )
    notify = detected and not (quiet and lab == "person")
    stages = [
        Stage(HN_BELL, "capture", "2.9.14", {"trigger": "pir"}, {"clip_s": 12}, dur_ms=100),
        Stage(
            "hn-snapshot-api",
            "transform",
            "2026.11.3",
            {"size": "1536p", "jpeg_q": 85},
            {
                "bytes": int(g.gauss(410_000, 40_000)),
                "resolution_h": 1536,
                "retries": noise_counter(g),
            },
            parents=(HN_BELL,),
            dur_ms=g.uniform(400, 900),
        ),
        Stage(
            "package-det",
            "model",
            version,
            {"classes": ["person", "package", "animal"]},
            {"max_score": r(score), "objects": int(detected), "latency_ms": r(g.gauss(60, 6), 1)},
            parents=("hn-snapshot-api",),
            dur_ms=60,
        ),
        Stage(
            "notify-threshold",
            "threshold",
            "1.4.0",
            {"threshold.package": 0.35, "threshold.person": 0.35},
            {"passed": int(detected)},
            parents=("package-det",),
            dur_ms=1,
        ),
        Stage(
            "quiet-hours",
            "policy",
            "0.7.2",
            {"quiet_hours": resolved},
            {"suppressed": int(detected and not notify)},
            parents=("notify-threshold",),
            dur_ms=2,
        ),
        Stage(
            "push-notify",
            "sink",
            "5.1.0",
            {"channels": ["apns"]},
            {"pushes": int(notify), "push_failures": 0},
            parents=("quiet-hours",),
            dur_ms=80,
        ),
    ]
    w.output(
        oid,
        HN_TENANT,
        HN_SITE,
        HN_BELL,
        t,
        "push_notification" if notify else "no_notification",
        lab,
        score,
        (HN_MODEL, version),
        stages,
        {"snapshot_brightness": 0.1 + 0.5 * daylight(t, -5) + g.gauss(0, 0.05)},
    )


def case_doorbell_threshold() -> Built:
    t0 = at("2026-11-26 19:22:00")  # 14:22 local
    w = doorbell_world("hn407", 407, t0, "v3_threshold")
    oid = "hn407-evt-incident"
    bell_event(w, oid, t0, "3.0.0", quiet_shadow=False, label="package", score=0.47)
    rev = "hn-qa.rtorres"
    w.track_record(rev, 210, 0.92, w.start - dt.timedelta(days=100), t0 - dt.timedelta(hours=2))
    ev = w.evaluation(
        "hn407-ticket-66120",
        oid,
        "human",
        rev,
        "false_positive",
        "'Package delivered' push; snapshot shows the doormat and a leaf pile. "
        "Customers report many of these since last week.",
        t0 + dt.timedelta(hours=20),
    )
    return Built(
        w,
        ev,
        "threshold_miscalibration",
        "notify-threshold",
        [["notify-threshold", "quiet-hours", "push-notify"]],
        "medium",
    )


def case_doorbell_policy() -> Built:
    t0 = at("2026-11-28 07:14:00")  # 02:14 local
    w = doorbell_world("hn408", 408, t0, "quiet_shadow")
    oid = "hn408-evt-incident"
    bell_event(w, oid, t0, "3.0.0", quiet_shadow=True, label="person", score=0.88)
    rev = "hn-support.escalations"
    w.track_record(rev, 33, 0.88, w.start - dt.timedelta(days=45), t0 - dt.timedelta(hours=12))
    ev = w.evaluation(
        "hn408-ticket-66301",
        oid,
        "human",
        rev,
        "other",
        "Household set quiet hours 22:30-06:30 on Nov 12 but was woken by a person "
        "alert at 02:14 (a neighbour walking past).",
        t0 + dt.timedelta(hours=7),
    )
    return Built(
        w, ev, "policy_misresolution", "quiet-hours", [["quiet-hours", "push-notify"]], "medium"
    )


# --------------------------------------------------------------------------- writing

CASES: list[tuple[str, Callable[[], Built]]] = [
    ("plate_ocr_char_confusion", case_lpr_model_error),
    ("plate_ocr_renamed_key_default", case_lpr_config_drift),
    ("shelf_gap_missed_empty_facing", case_shelf_model_error),
    ("shelf_holiday_foil_packaging", case_shelf_distribution_shift),
    ("thermal_upright_walker_missed", case_thermal_model_error),
    ("thermal_int8_release_far_fence", case_thermal_model_regression),
    ("forklift_uwb_tag_battery", case_warehouse_sensor_fault),
    ("dock_fps_cut_vs_dwell_frames", case_warehouse_interaction),
    ("dock_temp_reviewer_tiny_record", case_warehouse_unreliable_reviewer),
    ("traffic_rollup_watermark_drops", case_traffic_pipeline_regression),
    ("drone_gimbal_after_hard_landing", case_drone_sensor_fault),
    ("drone_judge_bad_on_misses", case_drone_judge_unreliable),
    ("doorbell_stale_threshold_v3", case_doorbell_threshold),
    ("doorbell_quiet_hours_shadowed", case_doorbell_policy),
]


def write_case(out: Path, nn: int, slug: str, b: Built) -> Path:
    folder = out / f"4{nn:02d}_novel_{b.category}_{slug}"
    if folder.exists():
        shutil.rmtree(folder)
    b.world.write(folder)
    incident = Incident.model_validate(
        {
            "evaluation": b.evaluation,
            "expected": {
                "category": b.category,
                "failing_node": b.failing_node,
                "acceptable_causal_paths": b.paths,
                "action": ACTION_FOR_CATEGORY[b.category],
                "route_to_training": b.category == "model_error",
                "abstain_ok": b.abstain_ok,
            },
            "tags": [b.difficulty, b.category, "novel", *b.extra_tags],
            "provenance": {"source": SOURCE, "date": RECORDED_ON},
        }
    )
    (folder / CASE_FILE).write_text(
        json.dumps(incident.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
    )
    return folder


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="evals/incidents", type=Path)
    args = ap.parse_args(argv)
    for nn, (slug, build) in enumerate(CASES, start=1):
        folder = write_case(args.out, nn, slug, build())
        print(folder)


if __name__ == "__main__":
    main()
