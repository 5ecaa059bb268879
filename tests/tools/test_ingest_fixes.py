"""Regression tests for loader bugs: doubled device_health, stray files, JSONL line numbers,
and store files left behind by a failed ingest."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tools.errors import IngestError
from tools.store.connection import open_readonly
from tools.store.ingest import ingest_dir

HEALTH = "device_id,ts,metric,value\ncam-1,2024-05-01T10:00:00Z,fps,15\n"
HEALTH_2 = "cam-1,2024-05-01T10:01:00Z,fps,14\n"
LOG = '{"ts": "2024-05-01 00:00:00", "component_id": "c", "level": "INFO", "message": "m"}'


def _health_rows(store: Path) -> int:
    con = open_readonly(store)
    try:
        row = con.execute("SELECT count(*) FROM device_health").fetchone()
        return row[0] if row else 0
    finally:
        con.close()


def _folder(tmp_path: Path, name: str = "in", **files: str) -> Path:
    src = tmp_path / name
    src.mkdir()
    for filename, content in files.items():
        (src / filename.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
        (src / filename.replace("__", "/")).write_text(content)
    return src


# 1. device_health is keyed by (device_id, ts, metric): re-loading is refused, not doubled


def test_reingesting_device_health_is_refused_and_leaves_the_store_unchanged(
    tmp_path: Path,
) -> None:
    store = tmp_path / "s.duckdb"
    src = _folder(tmp_path, **{"device_health.csv": HEALTH + HEALTH_2})
    assert ingest_dir(src, store) == {"device_health": 2}
    with pytest.raises(IngestError) as err:
        ingest_dir(src, store)
    message = str(err.value)
    assert "device_health.csv row 1" in message and "already in the store" in message
    assert "device_id, ts, metric" in message
    assert _health_rows(store) == 2


def test_duplicate_device_health_samples_in_the_files_are_refused(tmp_path: Path) -> None:
    # the same sample twice, once with an offset: both are 10:00 UTC
    src = _folder(
        tmp_path,
        **{
            "device_health__a.csv": HEALTH,
            "device_health__b.csv": "device_id,ts,metric,value\n"
            "cam-1,2024-05-01T12:00:00+02:00,fps,15\n",
        },
    )
    with pytest.raises(IngestError) as err:
        ingest_dir(src, tmp_path / "s.duckdb")
    message = str(err.value)
    assert "duplicate device_id, ts, metric" in message
    assert "device_health/a.csv row 1" in message and "device_health/b.csv row 1" in message


def test_other_metrics_and_times_of_a_device_still_load(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    ingest_dir(_folder(tmp_path, "a", **{"device_health.csv": HEALTH}), store)
    more = "device_id,ts,metric,value\ncam-1,2024-05-01T10:00:00Z,focus_score,0.9\n" + HEALTH_2
    assert ingest_dir(_folder(tmp_path, "b", **{"device_health.csv": more}), store) == {
        "device_health": 2
    }
    assert _health_rows(store) == 3


# 2. a stray non-table file is skipped with a warning


def test_stray_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    src = _folder(
        tmp_path,
        **{
            "README.md": "# exported from the NVR\n",
            "device_health__part-0.csv": HEALTH,
            "device_health___SUCCESS": "",
        },
    )
    warned: list[str] = []
    counts = ingest_dir(src, tmp_path / "s.duckdb", warn=warned.append)
    assert counts == {"device_health": 1}
    assert len(warned) == 2
    assert warned[0].startswith("README.md: skipped")
    assert warned[1].startswith("device_health/_SUCCESS: skipped")


def test_stray_file_warns_through_warnings_by_default(tmp_path: Path) -> None:
    src = _folder(tmp_path, **{"notes.txt": "x", "device_health.csv": HEALTH})
    with pytest.warns(UserWarning, match=r"notes\.txt: skipped"):
        assert ingest_dir(src, tmp_path / "s.duckdb") == {"device_health": 1}


def test_a_data_file_not_named_after_a_table_is_still_an_error(tmp_path: Path) -> None:
    src = _folder(tmp_path, **{"README.md": "x", "cameras.csv": "a\n1\n"})
    with pytest.raises(IngestError, match="not a table"):
        ingest_dir(src, tmp_path / "s.duckdb", warn=lambda _: None)


def test_cli_shows_the_skipped_file(tmp_path: Path) -> None:
    src = _folder(tmp_path, **{"README.md": "x", "device_health.csv": HEALTH})
    result = CliRunner().invoke(app, ["ingest", str(src), "--store", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 0, result.output
    assert "warning: README.md: skipped" in result.stderr


# 3. a JSONL file cut off in its last line is reported on that line


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (f"{LOG}\n{LOG}\n{LOG[:20]}", 3),  # cut off, no final newline
        (f"{LOG}\n{LOG}\n{LOG}\n{LOG[:20]}", 4),
        (f"{LOG}\n{LOG[:20]}\n{LOG}\n", 2),
        (f"{LOG}\r\n{LOG}\r\n{LOG[:20]}", 3),
    ],
)
def test_jsonl_bad_line_is_reported_on_its_line(tmp_path: Path, content: str, line: int) -> None:
    src = _folder(tmp_path, **{"logs.jsonl": content})
    with pytest.raises(IngestError) as err:
        ingest_dir(src, tmp_path / "s.duckdb")
    message = str(err.value)
    assert f"logs.jsonl: cannot read the file: line {line} is not valid JSON" in message
    assert f"line {line + 1}" not in message and "\n" not in message


# 4. a failed ingest into a new store leaves no file behind


def test_failed_ingest_into_a_new_store_leaves_no_file(tmp_path: Path) -> None:
    src = _folder(tmp_path, **{"device_health.csv": HEALTH, "logs.jsonl": f"{LOG}\n{{oops\n"})
    store = tmp_path / "new" / "s.duckdb"
    with pytest.raises(IngestError):
        ingest_dir(src, store)
    assert not store.exists()
    assert not store.with_name("s.duckdb.wal").exists()


def test_failed_ingest_into_an_existing_store_keeps_it(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    ingest_dir(_folder(tmp_path, "a", **{"device_health.csv": HEALTH}), store)
    with pytest.raises(IngestError):
        ingest_dir(_folder(tmp_path, "b", **{"logs.jsonl": "{oops\n"}), store)
    assert _health_rows(store) == 1
