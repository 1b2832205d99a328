"""BodySizeLimit: refuse bodies over the limit with 413 before reading them into memory."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from orderflow.services.api.problems import ProblemError, problem_response
from orderflow.web.body_limit import call_with_body_limit


class _TooLargeError(ProblemError):
    """Raised from receive() on a chunked body that grows past the limit. A ProblemError, so the
    app answers 413 even when FastAPI is the one reading the body (it re-raises HTTPExceptions
    but turns anything else into a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, "Body too large", f"request bodies are limited to {max_bytes} bytes")


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = _TooLargeError(self.max_bytes)
        too_large = problem_response(error.status, error.title, error.problem_detail)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await too_large(scope, receive, send)
                return
        await call_with_body_limit(
            self.app,
            scope,
            receive,
            send,
            max_bytes=self.max_bytes,
            error=error,
            answer_too_large=lambda: too_large(scope, receive, send),
        )
