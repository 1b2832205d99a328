"""The stack's own ceiling: a bare FastAPI endpoint that validates an order body with the API's
own model and answers 202, with nothing behind it. `orderflow bench --ceiling` starts it in a
subprocess (`python -m orderflow.tools.bench.bare_app --port P`), served by uvicorn as the API is,
and drives it with the same load."""

from __future__ import annotations

import argparse
import uuid

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.responses import Response

from orderflow.services.api.schemas import OrderIn


def create_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/api/v1/orders", status_code=202)
    async def place_order(body: OrderIn) -> Response:
        doc = {"id": str(uuid.uuid4()), "status": "pending", "lines": len(body.items)}
        return Response(orjson.dumps(doc), 202, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same server settings as `orderflow serve api`, so only the work behind the route differs.
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
