"""The order API (FastAPI)."""
