"""Email addresses as the gateway accepts them (registration, login, `create_admin`)."""

from __future__ import annotations

import re

_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[^@\s\x00-\x1f\x7f-\x9f]{1,253}\.[^@\s\x00-\x1f\x7f-\x9f.]{1,63}$"
)


def normalise_email(raw: str) -> str | None:
    """The canonical form used for lookups and limits, or None when it is not an address."""
    email = raw.strip().lower()
    return email if len(email) <= 320 and _EMAIL.match(email) else None
