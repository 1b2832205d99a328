"""The web layer shared by the order API and the gateway."""
