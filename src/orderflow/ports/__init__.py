"""Small Protocols that services depend on; adapters implement them."""
