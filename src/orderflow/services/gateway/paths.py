"""Request paths in canonical form only: anything a backend might read differently is refused.

Refusing (rather than normalising and forwarding) means the gateway and every upstream agree on
the path, since both see the same bytes: no `..` or `.` segments, no empty segments (`//admin`),
no backslashes, no encoded `/`, `\\`, `%` or control characters.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from orderflow.web.problems import ProblemError, bad_request

_FORBIDDEN_ESCAPES = re.compile(rb"%(2f|5c|25|0[0-9a-f]|1[0-9a-f]|7f)", re.IGNORECASE)
_BAD_ESCAPE = re.compile(rb"%(?![0-9a-fA-F]{2})")


def canonical_path(raw_path: bytes) -> str:
    """The decoded path if `raw_path` is canonical; ProblemError(400) otherwise."""
    if not raw_path.startswith(b"/"):
        raise _refuse("path must start with '/'")
    if _BAD_ESCAPE.search(raw_path) or _FORBIDDEN_ESCAPES.search(raw_path):
        raise _refuse("path contains an encoded separator, '%' or control character")
    try:
        path = unquote(raw_path.decode("ascii"), errors="strict")
    except UnicodeError as exc:
        raise _refuse("path is not valid percent-encoded UTF-8") from exc
    if "\\" in path or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise _refuse("path contains a backslash or control character")
    segments = path.split("/")[1:]
    # The last segment may be empty: a trailing slash is part of many real routes.
    for index, segment in enumerate(segments):
        if segment in (".", ".."):
            raise _refuse("path contains a dot segment")
        if segment == "" and index != len(segments) - 1:
            raise _refuse("path contains an empty segment")
    return path


def _refuse(detail: str) -> ProblemError:
    return bad_request(detail, reason="non_canonical_path")
