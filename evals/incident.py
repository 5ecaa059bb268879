"""One recorded incident: the case model and loading a case folder.

A case folder ``evals/incidents/NNN_slug/`` holds ``case.json`` (validated by
:class:`Incident`) and ``slice/``, the store rows that incident needs as files named after
the store's tables (``forest ingest`` loads it as is). The slice never holds the expected
answer, so no reasoner investigating it can see one.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.schemas import ActionKind, Category, Evaluation
from tools.errors import InputError

__all__ = [
    "CASE_FILE",
    "DIFFICULTIES",
    "GROUPS",
    "MARKERS",
    "SLICE_DIR",
    "Case",
    "Expected",
    "Incident",
    "IncidentProvenance",
    "failure_classes",
    "group_of",
    "load_case",
    "load_suite",
]

CASE_FILE = "case.json"
SLICE_DIR = "slice"
DIFFICULTIES = ("easy", "medium", "hard")
MARKERS = ("red_herring", "multi_fault", "handwritten", "from_override", "fleet", "novel")
# The suite's groups, reported apart: cases cut from the fleet worlds (marker ``fleet``),
# hand-written deployments unlike any simulator shape (marker ``novel``), and the rest.
GROUPS = ("suite", "fleet", "novel")


class Expected(BaseModel):
    """The answer a correct investigation gives. Every field is required."""

    model_config = ConfigDict(extra="forbid")

    category: Category = Field(description="verdict category")
    failing_node: str | None = Field(description="lineage node that failed; null when none")
    acceptable_causal_paths: list[list[str]] = Field(
        description="causal paths (cause to symptom) that count as right; empty: not graded"
    )
    action: ActionKind = Field(description="the corrective action")
    route_to_training: bool = Field(description="whether the evaluation may train the model")
    abstain_ok: bool = Field(description="whether an inconclusive verdict is acceptable")


class IncidentProvenance(BaseModel):
    """Where the case came from and when it was recorded (for staleness checks)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, description="demo world, store, override or handwritten")
    date: dt.date = Field(description="when the case was recorded")


class Incident(BaseModel):
    """``case.json``: the evaluation to investigate, the expected answer, tags, provenance."""

    model_config = ConfigDict(extra="forbid")

    evaluation: Evaluation
    expected: Expected
    tags: list[str] = Field(
        min_length=1, description="difficulty, failure class(es), red_herring, multi_fault"
    )
    provenance: IncidentProvenance


def group_of(tags: list[str]) -> str:
    """Which of :data:`GROUPS` a case with these tags belongs to."""
    return next((g for g in GROUPS[1:] if g in tags), GROUPS[0])


def failure_classes(tags: list[str]) -> list[str]:
    """The failure-class tags (everything that is not a difficulty or a marker)."""
    return [t for t in tags if t not in DIFFICULTIES and t not in MARKERS]


@dataclass(frozen=True)
class Case:
    """A validated case and the folder it was loaded from."""

    name: str
    folder: Path
    incident: Incident

    @property
    def slice_dir(self) -> Path:
        return self.folder / SLICE_DIR

    @property
    def tags(self) -> list[str]:
        return self.incident.tags

    @property
    def failure_class(self) -> str:
        """The primary failure class (the first one tagged)."""
        return next(iter(failure_classes(self.tags)), "unknown")


def load_case(folder: str | Path) -> Case:
    """Load and validate one case folder; errors name the file and the bad fields."""
    folder = Path(folder)
    path = folder / CASE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing; every case folder needs a {CASE_FILE}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        incident = Incident.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"{path}: invalid case: {problems}") from None
    if not (folder / SLICE_DIR).is_dir():
        raise InputError(f"{path}: the case has no {SLICE_DIR}/ folder of store files")
    return Case(name=folder.name, folder=folder, incident=incident)


def load_suite(root: str | Path, tag: str | None = None) -> list[Case]:
    """Every case folder under ``root`` (sorted by name), optionally only those tagged ``tag``."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such incidents folder")
    folders = [
        p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))
    ]
    cases = [load_case(p) for p in folders]
    if tag is not None:
        cases = [c for c in cases if tag in c.tags]
    return cases
