"""The gateway's own settings (`ORDERFLOW_GATEWAY_*`); shared paths come from `orderflow.config`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orderflow.config import Settings, normalise_database_url


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_GATEWAY_", extra="ignore")

    database_url: str = Field("", description="SQLAlchemy URL; default: data_dir/gateway.db")
    access_keys_dir: Path = Field(
        Path(""), description="access-token signing keys; default identity_keys_dir/access"
    )

    access_token_ttl: int = Field(15 * 60, gt=0, description="seconds")
    refresh_token_ttl: int = Field(14 * 24 * 3600, gt=0, description="seconds")
    # Backends cache verification per assertion, so reusing one for most of its 60 s is cheap;
    # it is replaced while it still has at least `assertion_ttl - assertion_reuse` seconds left.
    assertion_reuse: int = Field(40, ge=0, lt=60)
    # A key revoked through another gateway process still works there for up to this long.
    api_key_cache_seconds: float = Field(0.5, ge=0)
    # How stale a process's view of an account (disabled, deleted) may be: services/gateway/
    # account_state.py. Also how soon other processes refuse a disabled account.
    account_state_max_age: float = Field(0.5, ge=0, le=5)

    routes_file: Path | None = Field(None, description="JSON or TOML route table")
    api_upstream: str = "http://127.0.0.1:8081"
    stream_upstream: str = "http://127.0.0.1:8082"  # /ws, /events and the storefront

    cors_origins: list[str] = Field(
        default_factory=list, description='JSON list, e.g. ["https://a"]'
    )
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    write_timeout: float = 30.0
    pool_timeout: float = 5.0
    max_connections: int = 512
    hsts: bool = Field(False, description="send Strict-Transport-Security (behind TLS only)")
    trust_forwarded_for: bool = Field(False, description="take the client IP from X-Forwarded-For")

    # Logins and registrations: services/gateway/rate_limit.py says what each limit is for.
    login_ip_limit: int = 30
    login_ip_window: float = 60.0
    login_client_limits: list[tuple[int, float]] = Field(
        default_factory=lambda: [(5, 60.0), (10, 900.0), (20, 3600.0)],
        description="(attempts, seconds) tiers per account and client, JSON: [[5, 60], ...]",
    )
    login_account_limit: int = Field(20, ge=1, description="attempts per account, all clients")
    login_account_window: float = 60.0
    register_ip_limit: int = 10
    register_ip_window: float = 3600.0
    register_account_limit: int = Field(5, description="registrations per email per window")
    rate_limit_storage: str = Field(
        "memory://",
        description="memory:// (each process on its own) or redis://host:6379/0 (shared)",
    )
    rate_limit_prefix: str = Field("orderflow", description="prefix of the keys in Redis")

    argon2_time_cost: int = 3
    argon2_memory_cost: int = Field(64 * 1024, description="KiB")
    argon2_parallelism: int = 4
    password_min_length: int = 8

    @field_validator("login_client_limits")
    @classmethod
    def _usable_tiers(cls, tiers: list[tuple[int, float]]) -> list[tuple[int, float]]:
        if any(amount < 1 or window <= 0 for amount, window in tiers):
            raise ValueError("each tier is [attempts >= 1, seconds > 0]")
        return tiers

    @field_validator("rate_limit_storage")
    @classmethod
    def _usable_rate_limit_storage(cls, url: str) -> str:
        # Not echoed back: a Redis URL may hold a password.
        if url.partition("://")[0] not in ("memory", "redis", "rediss"):
            raise ValueError(
                "ORDERFLOW_GATEWAY_RATE_LIMIT_STORAGE must start with memory://, redis:// or"
                " rediss://"
            )
        return url

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, url: str) -> str:
        return normalise_database_url(url, "ORDERFLOW_GATEWAY_DATABASE_URL")

    def resolved(self, settings: Settings) -> GatewaySettings:
        """A copy with the paths that default to locations under the shared settings filled in."""
        update: dict[str, object] = {}
        if not self.database_url:
            update["database_url"] = f"sqlite+aiosqlite:///{settings.data_dir / 'gateway.db'}"
        if self.access_keys_dir == Path(""):
            update["access_keys_dir"] = settings.identity_keys_dir / "access"
        return self.model_copy(update=update)

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> GatewaySettings:
        # A wildcard origin with credentials-bearing requests lets any site drive a user's session.
        if "*" in self.cors_origins:
            raise ValueError("cors_origins must list origins explicitly, not '*'")
        return self
