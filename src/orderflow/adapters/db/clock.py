"""Row times: timezone-aware UTC, as every timestamp column stores them."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
