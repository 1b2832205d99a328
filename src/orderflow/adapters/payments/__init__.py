"""Payment provider adapters."""
