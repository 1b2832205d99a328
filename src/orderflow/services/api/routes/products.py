"""/api/v1/products: the catalog with the stock available to order."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query
from starlette.responses import Response

from orderflow.services.api.deps import PROBLEM_RESPONSES, Context, CurrentIdentity
from orderflow.services.api.schemas import ProductPage
from orderflow.services.api.serialize import decode_cursor, encode_cursor, product_json

router = APIRouter(prefix="/api/v1/products", tags=["catalog"])


@router.get("", response_model=ProductPage, responses=PROBLEM_RESPONSES)
async def list_products(
    ctx: Context,
    _: CurrentIdentity,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Response:
    after = decode_cursor(cursor, 1)[0] if cursor else None
    async with ctx.db.read() as reads:
        rows = await reads.catalog.products_with_stock(after, limit + 1)
    items = [product_json(r) for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1]["sku"]) if len(rows) > limit else None
    body = {"items": items, "next_cursor": next_cursor}
    return Response(orjson.dumps(body), media_type="application/json")
