"""The order database schema (SQLAlchemy Core). Alembic migrations are generated from it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Identifiers are UUIDs stored as 36-character text: portable between SQLite and PostgreSQL.
Id = String(36)
# Timestamps are stored in UTC.
Timestamp = DateTime(timezone=True)

customers = Table(
    "customers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320)),
    Column("created_at", Timestamp, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("price_amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    CheckConstraint("price_amount >= 0", name="price_not_negative"),
)

warehouses = Table(
    "warehouses",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
)

stock = Table(
    "stock",
    metadata,
    Column("sku", String(64), ForeignKey("products.sku"), primary_key=True),
    Column("warehouse", String(32), ForeignKey("warehouses.code"), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, default=0),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("on_hand >= reserved", name="reserved_within_on_hand"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", Id, primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("warehouse", String(32), primary_key=True),
    Column("quantity", Integer, nullable=False),
    # held -> committed (stock left the building) or released (back on the shelf)
    Column("status", String(16), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("status_reason", Text),
    Column("version", Integer, nullable=False),
    # Comma-separated: what a cancelled or failed order has already had undone (stock, payment).
    Column("compensated", String(40), nullable=False, server_default=""),
    Column("total_amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("payment_token", String(200), nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("idempotency_key", String(200)),
    Column("request_hash", String(64)),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("customer_id", "idempotency_key", name="uq_orders_idempotency"),
    Index("ix_orders_customer_page", "customer_id", "created_at", "id"),
    Index("ix_orders_status", "status"),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_amount", BigInteger, nullable=False),
    Column("line_amount", BigInteger, nullable=False),
)

order_events = Table(
    "order_events",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("type", String(40), nullable=False),
    Column("status", String(20), nullable=False),  # the order's status after this event
    Column("previous_status", String(20)),
    Column("reason", Text),
    Column("actor", String(64), nullable=False),
    Column("at", Timestamp, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("idempotency_key", String(100), primary_key=True),
    Column("order_id", Id, nullable=False, index=True),
    Column("kind", String(10), nullable=False),  # capture | refund
    Column("provider_reference", String(100), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", Id, nullable=False, unique=True),
    Column("topic", String(100), nullable=False),
    Column("key", String(100), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

# Every failed attempt at a message, with its error (ports/attempts.py): what `dlq show` lists.
message_attempts = Table(
    "message_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer_group", String(64), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error", Text, nullable=False),
    Column("failed_at", Timestamp, nullable=False),
    Index("ix_message_attempts_message", "consumer_group", "message_id"),
)

processed_messages = Table(
    "processed_messages",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("message_id", String(64), primary_key=True),
    Column("processed_at", Timestamp, nullable=False),
    Index("ix_processed_messages_processed_at", "processed_at"),
)
