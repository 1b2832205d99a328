"""Settings, read from ORDERFLOW_* environment variables (and CLI flags, which override them).

Nothing here runs at import time: `Settings()` is built in bootstrap or the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# URL schemes people copy (hosting providers give `postgres://...`), and the async driver each
# means here: the engines are asynchronous, so a synchronous driver in the URL means the same.
_DATABASE_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
}


def normalise_database_url(url: str, setting: str) -> str:
    """`url` with the async driver of its database; ValueError naming `setting` (never the URL,
    which may hold a password) if no engine here can use it. Empty stays empty (the default)."""
    if not url:
        return url
    scheme, separator, rest = url.partition("://")
    driver = _DATABASE_DRIVERS.get(scheme.lower()) if separator else None
    if driver is None:
        shown = f"'{scheme}'" if separator and scheme.isascii() and len(scheme) < 40 else "none"
        raise ValueError(
            f"{setting} is not a usable database URL (scheme {shown}): use"
            " postgresql://user:password@host:5432/name or sqlite:///path/to/file.db"
        )
    return f"{driver}://{rest}"


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite database URL (resolved), None for any other database or memory."""
    scheme, _, rest = database_url.partition(":///")
    path = rest.partition("?")[0]
    if not scheme.startswith("sqlite") or not path or path == ":memory:":
        return None
    return Path(path).resolve()


def embedded_broker_file(broker_url: str) -> Path | None:
    """The file of an embedded broker URL (resolved), None for any other engine."""
    scheme, _, rest = broker_url.partition("://")
    path = rest.partition("?")[0]
    return Path("/" + path.lstrip("/")).resolve() if scheme == "embedded" and path else None


