"""The `forest` command line: ingest/export round trip, one-line errors, the tools commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from stores import build_store, table_rows
from typer.testing import CliRunner

from agent.cli import app
from tools.errors import IngestError
from tools.registry import TOOLS

runner = CliRunner()


def assert_one_line_error(result, code: int, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return build_store(tmp_path / "seed.duckdb")


def test_export_then_ingest_via_cli(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "files"
    exported = runner.invoke(app, ["export", str(out), "--store", str(store), "--format", "csv"])
    assert exported.exit_code == 0, exported.output
    assert (out / "outputs.csv").is_file()

    copy = tmp_path / "copy.duckdb"
    loaded = runner.invoke(app, ["ingest", str(out), "--store", str(copy)])
    assert loaded.exit_code == 0, loaded.output
    counts = dict(line.split() for line in loaded.stdout.strip().splitlines())
    assert counts["outputs"] == "2" and counts["runs"] == "2" and counts["lineage_edges"] == "1"
    assert "loaded" in loaded.stderr  # the summary goes to stderr, stdout stays parseable
    assert table_rows(copy) == table_rows(store)


def test_ingest_error_is_one_line_and_exit_1(store: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "evaluations.csv").write_text(
        "evaluation_id,output_id,source_kind,source_id,claim,created_at\n"
        "e9,o1,robot,r,false_positive,2024-05-01\n"
    )
    before = table_rows(store)
    result = runner.invoke(app, ["ingest", str(src), "--store", str(store)])
    assert_one_line_error(result, 1, "evaluations.csv row 1", "'source_kind'", "'robot'")
    assert table_rows(store) == before


def test_debug_lets_the_exception_through(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--debug", "ingest", str(tmp_path / "missing")])
    assert result.exit_code != 0
    assert isinstance(result.exception, IngestError)


def test_missing_store_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "o"), "--store", str(tmp_path / "x.db")])
    assert_one_line_error(result, 1, "does not exist")


def test_bad_format_is_a_usage_error(store: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path), "--store", str(store), "--format", "xml"])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("args", "fragment"), [("{oops", "not valid JSON"), ("[1, 2]", "must be a JSON object")]
)
def test_tools_call_bad_json_exits_2(store: Path, args: str, fragment: str) -> None:
    name = next(iter(TOOLS))
    result = runner.invoke(app, ["tools", "call", name, "--args", args, "--store", str(store)])
    assert_one_line_error(result, 2, fragment)


def test_tools_call_unknown_tool(store: Path) -> None:
    result = runner.invoke(app, ["tools", "call", "no_such_tool", "--store", str(store)])
    assert_one_line_error(result, 1, "no_such_tool")


def test_tools_call_prints_tool_result_json(store: Path) -> None:
    name = next(iter(TOOLS))
    result = runner.invoke(
        app, ["tools", "call", name, "--args", '{"not_an_argument": 1}', "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["tool"] == name
    assert payload["status"] == "error"  # unknown arguments are rejected, not ignored
    assert "not_an_argument" in payload["message"]


def test_tools_list_json_is_openai_schemas() -> None:
    result = runner.invoke(app, ["tools", "list", "--json"])
    assert result.exit_code == 0, result.output
    schemas = json.loads(result.stdout)
    assert [s["function"]["name"] for s in schemas] == list(TOOLS)
    for schema in schemas:
        assert schema["type"] == "function"
        assert schema["function"]["description"]
        assert schema["function"]["parameters"]["type"] == "object"


def test_tools_list_text_names_every_tool() -> None:
    result = runner.invoke(app, ["tools", "list"])
    assert result.exit_code == 0, result.output
    names = [line for line in result.stdout.splitlines() if line and not line.startswith(" ")]
    assert names == list(TOOLS)


def test_console_script_prints_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from agent.cli import main; main()", "ingest", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'x'} is not a folder; pass a folder of <table>.parquet|csv|jsonl files"
    ]
    assert proc.stdout == ""


def test_tools_call_reads_the_store(store: Path) -> None:
    result = runner.invoke(
        app, ["tools", "call", "get_output", "--args", '{"output_id": "o1"}', "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["tool"], payload["status"]) == ("get_output", "ok")
    assert (payload["data"]["output_id"], payload["data"]["device_id"]) == ("o1", "cam-1")
