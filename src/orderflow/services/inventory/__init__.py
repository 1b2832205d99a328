"""The inventory service: reservations against multi-warehouse stock."""
