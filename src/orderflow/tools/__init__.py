"""Operator tools: the load generator."""
