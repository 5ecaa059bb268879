"""Loading a folder of files into the incident store, and exporting a store back to files.

A folder holds one entry per contract table, named after it: ``<table>.parquet``,
``<table>.csv`` (header row, comma separated), ``<table>.jsonl`` / ``<table>.ndjson`` (one JSON
object per line), or a ``<table>/`` folder of such parts. Lineage may also come as OpenLineage
run events (``openlineage.jsonl`` or ``*.openlineage.jsonl``, see ``tools.store.openlineage``);
their events are merged per run across files, and a run already in the store is updated.
OpenTelemetry traces (``*.otlp.jsonl`` / ``*.otlp.json``) load as per-output lineage, see
``tools.store.otel``. Other files that are not data files (``README.md``, ``_SUCCESS``, ...)
are skipped with a warning.

Everything is validated before it is inserted and the whole folder loads in one transaction:
a bad file raises ``IngestError`` naming the file, the 1-based data row and the field, and
leaves the store exactly as it was (a store file the failed ingest created is removed).
Loading appends; a key already in the store is an error. ``device_health`` has no primary
key but is keyed the same way by (device_id, ts, metric), so re-loading samples is refused.
Files are read by DuckDB's readers with the path passed as a parameter; no text from the
files is ever executed as SQL (column names are checked against the contract first).
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import duckdb

from tools.errors import IngestError, StoreError
from tools.store import openlineage, otel
from tools.store.connection import open_readonly, open_writable
from tools.store.contract import (
    CLAIMS,
    COMPONENT_KINDS,
    CONFIG_SCOPES,
    LOG_LEVELS,
    SORT_KEYS,
    SOURCE_KINDS,
    TABLES,
)
from tools.store.redact import redact

__all__ = ["ENUMS", "EXPORT_FORMATS", "export_dir", "ingest_dir"]

Progress = Callable[[str, int, int], None]  # (label, step done so far, total steps)
Warn = Callable[[str], None]
ExportFormat = Literal["parquet", "csv", "jsonl"]

EXTENSIONS: Final = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
EXPORT_FORMATS: Final[dict[str, tuple[str, str]]] = {
    "parquet": ("parquet", "(FORMAT parquet)"),
    "csv": ("csv", "(FORMAT csv, HEADER true)"),
    "jsonl": ("jsonl", "(FORMAT json)"),
}
# Closed vocabularies checked row by row: (table, column) -> allowed values.
ENUMS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("runs", "kind"): COMPONENT_KINDS,
    ("runs", "status"): ("ok", "degraded", "failed"),
    ("config_versions", "scope"): CONFIG_SCOPES,
    ("evaluations", "claim"): CLAIMS,
    ("evaluator_history", "claim"): CLAIMS,
    ("evaluations", "source_kind"): SOURCE_KINDS,
    ("logs", "level"): LOG_LEVELS,
    ("verdicts", "gate"): ("train", "hold", "discard"),
    ("verdicts", "reasoner"): ("rules", "llm"),
}

SCHEMA_SQL: Final = """
    SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns()
    WHERE database_name = current_database() AND schema_name = 'main' ORDER BY column_index"""
PK_SQL: Final = """
    SELECT table_name, constraint_column_names FROM duckdb_constraints()
    WHERE database_name = current_database() AND schema_name = 'main'
      AND constraint_type = 'PRIMARY KEY'"""
# Fixed dialect: DuckDB's sniffer guesses headers wrongly on ragged files.
READ_CSV: Final = """CREATE TEMP TABLE _forest_stage AS SELECT * FROM read_csv($path,
    header = true, delim = ',', quote = '"', escape = '"', auto_detect = false, columns = $cols)"""
READ_PARQUET: Final = "CREATE TEMP TABLE _forest_stage AS SELECT * FROM read_parquet(?)"
READ_JSONL: Final = "CREATE TEMP TABLE _forest_lines AS SELECT json FROM read_ndjson_objects(?)"
STAGE: Final = "_forest_stage"
# Keys checked like primary keys (duplicates in the files or against the store are refused).
NATURAL_KEYS: Final[dict[str, list[str]]] = {"device_health": ["device_id", "ts", "metric"]}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool


@dataclass
class Source:
    """One contract table's files (or OpenLineage events) found in the folder."""

    table: str
    files: list[Path] = field(default_factory=list)


