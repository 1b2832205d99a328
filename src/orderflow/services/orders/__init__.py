"""The order service: placing, cancelling, and the saga that applies every event to orders.

The order API (`services/api`) is this service's HTTP side and calls its use cases here."""
