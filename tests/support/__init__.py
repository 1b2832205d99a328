"""Helpers shared by the test layers: real services, processes, order data."""
