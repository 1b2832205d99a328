"""Wake-up adapters: Unix datagram sockets on one machine, LISTEN/NOTIFY on PostgreSQL."""

from orderflow.adapters.wakeup.postgres import PostgresWakeup
from orderflow.adapters.wakeup.unix_sockets import UnixSocketWakeup

__all__ = ["PostgresWakeup", "UnixSocketWakeup"]