def ingest_dir(
    src_dir: str | Path,
    store_path: str | Path,
    *,
    progress: Progress | None = None,
    openlineage_output: openlineage.OutputRule = "root",
    warn: Warn | None = None,
) -> dict[str, int]:
    """Load every table file in ``src_dir`` into the store; return rows loaded per table.

    ``openlineage_output`` is the rule mapping OpenLineage runs to outputs (see
    ``tools.store.openlineage``); runs updated by OpenLineage events count as loaded.
    ``warn`` receives one line per skipped file (default: ``warnings.warn``).
    """
    src = Path(src_dir)
    sources, events, traces = _discover(src, warn or _warn)
    fresh = not Path(store_path).exists()
    con = open_writable(store_path)
    done = False
    try:
        schema, keys = _schema(con)
        con.execute("SET TimeZone = 'UTC'")  # offsets in timestamps are converted to UTC
        con.execute("BEGIN TRANSACTION")
        try:
            counts = _load_all(
                con,
                src,
                sources,
                events,
                schema,
                keys,
                progress,
                rule=openlineage_output,
                traces=traces,
            )
            con.execute("COMMIT")
            done = True
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise IngestError(f"ingest into {store_path} failed: {_first_line(exc)}") from exc
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
        if fresh and not done:
            _remove_store(Path(store_path))
    return counts


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=4)  # points at the caller of ingest_dir


