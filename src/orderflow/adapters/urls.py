"""URLs as they may be shown: in errors, logs and start-up output, never with credentials.

Broker and database URLs carry passwords (`amqp://user:pw@host/`) and NATS carries tokens where
the user name goes (`nats://token@host`), so the whole user-info part is masked, not just the
password; so are query parameters whose name says they hold a secret.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"
_SECRET_PARAMETER = re.compile(r"([^&=]*(?:pass|pwd|secret|token|key)[^&=]*)=([^&]*)", re.I)


def redact_url(url: str) -> str:
    """`url` without its credentials; unchanged when it has none (text is only replaced, never
    re-assembled, so unusual spellings such as `embedded:////abs/path` stay as they were)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL we can read, so nothing we can vouch for
        return MASK
    redacted = url
    if "@" in parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        redacted = redacted.replace(parts.netloc, f"{MASK}@{host}", 1)
    if parts.query:
        query = _SECRET_PARAMETER.sub(rf"\1={MASK}", parts.query)
        redacted = redacted.replace(f"?{parts.query}", f"?{query}", 1)
    return redacted
