"""`stream_events`: consume response events from Pub/Sub into Bigtable (and the raw sink) until
the subscription has been idle for a while, then report. The same consumer the stack's
`streaming` service runs continuously; both can run at once (events are deduplicated by id)."""

from __future__ import annotations

from prefect import flow, task

from pulse_local.config import load_settings


@task(name="consume-response-events")
def consume_until_idle(idle_seconds: float, max_messages: int | None) -> dict[str, object]:
    """Streaming pull with flow control; returns the consumer's report. Not retried: the
    consumer already reconnects with backoff, and a failure here has a cause to read."""
    from dataclasses import asdict

    from pulse_local.backends import use_profile
    from pulse_local.streaming import consume

    settings = load_settings()
    use_profile(settings)
    report = consume(settings, idle_timeout=idle_seconds, max_messages=max_messages)
    print(report.summary())
    if report.errors and report.received == 0:
        raise RuntimeError(f"the consumer could not read the subscription: {report.errors[-1]}; "
                           "check `pulse-local status` (pubsub, bigtable)")
    return asdict(report)


@flow(name="stream_events", log_prints=True)
def stream_events(idle_seconds: float = 3.0, max_messages: int | None = None) -> dict[str, object]:
    """Drain the response-events subscription into Bigtable; fail with the consumer's cause."""
    return consume_until_idle(idle_seconds, max_messages)
