"""The eval suite: case validation, record-incident round trip, graders, floors, rot guards."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fakes import ScriptedModel
from typer.testing import CliRunner

from agent.api import Investigator
from agent.llm import ChatResult, ToolCallRequest
from agent.persist import append_verdicts
from agent.schemas import Verdict
from agent.settings import Settings
from evals.graders import (
    AbstentionGrader,
    CausalPathGrader,
    ConsistencyGrader,
    GroundingGrader,
    SchemaGrader,
    TrainingGrader,
    brier,
    ece,
    path_credit,
)
from evals.incident import (
    CASE_FILE,
    SLICE_DIR,
    Expected,
    failure_classes,
    group_of,
    load_case,
    load_suite,
)
from evals.runner import (
    DEFAULT_INCIDENTS,
    build_report,
    compare_baseline,
    coverage,
    drift,
    run_suite,
)
from evals.worlds import build_demo
from tools.errors import InputError
from tools.store.connection import open_writable
from tools.store.contract import TABLES

cli = CliRunner()
# Floors per group. The original suite holds at 97 %. The fleet-world and hand-written
# groups are held at what the rules tier measures today (issue 12 aims at 90 %): a floor
# there catches a regression, it does not claim the aim is met.
FLOORS = {
    "suite": {
        "category_accuracy": 0.97,
        "node_accuracy": 0.97,
        "training_precision": 1.0,
        "training_recall": 0.97,
        "grounded_rate": 1.0,
        "schema_valid_rate": 1.0,
        "consistent_rate": 1.0,
    },
    "fleet": {
        "category_accuracy": 0.65,
        "node_accuracy": 0.7,
        "training_precision": 0.97,
        "training_recall": 0.55,
        "grounded_rate": 1.0,
        "schema_valid_rate": 1.0,
        "consistent_rate": 1.0,
    },
    "novel": {
        "category_accuracy": 0.7,
        "node_accuracy": 0.7,
        # 3 of 4 trained are right (a shadowed quiet-hours policy that nothing flags)
        "training_precision": 0.7,
        "grounded_rate": 1.0,
        "schema_valid_rate": 1.0,
        "consistent_rate": 1.0,
    },
}


@pytest.fixture(scope="module")
def suite_report() -> dict[str, Any]:
    return build_report(run_suite(DEFAULT_INCIDENTS, reasoner="rules", workers=2))


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(store, seed=3, size="small")
    return store


def _case_json(tmp_path: Path, mutate: Any) -> Path:
    source = next(p for p in sorted(DEFAULT_INCIDENTS.iterdir()) if p.is_dir())
    folder = tmp_path / "case"
    shutil.copytree(source, folder)
    raw = json.loads((folder / CASE_FILE).read_text())
    mutate(raw)
    (folder / CASE_FILE).write_text(json.dumps(raw))
    return folder


def test_missing_expected_field_fails_naming_the_file(tmp_path: Path) -> None:
    folder = _case_json(tmp_path, lambda raw: raw["expected"].pop("abstain_ok"))
    with pytest.raises(InputError) as err:
        load_case(folder)
    assert str(folder / CASE_FILE) in str(err.value)
    assert "expected.abstain_ok" in str(err.value)


def test_unknown_key_fails_naming_the_file(tmp_path: Path) -> None:
    folder = _case_json(tmp_path, lambda raw: raw["expected"].update(severity="high"))
    with pytest.raises(InputError) as err:
        load_case(folder)
    assert str(folder / CASE_FILE) in str(err.value) and "severity" in str(err.value)
    folder = _case_json(tmp_path / "b", lambda raw: raw.update(notes="x"))
    with pytest.raises(InputError, match="notes"):
        load_case(folder)


def test_suite_composition() -> None:
    cases = [c for c in load_suite(DEFAULT_INCIDENTS) if group_of(c.tags) == "suite"]
    handwritten = [c for c in cases if "handwritten" in c.tags]
    demo = [c for c in cases if "handwritten" not in c.tags]
    assert len(cases) >= 70 and len(demo) >= 60 and len(handwritten) >= 10
    per_class: dict[str, int] = {}
    for case in demo:
        per_class[case.failure_class] = per_class.get(case.failure_class, 0) + 1
    assert len(per_class) == 13 and min(per_class.values()) >= 4, per_class
    for marker in ("red_herring", "multi_fault"):
        assert sum(marker in c.tags for c in demo) >= 4
        assert any(marker in c.tags for c in handwritten)
    assert len({c.incident.provenance.source.split(" ")[2] for c in demo}) >= 3  # seeds
    # slices hold store tables only (in every group): no reasoner can read an expected
    # answer from them
    for case in load_suite(DEFAULT_INCIDENTS):
        assert {p.name.split(".")[0] for p in case.slice_dir.iterdir()} <= set(TABLES)
        assert failure_classes(case.tags)


@pytest.mark.timeout(900)  # the first user of suite_report runs all ~145 cases
def test_rules_tier_floors(suite_report: dict[str, Any]) -> None:
    metrics = suite_report["metrics"]
    groups = suite_report["by_group"]
    assert groups["suite"]["cases"] >= 70
    assert groups["fleet"]["cases"] >= 40 and groups["novel"]["cases"] >= 12
    for group, floors in FLOORS.items():
        got = groups[group]["metrics"]
        for name, floor in floors.items():
            assert got[name] >= floor, (group, name, got[name])
    assert set(suite_report["by_tag"]) >= {"easy", "hard", "red_herring", "handwritten"}
    assert compare_baseline(metrics, metrics) == []


@pytest.mark.timeout(900)
def test_json_report_shape(suite_report: dict[str, Any]) -> None:
    assert set(suite_report) == {"cases", "metrics", "by_tag", "by_class", "by_group", "failures"}
    assert sum(g["cases"] for g in suite_report["by_group"].values()) == suite_report["cases"]
    assert set(suite_report["metrics"]) == {
        "category_accuracy", "node_accuracy", "path_score", "action_accuracy",
        "training_precision", "training_recall", "abstention_accuracy", "grounded_rate",
        "schema_valid_rate", "consistent_rate", "brier", "ece", "median_prompt_tokens",
        "median_llm_calls", "median_tool_calls", "median_seconds",
    }  # fmt: skip
    json.dumps(suite_report)


def test_baseline_regression_exits_non_zero(tmp_path: Path) -> None:
    root = tmp_path / "incidents"
    shutil.copytree(DEFAULT_INCIDENTS / "109_hw_clear_plate_miss", root / "109_case")
    baseline = {"metrics": {"category_accuracy": 1.0, "median_tool_calls": 1.0}}
    (tmp_path / "base.json").write_text(json.dumps(baseline))
    args = ["eval", "--incidents", str(root), "--baseline", str(tmp_path / "base.json")]
    result = cli.invoke(app_(), args)
    assert result.exit_code == 1, result.output
    assert "median_tool_calls" in result.stderr
    good = {"metrics": {"category_accuracy": 1.0, "training_precision": 1.0}}
    (tmp_path / "base.json").write_text(json.dumps(good))
    assert cli.invoke(app_(), args).exit_code == 0


def app_() -> Any:
    from agent.cli import app

    return app


def test_record_incident_reproduces_the_full_store_verdict(
    demo_store: Path, tmp_path: Path
) -> None:
    truth = [json.loads(line) for line in demo_store.with_suffix("").with_name(
        demo_store.stem + ".truth.jsonl").read_text().splitlines()]  # fmt: skip
    picks = [
        truth[0]["evaluation_id"],
        next(t for t in truth if "hard" in t["tags"])["evaluation_id"],
    ]
    with Investigator(demo_store, settings=Settings(store=demo_store)) as inv:
        full = {e: inv.investigate(e) for e in picks}
    root = tmp_path / "incidents"
    for i, evaluation_id in enumerate(picks):
        args = ["record-incident", evaluation_id, "--store", str(demo_store),
                "--out", str(root / f"00{i}_case")]  # fmt: skip
        result = cli.invoke(app_(), args)
        assert result.exit_code == 0, result.output
    assert load_case(root / "000_case").incident.expected.category == truth[0]["category"]
    result = cli.invoke(app_(), ["eval", "--incidents", str(root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cases"] == 2
    by_case = {f["case"]: f for f in report["failures"]}
    results = run_suite(root, workers=1)
    for r, evaluation_id in zip(results, picks, strict=True):
        v = full[evaluation_id]
        assert r.got == {
            "category": v.category,
            "failing_node": v.failing_node,
            "action": v.action.kind,
            "route_to_training": v.route_to_training,
            "confidence": v.confidence,
        }
        assert (r.case in by_case) == bool(r.failed)


def test_record_from_override_and_from_verdict(demo_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "prod.duckdb"
    shutil.copy(demo_store, store)  # no truth file beside it: a "production" store
    with Investigator(store, settings=Settings(store=store)) as inv:
        evaluation_id = inv.evaluation_ids()[0]
        verdict = inv.investigate(evaluation_id)
    append_verdicts(store, [verdict])
    from evals.capture import record_incident

    plain = load_case(record_incident(evaluation_id, store, tmp_path / "a"))
    assert plain.incident.expected.category == verdict.category
    with pytest.raises(InputError, match="not empty"):
        record_incident(evaluation_id, store, tmp_path / "a")
    con = open_writable(store)
    con.execute(
        "INSERT INTO overrides VALUES ('ov-1', ?, ?, ?, 'ana', 'evaluation_unreliable', NULL, "
        "'discard_evaluation', 'reviewer was guessing')",
        [verdict.verdict_id, evaluation_id, dt.datetime(2026, 11, 2, tzinfo=dt.UTC)],
    )
    con.close()
    result = cli.invoke(app_(), ["record-incident", evaluation_id, "--store", str(store),
                                 "--out", str(tmp_path / "b"), "--from-override"])  # fmt: skip
    assert result.exit_code == 0, result.output
    case = load_case(tmp_path / "b")
    assert case.incident.expected.category == "evaluation_unreliable"
    assert case.incident.expected.failing_node is None
    assert "from_override" in case.tags
    assert (tmp_path / "b" / SLICE_DIR / "runs.parquet").is_file()


def test_coverage_and_drift(demo_store: Path, tmp_path: Path) -> None:
    cases = load_suite(DEFAULT_INCIDENTS)
    cov = coverage(cases, today=dt.date(2027, 12, 1))
    assert cov["cases"] == len(cases)
    # the original suite covers each of its classes at least four times
    suite = coverage([c for c in cases if group_of(c.tags) == "suite"], today=dt.date(2027, 12, 1))
    assert all(row["cases"] >= 4 for row in suite["matrix"].values())
    assert cov["stale"] and cov["oldest"][0]["age_days"] > 180
    assert any("no case fails there" in line for line in cov["thin"]) or set(cov["matrix"])
    result = cli.invoke(app_(), ["eval", "--coverage"])
    assert result.exit_code == 0 and "defocus" in result.stdout
    store = tmp_path / "prod.duckdb"
    shutil.copy(demo_store, store)
    with Investigator(store, settings=Settings(store=store)) as inv:
        verdicts = [inv.investigate(e) for e in inv.evaluation_ids()[:12]]
    append_verdicts(store, verdicts)
    report = drift(cases, store)
    assert report["verdicts"] == 12
    assert set(report) >= {"category", "claim", "tenant", "kind", "warnings"}
    only_models = [c for c in cases if c.incident.expected.category == "model_error"]
    assert any("none in the suite" in w for w in drift(only_models, store)["warnings"])
    result = cli.invoke(app_(), ["eval", "--drift", "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output


def _verdict() -> Verdict:
    case = load_case(DEFAULT_INCIDENTS / "109_hw_clear_plate_miss")
    from evals.runner import case_store

    with case_store(case) as store, Investigator(store, settings=Settings(store=store)) as inv:
        return inv.investigate(case.incident.evaluation)


def test_brier_and_ece_on_known_numbers() -> None:
    pairs = [(0.9, True), (0.9, False), (0.2, False), (0.6, True)]
    assert brier(pairs) == pytest.approx((0.01 + 0.81 + 0.04 + 0.16) / 4)
    # bins: 0.9 -> {1, 0} acc .5 conf .9; 0.2 -> acc 0 conf .2; 0.6 -> acc 1 conf .6
    assert ece(pairs) == pytest.approx(0.5 * 0.4 + 0.25 * 0.2 + 0.25 * 0.4)
    assert ece([(1.0, True)]) == 0.0 and brier([]) == 0.0


def test_path_partial_credit() -> None:
    acc = ["a", "b", "c", "d"]
    assert path_credit(acc, acc) == 1.0
    assert path_credit(["b", "c", "d"], acc) == pytest.approx(0.75 / 2)
    assert path_credit(["a", "c", "d"], acc) == pytest.approx(0.75)
    assert path_credit([], []) == 1.0 and path_credit([], acc) == 0.0


def test_graders_on_a_real_verdict() -> None:
    v = _verdict()
    e = Expected(category="model_error", failing_node="plate-detector",
                 acceptable_causal_paths=[v.causal_path], action="train_model",
                 route_to_training=True, abstain_ok=False)  # fmt: skip
    assert CausalPathGrader().grade(v, e).score == 1.0
    assert TrainingGrader().grade(v, e).detail == "tp"
    assert (
        TrainingGrader().grade(v, e.model_copy(update={"route_to_training": False})).detail == "fp"
    )
    assert SchemaGrader().grade(v, e).passed
    assert GroundingGrader().grade(v, e).passed
    bad = v.model_copy(update={"summary": v.summary + " see E99"})
    assert not GroundingGrader().grade(bad, e).passed
    liar = GroundingGrader().grade(v, e, replay=lambda tool, args: ("ok", "forged"))
    assert not liar.passed and "fresh call" in liar.detail
    broken = v.model_copy(update={"confidence": 7.0})
    assert not SchemaGrader().grade(broken, e).passed
    abstained = v.model_copy(update={"category": "inconclusive"})
    assert AbstentionGrader().grade(abstained, e).detail == "needless"
    ok = e.model_copy(update={"abstain_ok": True})
    assert AbstentionGrader().grade(abstained, ok).detail == "abstained_ok"
    wrong = v.model_copy(update={"category": "sensor_fault"})
    assert AbstentionGrader().grade(wrong, ok).detail == "confidently_wrong"


def test_verdict_text_must_agree_with_its_fields() -> None:
    v = _verdict()
    e = Expected(category="model_error", failing_node="plate-detector",
                 acceptable_causal_paths=[v.causal_path], action="train_model",
                 route_to_training=True, abstain_ok=False)  # fmt: skip
    assert v.evaluation_reliability is not None and v.evaluation_reliability.reliable is True
    assert ConsistencyGrader().grade(v, e).passed
    doubted = v.model_copy(
        update={"evaluation_reliability": v.evaluation_reliability.model_copy(
            update={"reliable": False})}
    )  # fmt: skip
    says = doubted.model_copy(update={"summary": v.summary + "; the evaluator is reliable"})
    graded = ConsistencyGrader().grade(says, e)
    assert not graded.passed and "calls the evaluator reliable" in graded.detail
    assert "trains without" in graded.detail  # it was routed to training regardless
    unnamed = v.model_copy(update={"summary": "model error"})
    assert "failing node" in ConsistencyGrader().grade(unnamed, e).detail
    misrouted = v.model_copy(update={"category": "sensor_fault"})
    assert "is not the action of sensor_fault" in ConsistencyGrader().grade(misrouted, e).detail


def test_compare_baseline_tolerances() -> None:
    base = {"category_accuracy": 0.95, "brier": 0.05, "median_seconds": 0.2}
    assert compare_baseline({"category_accuracy": 0.94, "brier": 0.06, "median_seconds": 0.3},
                            base) == []  # fmt: skip
    worse = compare_baseline({"category_accuracy": 0.9, "brier": 0.2, "median_seconds": 2.0}, base)
    assert [w.split(":")[0] for w in worse] == ["category_accuracy", "brier", "median_seconds"]


def _scripted_model() -> ScriptedModel:
    """A fake OpenAI-compatible model: one tool call, then a verdict."""
    call = ToolCallRequest("c1", "get_device_health", json.dumps(
        {"device_id": "lpr-gate5-out", "at": "2026-03-17T02:37:12Z"}))  # fmt: skip
    body = {"category": "model_error", "failing_node": "plate-detector", "causal_path": [],
            "action": {"kind": "train_model"}, "confidence": 0.75,
            "summary": "clean pipeline (E3, E22)", "evidence_ids": ["E22"]}  # fmt: skip
    return ScriptedModel(
        ChatResult(content=None, prompt_tokens=900, completion_tokens=20, tool_calls=[call]),
        ChatResult(content=json.dumps(body), prompt_tokens=1200, completion_tokens=90),
        model="scripted-1",
    )


def test_llm_tier_path_with_an_injected_model(tmp_path: Path) -> None:
    root = tmp_path / "incidents"
    shutil.copytree(DEFAULT_INCIDENTS / "109_hw_clear_plate_miss", root / "109_case")
    [result] = run_suite(root, reasoner="llm", model=_scripted_model())
    assert result.error is None, result.error
    assert result.cost.llm_calls == 2 and result.cost.prompt_tokens == 2100
    assert result.grades["schema"].passed and result.grades["grounded"].passed
    assert result.got["category"] == "model_error"


def test_the_novel_cases_are_what_their_generator_writes(tmp_path: Path) -> None:
    """`python -m evals.novel` rebuilds the committed `novel` group byte for byte."""
    from evals import novel

    novel.main(["--out", str(tmp_path)])
    written = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(
        c.folder.name for c in load_suite(DEFAULT_INCIDENTS) if group_of(c.tags) == "novel"
    )
    assert written == committed and len(written) >= 12
    for name in written:
        for path in sorted((tmp_path / name).rglob("*")):
            if path.is_file():
                twin = DEFAULT_INCIDENTS / name / path.relative_to(tmp_path / name)
                assert path.read_bytes() == twin.read_bytes(), twin
