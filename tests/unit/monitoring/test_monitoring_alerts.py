"""Unit: the report, alert formatting and the sinks.

The webhook sink is exercised against a real HTTP server started by the test on 127.0.0.1
(`Hook`, scripted status codes), standing in for Slack; the file sink writes a real file in a
temporary directory; the log sink goes through `logging` (caplog). A sink that raises is a fake
(`Broken`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.errors import ConfigError
from pulse_local.monitoring import (
    Alert,
    AlertDeliveryError,
    AlertOptions,
    CheckResult,
    ChecksFailed,
    FileSink,
    LogSink,
    MonitorReport,
    WebhookSink,
    alerts_for,
    alerts_path,
    notify_success,
    send_alerts,
    sinks_for,
)
from pulse_local.monitoring.alerts import redact_url
from pulse_local.monitoring.report import format_age

NOW = datetime(2024, 9, 5, 12, 0, tzinfo=UTC)
STALE = CheckResult("freshness:raw.responses", False, "error",
                    "newest row 3 h old (max(ts) = 2024-09-05 09:00:00Z), SLA error after 1h",
                    datetime(2024, 9, 5, 10, 0, tzinfo=UTC),
                    "`pulse-local logs cdc`", "freshness")
LATE = CheckResult("cdc:lag", False, "warning", "slot s active: 10 WAL bytes and 2 min behind",
                   None, "`python -m pulse_local.cdc lag`", "cdc")
FINE = CheckResult("streaming:dead_letters", True, "info", "no dead letters in dlq", None, "",
                   "streaming")


def report() -> MonitorReport:
    return MonitorReport([STALE, LATE, FINE], checked_at=NOW)


# ------------------------------------------------------------------ report

def test_report_ok_failures_and_summary() -> None:
    r = report()
    assert not r.ok
    assert r.failures == [STALE, LATE] and r.errors == [STALE] and r.warnings == [LATE]
    assert r.summary().splitlines() == [
        ("ERROR   freshness:raw.responses: newest row 3 h old (max(ts) = 2024-09-05 09:00:00Z), "
         "SLA error after 1h (since 2024-09-05 10:00:00Z)"),
        "WARNING cdc:lag: slot s active: 10 WAL bytes and 2 min behind",
        "ok      streaming:dead_letters: no dead letters in dlq",
        "3 checks: 1 ok, 1 warnings, 1 errors",
    ]
    assert MonitorReport([LATE, FINE]).ok  # warnings alone leave the pipeline healthy
    assert r.as_dict()["errors"] == [STALE.line()]
    with pytest.raises(KeyError, match="checks: freshness:raw.responses, cdc:lag"):
        r.check("nope")


def test_checks_failed_has_one_line_per_failed_check() -> None:
    with pytest.raises(ChecksFailed) as caught:
        report().raise_for_errors()
    assert str(caught.value) == (
        "1 monitoring check(s) failed:\n  - freshness:raw.responses: newest row 3 h old "
        "(max(ts) = 2024-09-05 09:00:00Z), SLA error after 1h (look at: `pulse-local logs cdc`)")
    MonitorReport([LATE]).raise_for_errors()  # no error: nothing raised


def test_format_age() -> None:
    assert [format_age(s) for s in (0.25, 45, 600, 3 * 3600 + 300, 50 * 3600)] == [
        "250 ms", "45 s", "10 min", "3 h 5 min", "2 d 2 h"]
    assert format_age(timedelta(seconds=-30)) == "-30 s"


def test_rich_table_renders_every_check() -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(report().rich_table())
    text = console.export_text()
    assert "freshness:raw.responses" in text and "cdc:lag" in text and "dead_letters" in text


# ------------------------------------------------------------------ alerts

def test_alert_says_what_since_when_and_where() -> None:
    alerts = alerts_for(report())
    assert [a.check for a in alerts] == ["freshness:raw.responses", "cdc:lag"]
    assert alerts[0].text() == (
        "[ERROR] freshness:raw.responses: newest row 3 h old (max(ts) = 2024-09-05 09:00:00Z), "
        "SLA error after 1h; since 2024-09-05 10:00:00Z; look at: `pulse-local logs cdc`")
    assert alerts[1].text().startswith("[WARNING] cdc:lag: ")
    assert "since unknown (detected 2024-09-05 12:00:00Z)" in alerts[1].text()


def test_file_sink_appends_json_lines(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    sink = FileSink(alerts_path(settings))
    sink.send(alerts_for(report()))
    sink.send(alerts_for([STALE], NOW))
    path = tmp_path / "alerts" / "alerts.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [x["check"] for x in lines] == ["freshness:raw.responses", "cdc:lag",
                                           "freshness:raw.responses"]
    assert lines[0]["since"] == "2024-09-05T10:00:00+00:00"
    assert lines[0]["where_to_look"] == "`pulse-local logs cdc`"
    assert lines[1]["since"] is None and lines[1]["severity"] == "warning"


def test_log_sink_levels(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pulse_local.monitoring.alerts"):
        LogSink().send(alerts_for(report()))
    assert [(r.levelno, r.getMessage().split(":")[0]) for r in caplog.records] == [
        (logging.ERROR, "[ERROR] freshness"), (logging.WARNING, "[WARNING] cdc")]


class Hook:
    """A local HTTP server answering POSTs with scripted status codes; records the bodies."""

    def __init__(self, statuses: Sequence[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[Any] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                length = int(self.headers["content-length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"invalid_token")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def hook() -> Iterator[Any]:
    made: list[Hook] = []

    def start(*statuses: int) -> Hook:
        made.append(Hook(statuses))
        return made[-1]

    yield start
    for h in made:
        h.close()


def test_webhook_posts_slack_text(hook: Any) -> None:
    server = hook(200)
    WebhookSink(server.url).send(alerts_for(report()))
    assert len(server.bodies) == 1
    text = server.bodies[0]["text"]
    assert set(server.bodies[0]) == {"text"}
    assert text.splitlines()[0] == "pulse-local monitoring: 1 errors, 1 warnings"
    assert "• [ERROR] freshness:raw.responses: newest row 3 h old" in text
    assert "look at: `pulse-local logs cdc`" in text


def test_webhook_retries_server_errors_then_succeeds(hook: Any) -> None:
    server = hook(503, 500, 200)
    WebhookSink(server.url, attempts=3, backoff=0.01).send(alerts_for(report()))
    assert len(server.bodies) == 3


def test_webhook_refusal_is_not_retried_and_names_the_cause_without_the_secret(hook: Any) -> None:
    server = hook(403)
    with pytest.raises(AlertDeliveryError) as caught:
        WebhookSink(server.url, attempts=3, backoff=0.01).send(alerts_for(report()))
    assert len(server.bodies) == 1
    message = str(caught.value)
    assert "HTTP 403: invalid_token" in message and "secret" not in message
    assert redact_url(server.url) in message


def test_unreachable_webhook_fails_after_its_attempts(hook: Any) -> None:
    server = hook()
    url = server.url
    server.close()  # nothing listens there any more
    with pytest.raises(AlertDeliveryError, match=r"failed after 2 attempts: ConnectError"):
        WebhookSink(url, attempts=2, backoff=0.01, timeout=2).send(alerts_for(report()))


class Broken:
    name = "broken"

    def send(self, alerts: Sequence[Alert]) -> None:
        raise RuntimeError("disk on fire")


def test_a_failing_sink_is_logged_and_does_not_hide_the_others(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, hook: Any) -> None:
    server = hook(500, 500)
    file_sink = FileSink(tmp_path / "alerts.jsonl")
    sinks = [Broken(), WebhookSink(server.url, attempts=2, backoff=0.01), file_sink]
    with caplog.at_level(logging.ERROR, logger="pulse_local.monitoring.alerts"):
        outcome = send_alerts(alerts_for(report()), sinks)
    assert outcome.sent == ["file"] and not outcome.ok
    assert outcome.failed["broken"] == "RuntimeError: disk on fire"
    assert "HTTP 500" in outcome.failed["webhook"]
    assert len(file_sink.path.read_text().splitlines()) == 2
    logged = [r.getMessage() for r in caplog.records]
    assert any("broken could not deliver 2 alerts: RuntimeError: disk on fire" in m for m in logged)
    assert any("webhook could not deliver" in m and "HTTP 500" in m for m in logged)
    assert send_alerts([], sinks).sent == []  # nothing to say: no sink is called


def test_sinks_come_from_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert [s.name for s in sinks_for(settings)] == ["log", "file"]
    monkeypatch.setenv("PULSE_ALERT_WEBHOOK_URL", "https://hooks.example/services/x")
    sinks = sinks_for(settings)
    assert [s.name for s in sinks] == ["log", "file", "webhook"]
    assert sinks[2].url == "https://hooks.example/services/x"  # type: ignore[attr-defined]
    monkeypatch.setenv("PULSE_ALERT_SINKS", "webhook")
    assert [s.name for s in sinks_for(settings)] == ["webhook"]
    with pytest.raises(ConfigError, match="PULSE_ALERT_WEBHOOK_URL is not set"):
        sinks_for(settings, AlertOptions(sinks="file,webhook", webhook_url=None))
    with pytest.raises(ConfigError, match="unknown sink"):
        sinks_for(settings, AlertOptions(sinks="log,pager"))


def test_notify_success_tells_every_sink(tmp_path: Path, hook: Any) -> None:
    server = hook(200)
    summary = {"steps": [{"name": "cdc_drain", "seconds": 1.5}, {"name": "dbt_build",
                                                                  "seconds": 20.0}]}
    outcome = notify_success(Settings(state_dir=tmp_path), "etl_pipeline", summary,
                             sinks=[FileSink(tmp_path / "a.jsonl"), WebhookSink(server.url)])
    assert outcome.ok and outcome.sent == ["file", "webhook"]
    assert server.bodies == [{"text": "[INFO] etl_pipeline: succeeded: cdc_drain 1.5 s, "
                                      "dbt_build 20.0 s"}]
