"""Machinery every broker-driven service shares: the consumer loop and the outbox relay."""
