"""Adapters: everything that does I/O, each behind a port."""
