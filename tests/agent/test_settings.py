"""Settings: the README's settings tables document every field with its true default, and
the entry points take their defaults from Settings (``FOREST_STORE``, the serve knobs)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from agent.cli import app
from agent.service import create_app
from agent.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
# FOREST_ variables the README mentions that are not Settings: the cassette recorder's
NOT_SETTINGS = {"FOREST_RECORD_BASE_URL"}
# a table row whose first cell names FOREST_ variables: | names | defaults | meaning |
_ROW = re.compile(r"^\|(?P<names>[^|]*`FOREST_[A-Z0-9_]+`[^|]*)\|(?P<defaults>[^|]*)\|", re.M)
_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")

runner = CliRunner()


def documented() -> dict[str, str]:
    """Every variable in the README's settings tables -> its documented default cell."""
    out: dict[str, str] = {}
    for row in _ROW.finditer(README.read_text(encoding="utf-8")):
        groups = [g.strip() for g in row["names"].split(",")]
        defaults = [d.strip() for d in row["defaults"].split(",")]
        assert len(groups) == len(defaults), f"one default per variable: {row[0]}"
        for group, default in zip(groups, defaults, strict=True):
            names = _NAME.findall(group)
            assert names, f"no variable in {group!r}"
            for name in names:
                assert name not in out, f"{name} documented twice"
                out[name] = default
    return out


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables that set a field, the FOREST_ one first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"FOREST_{name.upper()}"]


def matches(cell: str, default: Any) -> bool:
    if default is None:
        return cell == "–"
    if not (cell.startswith("`") and cell.endswith("`")):
        return False
    value = cell[1:-1]
    if isinstance(default, int | float) and not isinstance(default, bool):
        return float(value) == default
    return value == str(default)


FIELDS = sorted(Settings.model_fields.items())


@pytest.mark.parametrize(("name", "field"), FIELDS, ids=[n for n, _ in FIELDS])
def test_the_readme_documents_every_setting_with_its_default(name: str, field: FieldInfo) -> None:
    table = documented()
    forest, *aliases = env_names(name, field)
    assert forest == f"FOREST_{name.upper()}"
    assert forest in table, f"README's settings tables lack {forest}"
    assert matches(table[forest], field.default), (
        f"README gives {forest} the default {table[forest]}, Settings {field.default!r}"
    )
    text = README.read_text(encoding="utf-8")
    for alias in aliases:
        assert f"`{alias}`" in text, f"README does not say {alias} also sets {name}"


def test_every_forest_variable_the_readme_names_is_a_setting() -> None:
    known = {n for name, field in FIELDS for n in env_names(name, field)}
    assert set(documented()) <= known
    mentioned = set(re.findall(r"\bFOREST_[A-Z0-9_]*[A-Z0-9]", README.read_text(encoding="utf-8")))
    assert mentioned - NOT_SETTINGS <= known


def test_forest_store_is_what_the_cli_reads(
    small_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREST_STORE", str(small_store))
    result = runner.invoke(app, ["investigate", "ev-001", "--json", "--no-persist"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["evaluation_id"] == "ev-001"


def test_without_forest_store_the_cli_reads_the_settings_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["investigate", "ev-001", "--json", "--no-persist"])
    assert result.exit_code == 1, result.output
    assert "error: " in result.stderr
    assert str(Settings.model_fields["store"].default) in result.stderr
    assert "does not exist" in result.stderr


def test_the_serve_settings_reach_the_gatekeeper(small_store: Path, tmp_path: Path) -> None:
    store = Path(shutil.copy(small_store, tmp_path / "gate.duckdb"))
    settings = Settings(
        store=store,
        serve_workers=3,
        serve_llm_workers=2,
        serve_queue_size=5,
        serve_flush_interval_s=600,
        serve_flush_drain_s=0.5,
    )
    application = create_app(settings)
    with TestClient(application) as client:
        gate = application.state.gate
        assert (gate.queue_size, gate.flush_interval) == (5, 600)
        assert (gate._rules._max_workers, gate._llm._max_workers) == (3, 2)
        assert client.get("/healthz").json()["queue_capacity"] == 5


def test_serve_options_override_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    import agent.service

    seen: list[Settings] = []
    monkeypatch.setattr(agent.service, "create_app", lambda s: seen.append(s) or object())
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setenv("FOREST_SERVE_QUEUE_SIZE", "7")
    monkeypatch.setenv("FOREST_SERVE_WORKERS", "5")
    monkeypatch.setenv("FOREST_STORE", str(tmp_path / "env.duckdb"))

    result = runner.invoke(app, ["serve", "--workers", "3"])
    assert result.exit_code == 0, result.output
    assert (seen[0].serve_workers, seen[0].serve_queue_size) == (3, 7)
    assert seen[0].store == tmp_path / "env.duckdb"

    result = runner.invoke(
        app, ["serve", "--store", str(tmp_path / "x.duckdb"), "--queue-size", "9"]
    )
    assert result.exit_code == 0, result.output
    assert (seen[1].serve_workers, seen[1].serve_queue_size) == (5, 9)
    assert seen[1].store == tmp_path / "x.duckdb"
