"""Streaming: the consumer's heartbeat, source-to-sink lag and the dead-letter backlog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pulse_local.monitoring.config import (
    ConsumerSpec,
    DeadLetterSpec,
    MonitorConfig,
    StreamingLagSpec,
)
from pulse_local.monitoring.dead_letters import DeadLetterPeek
from pulse_local.monitoring.groups.common import (
    as_utc,
    could_not,
    limit_text,
    single_value,
)
from pulse_local.monitoring.probes import Probes
from pulse_local.monitoring.report import CheckResult, format_age, format_time


def evaluate_consumer_status(spec: ConsumerSpec, status: dict[str, Any] | None, now: datetime,
                             path: str = "") -> CheckResult:
    """The consumer's status file: present, fresh heartbeat, subscribed, not stopped."""
    name = "streaming:consumer"
    where = spec.where_to_look or "`pulse-local logs streaming`"
    if status is None:
        return CheckResult(name, False, "error",
                           f"the streaming consumer has never reported (no status file {path})",
                           None, where, "streaming")
    updated = as_utc(datetime.fromtimestamp(float(status.get("updated_at", 0)), UTC))
    assert updated is not None
    age = now - updated
    counts = (f"received {status.get('received', 0)}, written {status.get('written', 0)}, "
              f"dead-lettered {status.get('dead_lettered', 0)}, in flight "
              f"{status.get('in_flight', 0)}")
    errors = status.get("errors") or []
    last_error = f"; last error: {str(errors[-1])[:200]}" if errors else ""
    if status.get("stopped"):
        return CheckResult(name, False, "error", f"the consumer (pid {status.get('pid')}) "
                           f"stopped at {format_time(updated)} ({counts}){last_error}",
                           updated, where, "streaming")
    if age > spec.heartbeat_error_after:
        return CheckResult(name, False, "error", f"heartbeat {format_age(age)} old (> "
                           f"{limit_text(spec.heartbeat_error_after)}): the consumer (pid "
                           f"{status.get('pid')}) is stuck or gone ({counts}){last_error}",
                           updated, where, "streaming")
    if not status.get("subscribed"):
        return CheckResult(name, False, "error", "the consumer runs but has no open stream "
                           f"(Pub/Sub down or subscription missing){last_error}", updated,
                           where, "streaming")
    return CheckResult(name, True, "info", f"alive, heartbeat {format_age(age)} ago; {counts}"
                       f"{last_error}", None, where, "streaming")


def evaluate_streaming_lag(spec: StreamingLagSpec, source_newest: Any, sink_newest: Any,
                           now: datetime) -> CheckResult:
    """Newest event accepted at the source minus the newest message in the raw sink."""
    name = "streaming:lag"
    where = spec.where_to_look or "`pulse-local logs streaming`; table raw.pubsub_response_events"
    accepted, sunk = as_utc(source_newest), as_utc(sink_newest)
    if accepted is None:
        return CheckResult(name, True, "info", "no event accepted at the source yet", None,
                           where, "streaming")
    behind = (accepted - sunk) if sunk is not None else (now - accepted)
    behind = max(behind, timedelta(0))
    measured = (f"newest accepted event {format_time(accepted)}, newest message in the raw "
                f"sink {format_time(sunk) if sunk else 'none'}: {format_age(behind)} behind")
    since = sunk or accepted
    if spec.error_after and behind > spec.error_after:
        return CheckResult(name, False, "error", f"{measured} (> {limit_text(spec.error_after)})",
                           since, where, "streaming")
    if spec.warn_after and behind > spec.warn_after:
        return CheckResult(name, False, "warning",
                           f"{measured} (> {limit_text(spec.warn_after)})", since, where,
                           "streaming")
    return CheckResult(name, True, "info", measured, None, where, "streaming")


def evaluate_dead_letters(spec: DeadLetterSpec, peek: DeadLetterPeek) -> CheckResult:
    """The dead-letter backlog against the depth thresholds."""
    name = "streaming:dead_letters"
    where = spec.where_to_look or (
        f"subscription {peek.subscription} (`gcloud pubsub subscriptions pull "
        f"{peek.subscription}`, attributes reason/reason_detail); `pulse-local logs streaming`")
    count = f"{peek.count}{'+' if peek.capped else ''}"
    if peek.count == 0:
        return CheckResult(name, True, "info", f"no dead letters in {peek.subscription}", None,
                           where, "streaming")
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(peek.reasons.items()))
    detail = (f"{count} dead-lettered messages in {peek.subscription} (reasons: {reasons}), "
              f"oldest published {format_time(peek.oldest) if peek.oldest else 'unknown'}")
    if spec.error_depth is not None and peek.count >= spec.error_depth:
        return CheckResult(name, False, "error", detail, peek.oldest, where, "streaming")
    if spec.warn_depth is not None and peek.count >= spec.warn_depth:
        return CheckResult(name, False, "warning", detail, peek.oldest, where, "streaming")
    return CheckResult(name, True, "info", detail, None, where, "streaming")


def streaming_checks(config: MonitorConfig, probes: Probes) -> list[CheckResult]:
    spec = config.streaming
    results: list[CheckResult] = []
    if spec.consumer is not None:
        try:
            status = probes.consumer_status()
            results.append(evaluate_consumer_status(spec.consumer, status, probes.now(),
                                                    probes.consumer_status_path))
        except Exception as exc:  # noqa: BLE001
            results.append(could_not("streaming:consumer", "streaming", exc,
                                     spec.consumer.where_to_look))
    if spec.lag is not None:
        try:
            accepted = probes.source.snapshot({"accepted": spec.lag.source}).values["accepted"]
            sunk = single_value(probes.warehouse(spec.lag.warehouse))
            results.append(evaluate_streaming_lag(spec.lag, accepted, sunk, probes.now()))
        except Exception as exc:  # noqa: BLE001
            results.append(could_not("streaming:lag", "streaming", exc, spec.lag.where_to_look))
    if spec.dead_letters is not None:
        dl = spec.dead_letters
        try:
            subscription = dl.subscription or probes.default_dead_letter_subscription()
            peek = probes.dead_letters.peek(subscription, dl.max_count, dl.pull_timeout)
            results.append(evaluate_dead_letters(dl, peek))
        except Exception as exc:  # noqa: BLE001
            results.append(could_not("streaming:dead_letters", "streaming", exc,
                                     dl.where_to_look))
    return results
