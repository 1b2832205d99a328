"""Request and response bodies of the order API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

MAX_LINES = 100
MAX_QUANTITY = 10_000


def _trimmed(value: str) -> str:
    # Never trimmed down to nothing: the schema's `\S` promised a value, so keep what was sent.
    return value.strip() or value


# Texts carry no control characters (C0, DEL and C1: U+0080-U+009F are controls too, and some
# terminals act on them): they end up in logs, labels and the database, and
# PostgreSQL refuses NUL outright (text and JSONB), which would fail the whole commit a request
# shares with others. Required texts must also hold a non-blank character, said in the schema
# itself: a minLength checked after trimming would refuse "  ", which the documented schema accepts.
_PRINTABLE = r"[^\x00-\x1f\x7f-\x9f]"
NO_CONTROL = rf"^{_PRINTABLE}*$"
NON_BLANK = rf"^{_PRINTABLE}*[^\s\x00-\x1f\x7f-\x9f]{_PRINTABLE}*$"
# Free prose (a cancellation reason) may have line breaks and tabs, nothing else.
PROSE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NON_BLANK),
    AfterValidator(_trimmed),
]
City = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=NON_BLANK),
    AfterValidator(_trimmed),
]
PostalCode = Annotated[
    str, StringConstraints(min_length=1, max_length=20, pattern=NON_BLANK), AfterValidator(_trimmed)
]
OptionalText = (
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=200, pattern=NO_CONTROL)]
    | None
)


def _integral(value: Any) -> Any:
    """JSON has one number type: 2.0 is the integer 2 (and JSON Schema's "integer" says so too)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Strict otherwise: "2", true and 2.5 are still refused.
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY), BeforeValidator(_integral)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ItemIn(Strict):
    sku: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    ]
    quantity: Quantity


class AddressIn(Strict):
    name: Text
    line1: Text
    line2: OptionalText = None
    city: City
    region: OptionalText = None
    postal_code: PostalCode
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2 code"
    )


class PaymentIn(Strict):
    # Provider tokens are opaque printable ASCII ("tok_visa").
    token: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[!-~]+$")]


class OrderIn(Strict):
    items: list[ItemIn] = Field(min_length=1, max_length=MAX_LINES)
    shipping_address: AddressIn
    payment: PaymentIn

    @field_validator("items")
    @classmethod
    def _distinct_skus(cls, items: list[ItemIn]) -> list[ItemIn]:
        skus = [i.sku for i in items]
        duplicates = sorted({s for s in skus if skus.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate sku: {', '.join(duplicates)} (sum the quantities instead)")
        return items


class MoneyOut(BaseModel):
    amount: int = Field(description="integer minor units (cents)")
    currency: str


class LineOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: MoneyOut
    line_total: MoneyOut


class TimelineEntryOut(BaseModel):
    seq: int
    type: str
    status: str
    previous_status: str | None
    reason: str | None
    actor: str
    at: datetime


class OrderOut(BaseModel):
    id: str
    status: str
    status_reason: str | None
    customer_id: str
    lines: list[LineOut]
    total: MoneyOut
    shipping_address: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    timeline: list[TimelineEntryOut] | None = None


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class ProductOut(BaseModel):
    sku: str
    name: str
    price: MoneyOut
    available: int


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


class CancelIn(Strict):
    reason: Annotated[str, StringConstraints(max_length=500, pattern=PROSE)] = (
        "requested by customer"
    )


class FailedAttemptOut(BaseModel):
    attempt: int
    outcome: str
    error: str
    failed_at: datetime | None


class DeadLetterOut(BaseModel):
    id: str  # "<group>/<position>": the path under /api/v1/admin/dead-letters
    group: str
    position: int
    topic: str
    order_id: str | None
    message_id: str
    message_type: str | None
    attempts: int
    reason: str


class DeadLetterDetailOut(DeadLetterOut):
    payload: Any
    order_status: str | None
    attempt_log: list[FailedAttemptOut]


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None


class ReplayOut(BaseModel):
    id: str
    # replayed: delivered again as it was; resumed: its failed order went back to pending first;
    # restarted: its failed order starts over with a new reservation (the letter was removed)
    outcome: Literal["replayed", "resumed", "restarted"]
