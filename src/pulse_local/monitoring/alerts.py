"""Alerts for failed checks, sent to every configured `AlertSink`.

Sinks are chosen by configuration, never by profile (environment ``PULSE_ALERT_<FIELD>``):

* ``PULSE_ALERT_SINKS`` (default ``log,file``): ``log`` (Python logging, logger
  ``pulse_local.monitoring.alerts``), ``file`` (JSON lines in ``<state_dir>/alerts/alerts.jsonl``),
  ``webhook``;
* ``PULSE_ALERT_WEBHOOK_URL``: a Slack-compatible incoming webhook; setting it adds the webhook
  sink (one POST of ``{"text": ...}`` per monitoring run, retried with backoff on network
  errors, 429 and 5xx).

A sink that fails is logged with its cause and reported in `AlertOutcome.failed`; the other
sinks still receive the alerts.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pulse_local.config import Settings, load_options
from pulse_local.errors import ConfigError, PulseError
from pulse_local.monitoring.report import CheckResult, MonitorReport, format_time

log = logging.getLogger("pulse_local.monitoring.alerts")

SINK_NAMES = ("log", "file", "webhook")
#: Slack accepts up to 40,000 characters of text; stay well below.
MAX_WEBHOOK_TEXT = 30_000


class AlertDeliveryError(PulseError):
    """An alert sink could not deliver (the message names the sink and the cause)."""


@dataclass(frozen=True)
class Alert:
    """One failed check, as told to a human: what is wrong, since when, where to look."""

    check: str
    severity: str
    what: str
    since: datetime | None
    where_to_look: str
    detected_at: datetime

    @classmethod
    def from_check(cls, result: CheckResult, detected_at: datetime) -> Alert:
        return cls(result.name, result.severity, result.detail, result.since,
                   result.where_to_look, detected_at)

    def text(self) -> str:
        """One line, e.g. ``[ERROR] freshness:raw.responses: newest row 3 h old ...;
        since 2024-09-05 10:00:00Z; look at: `pulse-local logs cdc```. A notice (severity
        ``info``, e.g. a flow succeeded) is ``[INFO] <check>: <what>``."""
        if self.severity == "info":
            return f"[INFO] {self.check}: {self.what}"
        since = (format_time(self.since) if self.since
                 else f"unknown (detected {format_time(self.detected_at)})")
        where = f"; look at: {self.where_to_look}" if self.where_to_look else ""
        return f"[{self.severity.upper()}] {self.check}: {self.what}; since {since}{where}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check, "severity": self.severity, "what": self.what,
            "since": self.since.isoformat() if self.since else None,
            "where_to_look": self.where_to_look, "detected_at": self.detected_at.isoformat(),
            "text": self.text(),
        }


def alerts_for(checks: MonitorReport | Iterable[CheckResult],
               detected_at: datetime | None = None) -> list[Alert]:
    """An alert per failed check (errors and warnings)."""
    if isinstance(checks, MonitorReport):
        detected_at = detected_at or checks.checked_at
        checks = checks.checks
    at = detected_at or datetime.now(UTC)
    return [Alert.from_check(c, at) for c in checks if not c.ok]


class AlertSink(Protocol):
    """Capability: deliver alerts somewhere a human will see them."""

    name: str

    def send(self, alerts: Sequence[Alert]) -> None:
        """Deliver every alert, or raise saying why not."""
        ...


class LogSink:
    """Alerts as log records: ERROR for errors, WARNING for warnings."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or log

    def send(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            level = {"error": logging.ERROR, "warning": logging.WARNING}.get(alert.severity,
                                                                             logging.INFO)
            self.logger.log(level, "%s", alert.text())


class FileSink:
    """Alerts appended as JSON lines (one object per alert) to `path`."""

    name = "file"
    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def send(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        lines = "".join(json.dumps(a.as_dict(), ensure_ascii=False) + "\n" for a in alerts)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/…``: webhook URLs carry their secret in the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path not in ("", "/") else url


class _Retryable(Exception):
    pass


class WebhookSink:
    """One POST of ``{"text": ...}`` (Slack's incoming-webhook shape) per `send`."""

    name = "webhook"

    def __init__(self, url: str, *, timeout: float = 5.0, attempts: int = 3,
                 backoff: float = 0.5) -> None:
        self.url, self.timeout, self.attempts, self.backoff = url, timeout, attempts, backoff

    def payload(self, alerts: Sequence[Alert]) -> dict[str, str]:
        errors = sum(1 for a in alerts if a.severity == "error")
        warnings = sum(1 for a in alerts if a.severity == "warning")
        if errors or warnings:
            head = f"pulse-local monitoring: {errors} errors, {warnings} warnings"
            text = "\n".join([head, *(f"• {a.text()}" for a in alerts)])
        else:
            text = "\n".join(a.text() for a in alerts)
        if len(text) > MAX_WEBHOOK_TEXT:
            text = text[: MAX_WEBHOOK_TEXT - 40] + "\n… (truncated; see the alert file)"
        return {"text": text}

    def send(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        import httpx
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential,
        )

        body = self.payload(alerts)

        def post() -> None:
            try:
                response = httpx.post(self.url, json=body, timeout=self.timeout)
            except httpx.TransportError as exc:
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}")
            if response.status_code >= 300:
                raise AlertDeliveryError(
                    f"webhook {redact_url(self.url)} refused the alert: HTTP "
                    f"{response.status_code}: {response.text[:200]} (check "
                    "PULSE_ALERT_WEBHOOK_URL)")

        retrying = Retrying(stop=stop_after_attempt(self.attempts),
                            wait=wait_exponential(multiplier=self.backoff, max=8),
                            retry=retry_if_exception_type(_Retryable), reraise=False)
        try:
            retrying(post)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise AlertDeliveryError(
                f"webhook {redact_url(self.url)} failed after {self.attempts} attempts: "
                f"{cause}") from None


class AlertOptions(BaseSettings):
    """Which sinks receive alerts (environment ``PULSE_ALERT_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="PULSE_ALERT_", env_file=".env", extra="ignore")

    sinks: str = Field("log,file", description="Comma-separated: log, file, webhook.")
    webhook_url: str | None = Field(None, description="Slack-compatible incoming webhook URL; "
                                                      "setting it enables the webhook sink.")
    webhook_timeout: float = Field(5.0, gt=0)
    webhook_attempts: int = Field(3, ge=1, le=10)

    def sink_names(self) -> list[str]:
        names = [n.strip().lower() for n in self.sinks.split(",") if n.strip()]
        unknown = [n for n in names if n not in SINK_NAMES]
        if unknown:
            raise ConfigError(f"PULSE_ALERT_SINKS: unknown sink(s) {', '.join(unknown)}; "
                              f"use {', '.join(SINK_NAMES)}")
        if self.webhook_url and "webhook" not in names:
            names.append("webhook")
        if "webhook" in names and not self.webhook_url:
            raise ConfigError("PULSE_ALERT_SINKS lists webhook but PULSE_ALERT_WEBHOOK_URL is "
                              "not set: set the URL (or drop webhook from the list)")
        return list(dict.fromkeys(names))


def alerts_path(settings: Settings) -> Path:
    """``<state_dir>/alerts/alerts.jsonl``."""
    return settings.state_dir / "alerts" / "alerts.jsonl"


def sinks_for(settings: Settings, options: AlertOptions | None = None) -> list[AlertSink]:
    """The configured sinks (default: log + file; + webhook when a URL is set)."""
    options = options or load_options(AlertOptions)
    sinks: list[AlertSink] = []
    for name in options.sink_names():
        if name == "log":
            sinks.append(LogSink())
        elif name == "file":
            sinks.append(FileSink(alerts_path(settings)))
        else:
            assert options.webhook_url is not None
            sinks.append(WebhookSink(options.webhook_url, timeout=options.webhook_timeout,
                                     attempts=options.webhook_attempts))
    return sinks


@dataclass
class AlertOutcome:
    """Which sinks took the alerts and which failed (with the cause)."""

    alerts: int = 0
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        failed = "; ".join(f"{k} failed: {v}" for k, v in self.failed.items())
        return (f"{self.alerts} alerts sent to {', '.join(self.sent) or 'no sink'}"
                + (f"; {failed}" if failed else ""))


def send_alerts(alerts: Sequence[Alert], sinks: Sequence[AlertSink]) -> AlertOutcome:
    """Give the alerts to every sink; a failing sink is logged with its cause and does not stop
    the others. Nothing is sent when there are no alerts."""
    outcome = AlertOutcome(alerts=len(alerts))
    if not alerts:
        return outcome
    for sink in sinks:
        try:
            sink.send(alerts)
        except Exception as exc:  # noqa: BLE001 - reported below and in the outcome
            cause = str(exc) if isinstance(exc, PulseError) else f"{type(exc).__name__}: {exc}"
            log.error("alert sink %s could not deliver %d alerts: %s", sink.name, len(alerts),
                      cause)
            outcome.failed[sink.name] = cause
        else:
            outcome.sent.append(sink.name)
    return outcome


def _step_line(summary: Mapping[str, Any]) -> str:
    steps = summary.get("steps")
    if not isinstance(steps, list):
        return ""
    parts = []
    for step in steps:
        if isinstance(step, Mapping) and "name" in step:
            seconds = step.get("seconds")
            parts.append(f"{step['name']} {seconds} s" if seconds is not None else str(step["name"]))
    return ", ".join(parts)


def notify_success(settings: Settings, flow: str, summary: Mapping[str, Any], *,
                   sinks: Sequence[AlertSink] | None = None) -> AlertOutcome:
    """Tell the configured sinks that `flow` succeeded (an ``info`` notice listing its steps
    and their seconds when `summary` has ``steps``). A failing sink is logged with its cause
    and reported in the outcome, as for alerts."""
    steps = _step_line(summary)
    notice = Alert(check=flow, severity="info",
                   what=f"succeeded{': ' + steps if steps else ''}", since=None,
                   where_to_look="", detected_at=datetime.now(UTC))
    return send_alerts([notice], sinks if sinks is not None else sinks_for(settings))
