"""The tools' connection cannot write, read files, attach databases or unlock itself."""

from __future__ import annotations

import duckdb
import pytest

from tools.errors import StoreError
from tools.store.connection import open_readonly, open_writable


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO outputs VALUES ('x', 't', 's', 'd', TIMESTAMP '2025-01-01', 'alert', "
        "NULL, NULL, NULL, NULL)",
        "CREATE TABLE evil (x INTEGER)",
        "DELETE FROM logs",
        "UPDATE runs SET status = 'ok'",
    ],
)
def test_writes_fail(store_con, sql):
    with pytest.raises(duckdb.Error, match="read-only"):
        store_con.execute(sql)


def test_reading_local_files_fails(store_con, tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(duckdb.Error, match="disabled"):
        store_con.execute("SELECT * FROM read_csv(?)", [str(csv)]).fetchall()


def test_attach_fails(store_con, tmp_path):
    with pytest.raises(duckdb.Error):
        store_con.execute(f"ATTACH '{tmp_path / 'other.duckdb'}' AS other")
    assert not (tmp_path / "other.duckdb").exists()


def test_config_is_locked(store_con):
    with pytest.raises(duckdb.Error, match="locked"):
        store_con.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error, match="locked"):
        store_con.execute("SET autoload_known_extensions = true")


def test_reads_still_work(store_con):
    assert store_con.execute("SELECT count(*) FROM outputs").fetchall() == [(42,)]


def test_missing_store_is_a_clear_store_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_readonly(tmp_path / "missing.duckdb")


def test_non_duckdb_file_is_a_clear_store_error(tmp_path):
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a valid DuckDB database"):
        open_readonly(junk)


def test_duckdb_file_without_the_contract_is_rejected(tmp_path):
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    with pytest.raises(StoreError, match="not a Forest store"):
        open_readonly(other)


def test_writable_store_creates_the_contract(tmp_path):
    path = tmp_path / "new.duckdb"
    open_writable(path).close()
    con = open_readonly(path)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(0,)]
    finally:
        con.close()
