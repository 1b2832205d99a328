"""Request paths in canonical form only: anything a backend might read differently is refused.

Refusing (rather than normalising and forwarding) means the gateway and every upstream agree on
the path, since both see the same bytes: no `..` or `.` segments, no empty segments (`//admin`),
no backslashes, no encoded `/`, `\\`, `%` or control characters (C0, DEL and C1). Refused too,
because some servers strip or split them where the gateway would not: `;` (path parameters:
`/api/admin;x/y` is `/api/admin/y` to a servlet container), and a segment that ends in `.` or
begins or ends with whitespace (`admin.`, `admin%2e`, `admin%20`: trimmed by some file systems
and routers). The checks run on the NFKC form as well, so a full-width dot or slash is caught.

What remains can still differ in case (or compatibility form) from a route's prefix:
`route_key` is the form both are compared in, so `/api/ADMIN/x` gets the `/api/admin` rule.
"""

from __future__ import annotations

import re
import unicodedata
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
    _check(path)
    folded = unicodedata.normalize("NFKC", path)
    if folded != path:
        if folded.count("/") != path.count("/"):
            raise _refuse("path contains a character that folds to '/'")
        _check(folded)
    return path


def route_key(path: str) -> str:
    """The form a path and a route prefix are matched in: case and compatibility forms folded."""
    return unicodedata.normalize("NFKC", path).casefold()


def _check(path: str) -> None:
    if "\\" in path or any(unicodedata.category(c) == "Cc" for c in path):
        raise _refuse("path contains a backslash or control character")
    if ";" in path:
        raise _refuse("path contains ';' (path parameters are not accepted)")
    segments = path.split("/")[1:]
    # The last segment may be empty: a trailing slash is part of many real routes.
    for index, segment in enumerate(segments):
        if segment in (".", ".."):
            raise _refuse("path contains a dot segment")
        if segment == "" and index != len(segments) - 1:
            raise _refuse("path contains an empty segment")
        if segment.endswith(".") or segment != segment.strip():
            raise _refuse("a path segment ends in '.' or starts or ends with whitespace")


def _refuse(detail: str) -> ProblemError:
    return bad_request(detail, reason="non_canonical_path")
