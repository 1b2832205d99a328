"""Observability: the process's Prometheus metrics (metrics.py) and their exposition."""
