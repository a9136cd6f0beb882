"""`pulse-local replay --pending`: apply the deliveries the processor archived while its
database was down (``typeform/pending``), once the database is back.

Each archived delivery is posted again, with its original body and ``Typeform-Signature``, to
the running processor, which verifies, validates, stores and publishes it as any delivery: the
revision and duplicate logic there makes a second apply of the same body a no-op
(``duplicate``), so a crash mid-replay loses and doubles nothing. A file is first renamed out
of the processor's way (it starts a new one for deliveries that arrive meanwhile); when its
deliveries are done it moves to ``typeform/pending-applied``, with those the processor refused
(4xx, each with its answer) in ``typeform/pending-rejected``; deliveries not applied because
the database or the processor went away again stay pending for the next run.

The same code on both profiles: the archive is read through the profile's `RawArchive` (the
local raw bucket directory, or the GCS bucket ``$PULSE_RAW_BUCKET`` where the processor
archives on gcp, one object per append), posting to the processor at ``PULSE_HOST`` /
``PULSE_PROCESSOR_PORT`` as ``pulse-local replay`` does.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from pulse_local.capabilities import RawArchive
from pulse_local.config import Settings, load_options
from pulse_local.errors import ServiceUnavailable
from pulse_local.ingest.options import ProcessorOptions
from pulse_local.ingest.signature import HEADER


@dataclass
class PendingReport:
    """What one `replay_pending` did."""

    files: int = 0
    #: Outcome per applied delivery: created, revised, duplicate, stale.
    applied: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    left: int = 0
    #: Why deliveries were left pending (the first cause), empty when none were.
    stopped: str = ""

    @property
    def applied_total(self) -> int:
        return sum(self.applied.values())

    def summary(self) -> str:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.applied.items())) or "none"
        text = (f"{self.applied_total} applied ({outcomes}), {self.rejected} rejected, "
                f"{self.left} left pending, from {self.files} file(s)")
        return text + (f"; stopped: {self.stopped}" if self.stopped else "")


def _prefixes() -> tuple[str, str, str]:
    pending = load_options(ProcessorOptions).pending_prefix
    return pending, f"{pending}-applied", f"{pending}-rejected"


def pending_names(archive: RawArchive, prefix: str) -> list[str]:
    """The pending archive's objects (``<prefix>/dt=<day>/*.jsonl``, and any a replay that
    was interrupted had taken: applying them again is harmless), oldest day first."""
    found = []
    for name in archive.names(prefix):
        parts = name[len(prefix) + 1:].split("/")
        if (len(parts) == 2 and parts[0].startswith("dt=")
                and (parts[1].endswith(".jsonl") or ".replaying-" in parts[1])):
            found.append(name)
    return found


def _body(record: dict[str, Any]) -> bytes:
    if "body" in record:
        return str(record["body"]).encode("utf-8")
    import base64

    return base64.b64decode(record["body_base64"])


def _write(archive: RawArchive, name: str, records: list[dict[str, Any]]) -> None:
    if records:
        archive.write(name, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                                    for r in records))


def _check_processor(client: Any, base_url: str) -> None:
    """The processor must answer and its database must be up (else every delivery would be
    archived as pending again)."""
    import httpx

    try:
        health = client.get(f"{base_url}/healthz")
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"the processor at {base_url} does not answer ({exc}): start "
                                 "the stack with `pulse-local up`, then replay again") from None
    if health.status_code != 200:
        raise ServiceUnavailable(f"the processor is not healthy yet ({health.text[:200]}): "
                                 "nothing was replayed; see `pulse-local status`, then replay "
                                 "again once the database is back")


def replay_pending(settings: Settings, *, archive: RawArchive | None = None,
                   timeout: float = 30.0) -> PendingReport:
    """Apply every pending delivery through the running processor (see the module's doc).
    `archive` defaults to the profile's (`backends.for_profile`)."""
    import httpx

    if archive is None:
        from pulse_local.backends import for_profile

        archive = for_profile(settings).archive
    report = PendingReport()
    base_url = f"http://{settings.host}:{settings.processor_port}"
    pending_root, applied_root, rejected_root = _prefixes()
    run = f"{os.getpid()}-{time.time_ns()}"
    with httpx.Client(timeout=timeout) as client:
        _check_processor(client, base_url)
        for name in pending_names(archive, pending_root):
            report.files += 1
            folder, base = name.rsplit("/", 1)
            if ".replaying-" in base:  # left by an interrupted replay
                taking = name
            else:
                taking = f"{folder}/{base.removesuffix('.jsonl')}.replaying-{run}"
                archive.move(name, taking)  # the processor's next append starts a new file
            done: list[dict[str, Any]] = []
            refused: list[dict[str, Any]] = []
            left: list[dict[str, Any]] = []
            seen = 0
            while True:  # again until nothing new: an append in flight at the rename lands late
                lines = [x for x in archive.read_text(taking).splitlines() if x.strip()]
                if len(lines) == seen:
                    break
                for line in lines[seen:]:
                    _apply(client, base_url, json.loads(line), report, done, refused, left)
                seen = len(lines)
            day = folder.rsplit("/", 1)[1]
            part = f"part-{report.files}-{run}.jsonl"
            _write(archive, f"{applied_root}/{day}/{part}", done)
            _write(archive, f"{rejected_root}/{day}/{part}", refused)
            _write(archive, f"{folder}/part-left-{report.files}-{run}.jsonl", left)
            report.left += len(left)
            archive.delete(taking)
    return report


def _apply(client: Any, base_url: str, record: dict[str, Any], report: PendingReport,
           done: list[dict[str, Any]], refused: list[dict[str, Any]],
           left: list[dict[str, Any]]) -> None:
    """Post one pending delivery (unless the replay already stopped) and file it by answer:
    200 applied, 4xx refused, anything else left pending (and the replay stops)."""
    if report.stopped:
        left.append(record)
        return
    status, answer = _post(client, base_url, record)
    if status == 200:
        outcome = str(answer.get("outcome", "stored"))
        report.applied[outcome] = report.applied.get(outcome, 0) + 1
        done.append({**record, "applied": answer})
    elif 400 <= status < 500:
        report.rejected += 1
        refused.append({**record, "refused": {"status": status, "answer": answer}})
    else:  # 202 (database down again), 503, no answer: keep it pending
        report.stopped = (f"HTTP {status}: {str(answer)[:200]}" if status
                          else f"no answer: {answer}")
        left.append(record)


def _post(client: Any, base_url: str, record: dict[str, Any]) -> tuple[int, Any]:
    """POST one archived delivery as it came; (status, answer), status 0 without an answer."""
    import httpx

    headers = {"content-type": "application/json"}
    if record.get("signature"):
        headers[HEADER] = str(record["signature"])
    try:
        response = client.post(f"{base_url}/webhooks/typeform/{record['tenant']}",
                               content=_body(record), headers=headers)
    except httpx.HTTPError as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text[:300]
