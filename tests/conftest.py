"""Test layers: unit/ (pure), contract/ (broker engines), integration/ (real database and HTTP),
gateway/ (the gateway over real HTTP), e2e/ (the whole system as processes), distributed/
(PostgreSQL with NATS or RabbitMQ, every service a process)."""
