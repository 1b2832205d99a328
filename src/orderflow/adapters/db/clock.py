"""Row times: timezone-aware UTC, as every timestamp column stores them."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """A row time as stored: SQLite hands back the UTC time without its zone."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
