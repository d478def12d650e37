"""Prometheus metrics, one registry per app (no process-wide collectors)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "realtime_connections", "Socket.IO connections on this node", registry=self.registry
        )
        self.stored = Counter(
            "realtime_messages_stored", "Messages stored by this process", registry=self.registry
        )
        self.sent = Counter(
            "realtime_messages_sent", "Live messages sent, per connection", registry=self.registry
        )
        self.replayed = Counter(
            "realtime_messages_replayed", "Messages sent in replays", registry=self.registry
        )
        self.refused = Counter(
            "realtime_connections_refused",
            "Connections refused at connect",
            ["reason"],
            registry=self.registry,
        )
        self.channel_dropped = Counter(
            "realtime_channel_dropped",
            "Messages on the Redis channel that are not the service's, dropped",
            ["reason"],
            registry=self.registry,
        )
        self.channel_unsigned = Counter(
            "realtime_channel_unsigned",
            "Unsigned or wrongly signed stream messages, delivered from the store instead",
            registry=self.registry,
        )
        self.latency = Histogram(
            "realtime_publish_to_send_seconds",
            "From a message being stored to this node sending it",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
