"""OrderFlow: real-time order processing backend."""

__version__ = "0.1.0"
