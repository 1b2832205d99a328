"""The stream service: order status changes pushed live over WebSocket (`/ws`) and SSE
(`/events`), resumable by event id, fanned out through the broker to every stream process."""

from orderflow.services.stream.app import create_stream_app
from orderflow.services.stream.context import StreamContext
from orderflow.services.stream.feed import StatusFeed, instance_spec
from orderflow.services.stream.hub import Hub
from orderflow.services.stream.opening import Limits

__all__ = ["Hub", "Limits", "StatusFeed", "StreamContext", "create_stream_app", "instance_spec"]
