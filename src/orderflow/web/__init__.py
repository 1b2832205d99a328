"""The web layer shared by the order API and the gateway.

problems.py         ProblemError and the problem+json answers, handlers for an app's errors
request_context.py  request id in and out (and in structlog's context), client IP, access log,
                    with security_headers.py's headers on every response
body_limit.py       413 for bodies over the limit, declared or streamed
health.py           /healthz and /readyz (named checks, 503 naming only the failed ones)
media_types.py      415 for a body of a type a FastAPI route does not take

It may import Starlette, FastAPI, pydantic, structlog and `orderflow.domain`, never a service or
an adapter.
"""