class RetryPolicySettings(BaseModel):
    """A consumer group's retry policy; what is left out comes from the general settings."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int | None = Field(None, ge=1)
    base_delay: float | None = Field(None, gt=0)
    max_delay: float | None = Field(None, gt=0)


WatchedStatus = Literal["pending", "reserved", "paid"]
_WATCHED: tuple[WatchedStatus, ...] = ("pending", "reserved", "paid")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("var")
    database_url: str = Field("", description="SQLAlchemy URL; default: SQLite in data_dir")
    broker_url: str = Field("", description="embedded:///path, nats://..., amqp://...")
    broker_prefix: str = Field("orderflow", description="prefix for topics, streams and queues")
    broker_partitions: int = Field(
        0,
        ge=0,
        description="shards per topic on NATS/RabbitMQ (0: the engine's default); every process"
        " of a deployment must use the same number",
    )

    host: str = "127.0.0.1"
    port: int = 8080  # the public port: the gateway
    api_port: int = 8081  # internal: only the gateway talks to it
    stream_port: int = 8082  # internal: the stream service and the storefront page
    health_port: int = Field(
        0, description="/healthz, /readyz and /metrics of a worker or relay (0: off)"
    )
    workers_port: int = 8083  # internal: health and /metrics of `orderflow run`'s workers
    # Every HTTP server (gateway, API, stream) answers 431 past these (web/header_limits.py).
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="request line and header fields of one request, bytes"
    )
    max_header_count: int = Field(100, ge=16, description="header fields of one request")

    identity_keys_dir: Path = Field(
        Path(""), description="gateway signing keys; default data_dir/keys"
    )
    identity_jwks_file: Path = Field(Path(""), description="public keys backends trust")

    payment_simulator_path: Path = Field(Path(""), description="the simulated provider's ledger")
    # Every provider call is bounded; a provider failing this many calls in a row is not called
    # (its circuit is open) for payment_breaker_reset seconds, then tried again.
    payment_timeout: float = Field(10.0, gt=0, description="seconds one provider call may take")
    payment_breaker_threshold: int = Field(5, gt=0)
    payment_breaker_reset: float = Field(30.0, gt=0)

    # Pipeline tuning.
    max_attempts: int = Field(5, ge=1, description="deliveries of a failing message, then DLQ")
    retry_base_delay: float = Field(0.2, gt=0, description="seconds before a first redelivery")
    retry_max_delay: float = Field(30.0, gt=0, description="cap of the growing redelivery delay")
    retry_policies: dict[str, RetryPolicySettings] = Field(
        default_factory=dict,
        description='one consumer group\'s own, e.g. {"payment": {"max_attempts": 8}}',
    )
    ack_wait: float = 30.0
    batch_size: int = 200
    # Orders waiting for the API's next commit; beyond it, POST answers 503 with Retry-After.
    intake_max_waiting: int = 4096
    db_pool_size: int = 10
    # Every wait on the order database is bounded (adapters/db/engine.Timeouts), in seconds.
    db_lock_timeout: float = Field(30.0, gt=0, description="a write waiting for a lock")
    db_statement_timeout: float = Field(60.0, gt=0, description="one PostgreSQL statement")
    db_connect_timeout: float = Field(10.0, gt=0, description="opening a connection")
    db_migration_timeout: float = Field(300.0, gt=0, description="a migration's lock and steps")
    # Self-protection (issue 11): reservation expiry, the stuck-order watchdog, backpressure.
    reservation_ttl: float = Field(
        900.0, gt=0, description="seconds stock stays reserved for an order that is not paid"
    )
    watchdog_deadlines: dict[WatchedStatus, PositiveFloat] = Field(
        default_factory=lambda: dict.fromkeys(_WATCHED, 120.0),
        description="seconds an order may stay unmoved per status before its step is sent"
        " again (JSON; a status left out is not watched)",
    )
    watchdog_redrives: int = Field(3, ge=0, description="re-drives before a stuck order fails")
    backlog_max: int = Field(
        20_000,
        ge=0,
        description="outbox rows plus orders in flight beyond which POST answers 429 (0: off)",
    )
    backlog_refresh: float = Field(0.2, gt=0, description="seconds between backlog readings")
    processed_retention: float = Field(
        8 * 24 * 3600.0,
        gt=0,
        description="seconds a consumer remembers an applied message id (beyond any broker's "
        "redelivery horizon: NATS streams keep messages 7 days)",
    )

    # The stream service (live status over WebSocket/SSE).
    stream_buffer: int = Field(
        256, gt=0, description="changes queued per client before it is dropped"
    )
    stream_heartbeat: float = Field(15.0, gt=0, description="seconds between heartbeats")
    stream_replay_window: float = Field(
        24 * 3600.0, gt=0, description="seconds of history a resume may ask for"
    )
    stream_max_replay: int = Field(1000, gt=0, description="changes one resume may send")
    stream_group_expiry: float = Field(
        60.0, gt=0, description="seconds after which a dead stream process's broker group is gone"
    )

    log_level: str = "INFO"
    log_json: bool | None = Field(None, description="JSON lines; default: unless on a terminal")
    seed_demo_catalog: bool = True

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, url: str) -> str:
        return normalise_database_url(url, "ORDERFLOW_DATABASE_URL (--database-url)")

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        data = self.data_dir
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{data / 'orderflow.db'}"
        if not self.broker_url:
            # On SQLite the embedded broker keeps its tables in the database's own file: one
            # WAL orders every commit of the pipeline, so only commits answered to a client
            # need to wait for the disk (see `pipeline_in_one_file`).
            database_file = sqlite_file(self.database_url)
            broker_file = database_file or (data / "broker.db").resolve()
            suffix = "?synchronous=normal" if database_file else ""
            self.broker_url = f"embedded://{broker_file}{suffix}"
        if self.identity_keys_dir == Path(""):
            self.identity_keys_dir = data / "keys"
        if self.identity_jwks_file == Path(""):
            self.identity_jwks_file = self.identity_keys_dir / "identity.jwks.json"
        if self.payment_simulator_path == Path(""):
            self.payment_simulator_path = data / "payment-simulator.db"
        return self

    @property
    def pipeline_in_one_file(self) -> bool:
        """The database is SQLite and the embedded broker keeps its tables in the same file.

        Then a power loss takes the whole file back to how it was after some commit, broker and
        application tables alike, which the pipeline resumes from (a lost step is redone, a lost
        ack redelivers into the consumers' dedup). So only the API's commits, answered with a
        202, wait for the disk; the workers' and the broker's do not, which takes the fsync
        (~5 ms each, a dozen per order) off the hot path. With two files, one could keep a step
        the other lost: every commit then waits for the disk."""
        database_file = sqlite_file(self.database_url)
        return database_file is not None and database_file == embedded_broker_file(self.broker_url)
