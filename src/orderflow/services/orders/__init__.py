"""The order service: owner of the saga."""
