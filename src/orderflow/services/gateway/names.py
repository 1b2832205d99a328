"""Names as the gateway stores them (an account's, an API key's): shown to admins and logged,
so no control characters (C0, DEL, C1) and at least one visible character."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

_NO_CONTROL = r"[^\x00-\x1f\x7f-\x9f]"
_VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f]"
Name = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=200, pattern=rf"^{_NO_CONTROL}*{_VISIBLE}{_NO_CONTROL}*$"
    ),
]