def _remove_store(path: Path) -> None:
    """Delete a store file (and its write-ahead log) that a failed ingest created."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def export_dir(
    store_path: str | Path, out_dir: str | Path, fmt: ExportFormat = "parquet"
) -> dict[str, int]:
    """Write every contract table to ``out_dir/<table>.<ext>``; return rows written per table."""
    if fmt not in EXPORT_FORMATS:
        raise IngestError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    ext, options = EXPORT_FORMATS[fmt]
    open_readonly(store_path).close()  # proves it is a Forest store before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The hardened read-only connection cannot write files; this one is read-only on the store.
    con = duckdb.connect(
        str(store_path), read_only=True, config={"autoload_known_extensions": False}
    )
    counts: dict[str, int] = {}
    try:
        for table in TABLES:
            order = ", ".join(SORT_KEYS[table])
            query = f"SELECT * FROM {table} ORDER BY {order}"
            con.execute(f"COPY ({query}) TO ? {options}", [str(out / f"{table}.{ext}")])
            counts[table] = _scalar(con, f"SELECT count(*) FROM {table}")
    except duckdb.Error as exc:
        raise StoreError(f"cannot export {store_path} to {out}: {_first_line(exc)}") from exc
    finally:
        con.close()
    return counts


def _discover(src: Path, warn: Warn) -> tuple[list[Source], list[Path], list[Path]]:
    if not src.is_dir():
        raise IngestError(
            f"{src} is not a folder; pass a folder of <table>.parquet|csv|jsonl files"
        )
    sources: dict[str, Source] = {}
    events: list[Path] = []
    traces: list[Path] = []
    for entry in sorted(src.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and openlineage.is_openlineage_file(entry):
            events.append(entry)
            continue
        if entry.is_file() and otel.is_otlp_file(entry):
            traces.append(entry)
            continue
        table = entry.name if entry.is_dir() else entry.name.split(".", 1)[0]
        if table not in TABLES and entry.is_file() and _format(entry) is None:
            warn(f"{entry.name}: skipped, not a data file ({', '.join(EXTENSIONS)}) of a table")
            continue
        if table not in TABLES:
            raise IngestError(
                f"{entry.name}: {table!r} is not a table of the store; "
                f"name files after one of: {', '.join(TABLES)}"
            )
        if table in sources:
            raise IngestError(f"{entry.name}: table {table!r} is given twice in {src}")
        parts = (
            sorted(p for p in entry.iterdir() if not p.name.startswith("."))
            if entry.is_dir()
            else [entry]
        )
        for part in list(parts):
            if entry.is_dir() and part.is_file() and _format(part) is None:
                warn(f"{part.relative_to(src)}: skipped, not a data file ({', '.join(EXTENSIONS)})")
                parts.remove(part)
            elif not part.is_file() or _format(part) is None:
                raise IngestError(
                    f"{part.relative_to(src)}: unsupported file; use {', '.join(EXTENSIONS)}"
                )
        if not parts:
            raise IngestError(f"{entry.name}/: folder holds no data files")
        sources[table] = Source(table, parts)
    if not sources and not events and not traces:
        raise IngestError(
            f"{src} holds no data files named after store tables ({', '.join(TABLES)})"
        )
    return list(sources.values()), events, traces


def _format(path: Path) -> str | None:
    return EXTENSIONS.get(path.suffix.lower())


def _schema(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, list[Column]], dict[str, list[str]]]:
    schema: dict[str, list[Column]] = {}
    for table, name, dtype, nullable in con.execute(SCHEMA_SQL).fetchall():
        schema.setdefault(table, []).append(Column(name, dtype, nullable))
    keys = {table: list(cols) for table, cols in con.execute(PK_SQL).fetchall()}
    return schema, keys


def _load_all(
    con: duckdb.DuckDBPyConnection,
    src: Path,
    sources: list[Source],
    events: list[Path],
    schema: dict[str, list[Column]],
    keys: dict[str, list[str]],
    progress: Progress | None,
    *,
    rule: openlineage.OutputRule = "root",
    traces: list[Path] | None = None,
) -> dict[str, int]:
    traces = traces or []
    total = sum(len(s.files) for s in sources) + len(events) + (1 if traces else 0)
    step = 0
    loaded: set[str] = set()
    for source in sources:
        _create_typed(con, source.table)
        loaded.add(source.table)
        for path in source.files:
            label = path.relative_to(src).as_posix()
            if progress:
                progress(label, step, total)
            _stage_file(con, path, label, source.table, schema[source.table])
            _check_and_insert(con, source.table, schema[source.table], label)
            step += 1
    updated = 0
    if events:  # all files at once: the events of one run may be spread over several
        if progress:
            progress(events[0].name, step, total)
        result = openlineage.load(con, openlineage.read_events(events, rule))
        openlineage.update_runs(con, result.updates)
        updated = len(result.updates)
        for table, rows in (
            ("runs", result.runs),
            ("lineage_edges", result.edges),
            ("logs", result.logs),
        ):
            if not rows:
                continue
            if table not in loaded:
                _create_typed(con, table)
                loaded.add(table)
            for path in events:
                _stage_rows(con, schema[table], [r for r in rows if r["_file"] == path.name])
                _check_and_insert(con, table, schema[table], path.name)
        step += len(events)
    if traces:  # after the folder's outputs, which decide the outputs rows traces make
        if progress:
            progress(", ".join(p.name for p in traces), step, total)
        _load_traces(con, traces, schema, loaded)
        step += 1
    counts = {}
    for table in sorted(loaded, key=list(TABLES).index):
        _check_keys(con, table, keys.get(table) or NATURAL_KEYS.get(table, []))
        cols = ", ".join(f'"{c.name}"' for c in schema[table])
        order = ", ".join(SORT_KEYS[table])
        con.execute(
            f"INSERT INTO main.{table} SELECT {cols} FROM _forest_typed_{table} ORDER BY {order}"
        )
        counts[table] = _scalar(con, f"SELECT count(*) FROM _forest_typed_{table}")
        con.execute(f"DROP TABLE _forest_typed_{table}")
    if updated:
        counts["runs"] = counts.get("runs", 0) + updated
    if progress:
        progress("done", total, total)
    return counts


def _load_traces(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    schema: dict[str, list[Column]],
    loaded: set[str],
) -> None:
    """Stage OTLP traces as runs, lineage_edges, logs and (for outputs not given) outputs."""
    traces = otel.read_traces(paths)
    ids = sorted({c.output_id for c in traces.outputs})
    sql = "SELECT output_id FROM main.outputs WHERE list_contains($ids, output_id)"
    if "outputs" in loaded:
        sql += (
            " UNION SELECT output_id FROM _forest_typed_outputs"
            " WHERE list_contains($ids, output_id)"
        )
    known = {r[0] for r in con.execute(sql, {"ids": ids}).fetchall()}
    tables = {"outputs": otel.output_rows(traces.outputs, known), **traces.rows}
    for table, rows in tables.items():
        if not rows:
            continue
        if table not in loaded:
            _create_typed(con, table)
            loaded.add(table)
        for label in dict.fromkeys(r["_file"] for r in rows):
            _stage_rows(con, schema[table], [r for r in rows if r["_file"] == label])
            _check_and_insert(con, table, schema[table], label)


def _create_typed(con: duckdb.DuckDBPyConnection, table: str) -> None:
    con.execute(
        f"CREATE TEMP TABLE _forest_typed_{table} AS "
        f"SELECT *, NULL::VARCHAR AS _file, NULL::BIGINT AS _row FROM main.{table} LIMIT 0"
    )


def _stage_file(
    con: duckdb.DuckDBPyConnection, path: Path, label: str, table: str, cols: list[Column]
) -> None:
    """Read one file into the temp table ``_forest_stage`` (its columns + ``_row``)."""
    con.execute(f"DROP TABLE IF EXISTS {STAGE}")
    fmt = _format(path)
    try:
        if fmt == "csv":
            names = _csv_header(path, label)
            _check_names(label, table, names, cols)
            con.execute(READ_CSV, {"path": str(path), "cols": dict.fromkeys(names, "VARCHAR")})
        elif fmt == "parquet":
            con.execute(READ_PARQUET, [str(path)])
            names = [r[0] for r in con.execute(f"DESCRIBE {STAGE}").fetchall()]
            _check_names(label, table, names, cols)
        else:
            _stage_jsonl(con, path, label, table, cols)
    except duckdb.Error as exc:
        raise IngestError(f"{label}: cannot read the file: {_reader_error(exc)}") from exc
    con.execute(f"ALTER TABLE {STAGE} ADD COLUMN _row BIGINT")
    # Insertion order is file order; rowids inside a transaction start at an offset.
    con.execute(f"UPDATE {STAGE} SET _row = rowid - (SELECT min(rowid) FROM {STAGE}) + 1")


def _csv_header(path: Path, label: str) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise IngestError(f"{label}: empty file; a CSV needs a header row of column names")
    return [h.strip() for h in header]


def _stage_jsonl(
    con: duckdb.DuckDBPyConnection, path: Path, label: str, table: str, cols: list[Column]
) -> None:
    con.execute("DROP TABLE IF EXISTS _forest_lines")
    try:
        con.execute(READ_JSONL, [str(path)])
    except duckdb.Error as exc:
        # DuckDB's line numbers are off by one for some errors (a cut-off last line among them)
        bad = _bad_json_line(path)
        if bad is None:
            raise
        raise IngestError(f"{label}: cannot read the file: line {bad}") from exc
    con.execute("ALTER TABLE _forest_lines ADD COLUMN _line BIGINT")
    con.execute(
        "UPDATE _forest_lines SET _line = rowid - (SELECT min(rowid) FROM _forest_lines) + 1"
    )
    bad = _scalar(con, "SELECT min(_line) FROM _forest_lines WHERE json_type(json) <> 'OBJECT'")
    if bad is not None:
        raise IngestError(f"{label} row {bad}: expected a JSON object per line")
    names = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT unnest(json_keys(json)) AS k FROM _forest_lines ORDER BY k"
        ).fetchall()
    ]
    lines = _scalar(con, "SELECT count(*) FROM _forest_lines")
    _check_names(label, table, names, cols, empty=lines == 0)
    selects = []
    for col in (c for c in cols if c.name in names):
        ref = f"json -> '$.\"{col.name}\"'"
        if col.type == "JSON":
            # A string holding object/array JSON text is parsed; any other value is the value.
            expr = (
                f"CASE WHEN json_type({ref}) = 'NULL' THEN NULL "
                f"WHEN json_type({ref}) = 'VARCHAR' AND json_type(TRY_CAST({ref} ->> '$' AS JSON)) "
                f"IN ('OBJECT', 'ARRAY') THEN TRY_CAST({ref} ->> '$' AS JSON) ELSE {ref} END"
            )
        else:
            expr = f"{ref} ->> '$'"
        selects.append(f'{expr} AS "{col.name}"')
    select = ", ".join(selects) or "NULL AS _empty"
    con.execute(f"CREATE TEMP TABLE {STAGE} AS SELECT {select} FROM _forest_lines ORDER BY _line")
    con.execute("DROP TABLE _forest_lines")


def _bad_json_line(path: Path) -> str | None:
    """'<n> is not valid JSON (...)' for the first malformed line of a JSON Lines file."""
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError as exc:
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
                cut = "; the file ends inside it" if not line.endswith(b"\n") else ""
                return f"{n} is not valid JSON ({why}){cut}"
    return None


def _stage_rows(
    con: duckdb.DuckDBPyConnection, cols: list[Column], rows: list[dict[str, Any]]
) -> None:
    """Stage rows built in Python (from OpenLineage events); ``_row`` is the source line."""
    con.execute(f"DROP TABLE IF EXISTS {STAGE}")
    defs = ", ".join(f'"{c.name}" {"JSON" if c.type == "JSON" else "VARCHAR"}' for c in cols)
    con.execute(f"CREATE TEMP TABLE {STAGE} ({defs}, _row BIGINT)")
    if rows:
        marks = ", ".join("?" for _ in range(len(cols) + 1))
        con.executemany(
            f"INSERT INTO {STAGE} VALUES ({marks})",
            [[row.get(c.name) for c in cols] + [row["_line"]] for row in rows],
        )


def _check_names(
    label: str, table: str, names: list[str], cols: list[Column], *, empty: bool = False
) -> None:
    known = {c.name for c in cols}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise IngestError(
            f"{label}: unknown column(s) {', '.join(map(repr, unknown))} for table {table!r}; "
            f"its columns are: {', '.join(c.name for c in cols)}"
        )
    if len(set(names)) != len(names):
        raise IngestError(f"{label}: a column name appears twice in the header")
    if empty:
        return  # an empty JSON Lines file has no column names and nothing to load
    missing = [c.name for c in cols if not c.nullable and c.name not in names]
    if missing:
        raise IngestError(
            f"{label}: missing required column(s) {', '.join(map(repr, missing))} "
            f"for table {table!r}"
        )


def _check_and_insert(
    con: duckdb.DuckDBPyConnection, table: str, cols: list[Column], label: str
) -> None:
    """Validate the staged rows column by column, then append them to the typed temp table."""
    staged = {r[0]: r[1] for r in con.execute(f"DESCRIBE {STAGE}").fetchall()}
    if _scalar(con, f"SELECT count(*) FROM {STAGE}") == 0:
        return
    exprs = []
    for col in cols:
        if col.name not in staged:
            exprs.append(f"NULL::{col.type}")
            continue
        expr = _typed_expr(col, staged[col.name])
        _validate(con, table, col, expr, label)
        exprs.append(expr)
    con.execute(
        f"INSERT INTO _forest_typed_{table} SELECT {', '.join(exprs)}, ?, _row FROM {STAGE}",
        [label],
    )


def _typed_expr(col: Column, staged_type: str) -> str:
    ref = f'"{col.name}"'
    if col.type == "JSON":
        if staged_type == "JSON":
            return ref
        return f"TRY_CAST({ref} AS JSON)" if staged_type == "VARCHAR" else f"to_json({ref})"
    if col.type == "TIMESTAMP":
        return f"TRY_CAST(TRY_CAST({ref} AS TIMESTAMPTZ) AS TIMESTAMP)"
    return f"TRY_CAST({ref} AS {col.type})"


def _validate(
    con: duckdb.DuckDBPyConnection, table: str, col: Column, expr: str, label: str
) -> None:
    ref = f'"{col.name}"'
    if not col.nullable:
        row = _scalar(con, f"SELECT min(_row) FROM {STAGE} WHERE {ref} IS NULL")
        if row is not None:
            raise IngestError(f"{label} row {row}: field {col.name!r} is empty but required")
    bad = con.execute(
        f"SELECT _row, CAST({ref} AS VARCHAR) FROM {STAGE} "
        f"WHERE {ref} IS NOT NULL AND ({expr}) IS NULL ORDER BY _row LIMIT 1"
    ).fetchone()
    if bad is not None:
        want = "a JSON value" if col.type == "JSON" else f"a {col.type}"
        raise IngestError(
            f"{label} row {bad[0]}: field {col.name!r} should be {want}, got {_clip(bad[1])}"
        )
    allowed = ENUMS.get((table, col.name))
    if allowed:
        bad = con.execute(
            f"SELECT _row, {expr} FROM {STAGE} WHERE {ref} IS NOT NULL "
            f"AND NOT list_contains(?, {expr}) ORDER BY _row LIMIT 1",
            [list(allowed)],
        ).fetchone()
        if bad is not None:
            raise IngestError(
                f"{label} row {bad[0]}: field {col.name!r} is {_clip(bad[1])}; "
                f"expected one of {', '.join(allowed)}"
            )


def _check_keys(con: duckdb.DuckDBPyConnection, table: str, key: list[str]) -> None:
    if not key:
        return
    cols = ", ".join(f'"{k}"' for k in key)
    dup = con.execute(
        f"SELECT {cols}, list(_file || ' row ' || _row ORDER BY _file, _row) "
        f"FROM _forest_typed_{table} GROUP BY {cols} HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    if dup is not None:
        raise IngestError(
            f"{table}: duplicate {', '.join(key)} {_clip(dup[:-1])} in {' and '.join(dup[-1][:3])}"
        )
    on = " AND ".join(f't."{k}" = s."{k}"' for k in key)
    clash = con.execute(
        f"SELECT t._file, t._row, {', '.join(f't.{k}' for k in key)} FROM _forest_typed_{table} t "
        f"JOIN main.{table} s ON {on} ORDER BY t._file, t._row LIMIT 1"
    ).fetchone()
    if clash is not None:
        raise IngestError(
            f"{clash[0]} row {clash[1]}: {', '.join(key)} {_clip(clash[2:])} is already in the "
            f"store; ingest into a fresh --store or remove the row"
        )


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    return None if row is None else row[0]


def _clip(value: Any, limit: int = 60) -> str:
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    text = redact(repr(value))  # values shown in errors may be log lines holding secrets
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reader_error(exc: duckdb.Error) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    detail = [ln for ln in lines[1:3] if ln.startswith("Original Line")]
    return " ".join([_first_line(exc), *detail])


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
