"""The streaming path: Pub/Sub ``response-events`` -> Bigtable (facts, aggregates, dedup),
plus the raw warehouse sink. See docs/streaming.md.

    from pulse_local.streaming import consume
    report = consume(settings, idle_timeout=5)   # drain mode, e.g. from a Prefect flow

Google clients are imported only when a function needs them.
"""

from __future__ import annotations

from pulse_local.streaming.consumer import (
    Consumer,
    ConsumeReport,
    consume,
    serve,
    sink_for,
)
from pulse_local.streaming.options import DeadLetterConfig, StreamingOptions, dead_letter_config
from pulse_local.streaming.sink import (
    LocalParquetSink,
    NullRawEventSink,
    RawEventSink,
    RawMessage,
    ensure_views,
    raw_events_dir,
    read_raw,
)
from pulse_local.streaming.status import consumer_ready, status_path

__all__ = [
    "ConsumeReport",
    "Consumer",
    "DeadLetterConfig",
    "LocalParquetSink",
    "NullRawEventSink",
    "RawEventSink",
    "RawMessage",
    "StreamingOptions",
    "consume",
    "consumer_ready",
    "dead_letter_config",
    "ensure_views",
    "raw_events_dir",
    "read_raw",
    "serve",
    "sink_for",
    "status_path",
]
