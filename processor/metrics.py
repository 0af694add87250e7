"""Every metric of the contract, in a registry of the application's own (no global state, easy tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from .telemetry import REASONS

__all__ = ["AUTH_REASONS", "CONTENT_TYPE", "FRAME_TYPES", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
AUTH_REASONS = (
    "origin",
    "no_cookie",
    "invalid_cookie",
    "directus_unavailable",
    "directus_rate_limited",
    "share_session",
    "forbidden",
    "not_found",
    "unauthorized",
    "subprotocol",
)
FRAME_TYPES = ("subscribed", "position", "unsubscribed", "error", "correction")

disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves this one unannotated


class Metrics:
    """The Processor's metrics; label values are pre-created so that every series reads 0 from the start."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.orphans = Counter(
            "processor_live_broadcast_orphan_records", "Stored positions that routed to no event",
            registry=registry,
        )
        self.stored = Counter("processor_positions_stored", "Rows inserted by this instance", registry=registry)
        self.duplicates = Counter(
            "processor_positions_duplicate", "Valid positions not inserted because (device_id, ts) existed",
            registry=registry,
        )
        self.broadcast = Counter(
            "processor_positions_broadcast",
            "Positions received on the live channel for an event with at least one local subscriber",
            registry=registry,
        )
        self.frames_sent = Counter(
            "processor_frames_sent", "Frames queued to clients, by frame type", ["type"], registry=registry
        )
        self.dead_letter = Counter(
            "processor_dead_letter_entries", "Malformed entries dead-lettered", ["reason"], registry=registry
        )
        self.connections = Gauge("processor_websocket_connections", "Open WebSocket connections", registry=registry)
        self.subscriptions = Gauge(
            "processor_subscriptions", "Active (connection, event) subscriptions", registry=registry
        )
        self.auth_failures = Counter(
            "processor_auth_failures", "Rejected upgrades and subscribes", ["reason"], registry=registry
        )
        self.slow_consumers = Counter(
            "processor_slow_consumer_disconnects", "Clients closed with 1013", registry=registry
        )
        self.stream_lag = Gauge(
            "processor_stream_lag", "Entries in the stream not yet delivered to the group", registry=registry
        )
        self.stream_pending = Gauge(
            "processor_stream_pending", "Entries delivered to the group but not acknowledged", registry=registry
        )
        self.batch_seconds = Histogram(
            "processor_ingest_batch_seconds", "Time to store and acknowledge one batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        # Corrections (docs/processor.md section 6): database changes pushed through LISTEN/NOTIFY.
        self.corrections_sent = Counter(
            "processor_corrections_sent", "Correction frames queued to clients", registry=registry
        )
        self.correction_notifications = Counter(
            "processor_correction_notifications", "Notifications received on the corrections channel",
            registry=registry,
        )
        self.correction_notifications_bad = Counter(
            "processor_correction_notifications_bad", "Notifications on the corrections channel that were not "
            "understood (ignored)", registry=registry,
        )
        self.correction_listener_reconnects = Counter(
            "processor_correction_listener_reconnects",
            "Times the corrections listener connected again after losing its connection", registry=registry,
        )
        self.correction_listener_up = Gauge(
            "processor_correction_listener_up", "1 while the corrections listener is LISTENing, else 0",
            registry=registry,
        )
        self.snapshot_queries = Counter(
            "processor_snapshot_queries", "Snapshot queries run for subscribes (subscribes arriving together for the "
            "same event share one)", registry=registry,
        )
        # Falling behind the live channel (docs/processor.md section 5, "Falling behind").
        self.live_dispatch_lag = Gauge(
            "processor_live_dispatch_lag_seconds",
            "Age of the last live-channel message when this instance began dispatching it (now - its publish time)",
            registry=registry,
        )
        self.live_gaps = Counter(
            "processor_live_gaps", "Times live-channel messages were lost to this instance (a gap in a publisher's "
            "sequence numbers, or the channel subscribed again after a loss); each is followed by a resync",
            registry=registry,
        )
        self.live_behind_disconnects = Counter(
            "processor_live_behind_disconnects",
            "Fans closed with 1013 because this instance fell behind the live channel past its bound",
            registry=registry,
        )
        for kind in FRAME_TYPES:
            self.frames_sent.labels(kind)
        for reason in REASONS:
            self.dead_letter.labels(reason)
        for reason in AUTH_REASONS:
            self.auth_failures.labels(reason)

    def render(self) -> bytes:
        """The text exposition of this registry."""
        return generate_latest(self.registry)
