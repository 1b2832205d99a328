"""A tiny HTTP endpoint for processes that serve no HTTP otherwise (workers, the relay).

`GET /healthz` answers 200 while the event loop runs (liveness: restart me if this fails);
`GET /readyz` answers 200 when every check passes and otherwise 503, a problem+json naming the
failed checks (readiness: the database and the broker are reachable); `GET /metrics` is the
process's Prometheus metrics (observability/metrics.py). The endpoint needs no
credentials, so why a check failed is logged, never answered: error texts can name hosts and
users. Anything else is 404. Plain asyncio streams: two routes do not need a web framework in
every worker.

Admins see more: a /readyz request carrying a valid gateway identity assertion (the
X-OrderFlow-Identity header) of an admin also gets `details` (e.g. the payment provider's circuit
state); anyone else gets exactly the body above.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

import orjson
import structlog

from orderflow.domain.identity import ADMIN
from orderflow.observability.exposition import CONTENT_TYPE, render
from orderflow.ports.identity import ASSERTION_HEADER, IdentityVerifier

log = structlog.get_logger()

Check = Callable[[], Awaitable[object]]
CHECK_TIMEOUT = 3.0
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
Detail = Callable[[], object]  # JSON-able state of a component, shown to admins only


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        checks: Mapping[str, Check],
        details: Mapping[str, Detail] | None = None,
        verifier: IdentityVerifier | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._checks = checks
        self._details = dict(details or {})
        self._verifier = verifier
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        log.info("health endpoint listening", host=self._host, port=self._port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def failed_checks(self) -> list[str]:
        """The names of the checks that fail now; why each failed is logged."""
        names = list(self._checks)
        results = await asyncio.gather(
            *(asyncio.wait_for(self._checks[n](), CHECK_TIMEOUT) for n in names),
            return_exceptions=True,
        )
        errors = {n: r for n, r in zip(names, results, strict=True) if isinstance(r, BaseException)}
        if errors:
            log.warning(
                "not ready", failed=list(errors), errors={n: repr(e) for n, e in errors.items()}
            )
        return list(errors)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            first, *header_lines = request.decode("latin-1").split("\r\n")
            method, path, *_ = first.split(" ")
            admin = self._is_admin(header_lines)
            status, content_type, body = await self._answer(method, path.split("?", 1)[0], admin)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
            pass  # a client that went away or spoke nonsense gets nothing
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _is_admin(self, header_lines: list[str]) -> bool:
        if self._verifier is None:
            return False
        wanted = ASSERTION_HEADER.lower()
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == wanted:
                try:
                    return ADMIN in self._verifier.verify(value.strip()).roles
                except Exception as exc:  # an invalid assertion is simply no admin
                    log.info("health: identity assertion refused", error=type(exc).__name__)
                    return False
        return False

    def _admin_details(self, admin: bool) -> dict[str, object]:
        if not admin or not self._details:
            return {}
        return {"details": {name: detail() for name, detail in self._details.items()}}

    async def _answer(self, method: str, path: str, admin: bool = False) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", JSON, b'{"status":"method not allowed"}'
        if path == "/healthz":
            return "200 OK", JSON, b'{"status":"ok"}'
        if path == "/readyz":
            failed = await self.failed_checks()
            if not failed:
                ready = {"status": "ready", **dict.fromkeys(self._checks, "ok")}
                return "200 OK", JSON, orjson.dumps({**ready, **self._admin_details(admin)})
            problem = {
                "type": "about:blank",
                "title": "Not ready",
                "status": 503,
                "detail": f"failed: {', '.join(failed)}",
                "failed": failed,
                **self._admin_details(admin),
            }
            return "503 Service Unavailable", PROBLEM_JSON, orjson.dumps(problem)
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE, await render()
        return "404 Not Found", JSON, b'{"status":"not found"}'
