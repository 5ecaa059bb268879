"""UTC timestamps as the store keeps them: naive UTC in TIMESTAMP columns, aware UTC in code."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["UtcTimestamp", "from_db", "to_db"]


def _aware_utc(value: dt.datetime) -> dt.datetime:
    # a timestamp without an offset is taken to be UTC, like every store column
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


UtcTimestamp = Annotated[dt.datetime, AfterValidator(_aware_utc)]


def to_db(value: dt.datetime) -> dt.datetime:
    """Aware datetime -> the naive UTC value the store's TIMESTAMP columns compare against."""
    return _aware_utc(value).replace(tzinfo=None)


def from_db(value: dt.datetime) -> dt.datetime:
    """Naive UTC value read from the store -> aware UTC datetime."""
    return _aware_utc(value)
