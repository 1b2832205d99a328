"""Request body limits for the order API and the gateway.

BodyLimitMiddleware answers a declared Content-Length over the limit with 413 (one that is not a
number with 400) before the app runs; a chunked body that keeps growing is cut off as soon as it
passes the limit, before it is read into memory, and answered 413 unless a response has already
started.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderflow.web.problems import ProblemError, bad_request, send_problem


class BodyTooLargeError(ProblemError):
    """Raised from receive() once a body passes the limit. A ProblemError, so an app answers 413
    even when FastAPI is the one reading the body (it re-raises HTTPExceptions but turns anything
    else into a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            413, detail=f"request body exceeds {max_bytes} bytes", reason="body_too_large"
        )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        max_bytes = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    return await send_problem(scope, send, bad_request("invalid Content-Length"))
                if int(value) > max_bytes:
                    return await send_problem(scope, send, BodyTooLargeError(max_bytes))
        # Per request, the counters and wrappers only: this is on the gateway's hot path.
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLargeError(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError as error:
            # Usually the app's own handlers answer it; this is for a body read outside them.
            if not started:
                await send_problem(scope, send, error)
