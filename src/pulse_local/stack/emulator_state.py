"""What Google's emulators hold, kept across `down` and `up` (both keep everything in memory).

On `down`, once everything that writes to an emulator has stopped, its state is saved under
``<state_dir>/emulators/``; on `up`, it is restored before the consumers start:

- ``bigtable.jsonl.gz``: every row of every table, every cell with its timestamp, read with
  the official data client; restored with ``MutateRows`` at the same timestamps (dedup marks
  and pending entries included, so no event is applied twice after a restore).
- ``pubsub.jsonl.gz``: every subscription's unacknowledged backlog (data, attributes, ordering
  key), pulled and never acknowledged (the emulator stops right after). Restored by publishing
  each message once to its topic: the messages get new ids and publish times, and a topic with
  several subscriptions delivers a message to each of them again (consumers drop repeats by
  event id). Saved backlogs are deleted once republished.
- ``<emulator>.live``: written once an emulator is restored, removed by a clean save. Found on
  `up`, it means the last run ended without one (``kill -9``, a crash, the emulator killed):
  the saved state is older than the durable layers, so `up` says so and rebuilds Bigtable from
  the saved state plus the raw events sink, which holds every consumed event (the consumer
  lands a batch there before it writes Bigtable; the store drops events it already has).
  What sat unconsumed in Pub/Sub then was lost with the emulator: once the processor is up,
  the events of revisions stored in PostgreSQL that the raw sink lacks are published again from
  the raw archive (`pulse_local.stack.event_gap`).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pulse_local.config import Settings
from pulse_local.errors import EmulatorStateError, PulseError

log = logging.getLogger("pulse_local.stack")

#: Rows per MutateRows call when restoring, and messages per Publish.
RESTORE_BATCH = 500
#: Events per store write when rebuilding from the raw sink.
REBUILD_BATCH = 500
#: Seconds one save or restore call may take.
CALL_TIMEOUT = 30.0


def state_dir(settings: Settings) -> Path:
    return settings.state_dir / "emulators"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _unb64(value: str) -> bytes:
    return base64.b64decode(value)


def _write_lines(path: Path, lines: Iterator[dict[str, Any]]) -> int:
    """Write JSON lines gzip-compressed to a temporary file, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=3) as fh:
        for line in lines:
            fh.write(json.dumps(line, separators=(",", ":")) + "\n")
            count += 1
    tmp.replace(path)
    return count


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                yield json.loads(line)
    except (OSError, EOFError, json.JSONDecodeError) as exc:
        raise EmulatorStateError(
            f"{path} is unreadable ({exc}); move it away and run `pulse-local up` again "
            "(Bigtable is then rebuilt from the raw events sink)") from exc


def _saved_at(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _endpoint_settings(settings: Settings) -> Settings:
    """The settings with the stack's own emulator addresses (whatever the environment says)."""
    return settings.model_copy(update={
        "pubsub_emulator_host": f"{settings.host}:{settings.pubsub_port}",
        "bigtable_emulator_host": f"{settings.host}:{settings.bigtable_port}",
    })


# Bigtable ------------------------------------------------------------------------------------
def _bigtable_tables(settings: Settings) -> list[str]:
    from pulse_local.resources import bigtable_admin_client, close_bigtable_client

    admin = bigtable_admin_client(settings.project, f"{settings.host}:{settings.bigtable_port}")
    try:
        parent = admin.instance(settings.bigtable_instance).name
        tables = admin.table_admin_client.list_tables(request={"parent": parent},
                                                      timeout=CALL_TIMEOUT)
        return sorted(t.name.rsplit("/", 1)[1] for t in tables)
    finally:
        close_bigtable_client(admin)


def _bigtable_rows(settings: Settings) -> Iterator[dict[str, Any]]:
    from google.cloud.bigtable.data import ReadRowsQuery

    from pulse_local.streaming.store import bigtable_data_client

    client = bigtable_data_client(_endpoint_settings(settings))
    try:
        for name in _bigtable_tables(settings):
            table = client.get_table(settings.bigtable_instance, name)
            for row in table.read_rows_stream(ReadRowsQuery(), operation_timeout=CALL_TIMEOUT):
                yield {"t": name, "k": _b64(row.row_key),
                       "c": [[c.family, _b64(c.qualifier), c.timestamp_micros, _b64(c.value)]
                             for c in row.cells]}
    finally:
        client.close()


def _save(settings: Settings, service: str, what: str,
          lines: Iterator[dict[str, Any]]) -> tuple[int, float]:
    """Write one emulator's state (``<service>.jsonl.gz``), then clear its ``live`` mark.

    `lines` is a generator, so reading the emulator happens inside the write: any failure
    there is an `EmulatorStateError` naming `what`, and the emulator is left running.
    Returns the lines written and the seconds taken."""
    began = time.perf_counter()
    try:
        count = _write_lines(state_dir(settings) / f"{service}.jsonl.gz", lines)
    except PulseError:
        raise
    except Exception as exc:
        raise EmulatorStateError(
            f"saving {what} failed ({type(exc).__name__}: {exc}); the emulator was left "
            "running so nothing is lost: run `pulse-local down` again") from exc
    (state_dir(settings) / f"{service}.live").unlink(missing_ok=True)
    return count, time.perf_counter() - began


def save_bigtable(settings: Settings) -> str:
    """Save every cell of the stack's Bigtable emulator; clears the ``live`` mark."""
    rows, seconds = _save(settings, "bigtable", "Bigtable", _bigtable_rows(settings))
    return f"bigtable: saved {rows} rows in {seconds:.1f} s"


def _restore_rows(settings: Settings, path: Path) -> int:
    from google.cloud.bigtable.data import RowMutationEntry, SetCell
    from google.cloud.bigtable.data.mutations import Mutation

    from pulse_local.streaming.store import bigtable_data_client

    client = bigtable_data_client(_endpoint_settings(settings))
    tables: dict[str, Any] = {}
    pending: dict[str, list[Any]] = {}
    count = 0

    def flush(name: str) -> None:
        if pending.get(name):
            tables[name].bulk_mutate_rows(pending[name], operation_timeout=CALL_TIMEOUT)
            pending[name] = []

    try:
        existing = set(_bigtable_tables(settings))
        for line in _read_lines(path):
            name = line["t"]
            if name not in existing:
                raise EmulatorStateError(
                    f"{path} holds rows of table {name!r}, which emulators/bigtable/"
                    "resources.yaml no longer declares: declare it again, or move the file "
                    "away to start with an empty Bigtable")
            if name not in tables:
                tables[name] = client.get_table(settings.bigtable_instance, name)
            cells: list[Mutation] = [
                SetCell(family, _unb64(qualifier), _unb64(value), timestamp_micros=ts)
                for family, qualifier, ts, value in line["c"]]
            pending.setdefault(name, []).append(RowMutationEntry(_unb64(line["k"]), cells))
            count += 1
            if len(pending[name]) >= RESTORE_BATCH:
                flush(name)
        for name in list(pending):
            flush(name)
    finally:
        client.close()
    return count


def restore_bigtable(settings: Settings) -> str | None:
    """Restore the saved cells into the (new, empty) emulator; after a run that ended without
    a save, rebuild from the raw events sink too. Returns what it did, for `up` to show."""
    folder = state_dir(settings)
    saved = folder / "bigtable.jsonl.gz"
    live = folder / "bigtable.live"
    notes: list[str] = []
    rows = _restore_rows(settings, saved) if saved.exists() else 0
    if saved.exists():
        notes.append(f"bigtable: restored {rows} rows saved at {_saved_at(saved)}")
    if live.exists():
        rebuilt = rebuild_from_raw_sink(settings)
        notes.append(
            "bigtable: the last run ended without `pulse-local down` (killed or crashed), so "
            + (f"the state saved at {_saved_at(saved)}" if saved.exists() else "the emulator")
            + " is older than the raw events sink: rebuilt the serving layer from it "
            f"({rebuilt.summary()})")
    folder.mkdir(parents=True, exist_ok=True)
    live.write_text(datetime.now(UTC).isoformat() + "\n")
    return "; ".join(notes) or None


@dataclass
class Rebuilt:
    """What a rebuild from the raw sink did."""

    events: int = 0
    written: int = 0
    already: int = 0
    invalid: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (f"{self.events} raw events: {self.written} written, {self.already} already "
                f"there, {self.invalid} invalid, {self.failed} failed")


def rebuild_from_raw_sink(settings: Settings) -> Rebuilt:
    """Write every event of the raw events sink to Bigtable through the consumer's store
    (events it already holds are duplicates there: nothing is counted twice)."""
    from pulse_local.streaming.decode import Invalid, decode
    from pulse_local.streaming.quality import run_checks
    from pulse_local.streaming.sink import raw_events_dir, read_raw
    from pulse_local.streaming.store import Delivered, EventStore

    report = Rebuilt()
    root = raw_events_dir(settings)
    if not root.exists():
        return report
    store = EventStore.for_settings(_endpoint_settings(settings))
    try:
        batch: list[Delivered] = []
        for _, message_id, publish_time, data, attributes in read_raw(root):
            report.events += 1
            raw = data.encode("utf-8")
            event = decode(raw, json.loads(attributes))
            if isinstance(event, Invalid):
                report.invalid += 1
                continue
            batch.append(Delivered(event, message_id, publish_time, raw,
                                   run_checks(event, publish_time)))
            if len(batch) >= REBUILD_BATCH:
                _write_batch(store, batch, report)
                batch = []
        if batch:
            _write_batch(store, batch, report)
    finally:
        store.close()
    return report


def _write_batch(store: Any, batch: list[Any], report: Rebuilt) -> None:
    result = store.write(batch)
    report.written += len(result.written)
    report.already += len(result.duplicates)
    report.failed += len(result.failed)


# Pub/Sub -------------------------------------------------------------------------------------
def _backlog(subscriber: Any, subscription: str, until: float = 0.0,
             leased: list[str] | None = None) -> Iterator[Any]:
    """Every message waiting in `subscription`, pulled and never acknowledged (each message
    once: a pulled one is leased, and repeats are dropped by message id). With `until` (a
    `time.monotonic` value), pulls go on until then: messages leased by a consumer that was
    killed come back when their lease runs out. The ack ids of the leases taken are appended
    to `leased` when given (to hand the messages back, see `_release`)."""
    import warnings

    seen: set[str] = set()
    while True:
        with warnings.catch_warnings():
            # deprecated, but the one way to a Pull that does not wait for messages
            warnings.filterwarnings("ignore", "The return_immediately flag",
                                    DeprecationWarning)
            pulled = subscriber.pull(subscription=subscription, max_messages=1000,
                                     return_immediately=True, timeout=CALL_TIMEOUT)
        if leased is not None:
            leased.extend(m.ack_id for m in pulled.received_messages)
        fresh = [m.message for m in pulled.received_messages if m.message.message_id not in seen]
        if not fresh:
            if time.monotonic() >= until:
                return
            time.sleep(0.2)
        for message in fresh:
            seen.add(message.message_id)
            yield message


#: Longest wait for leases of a killed consumer to run out (the consumer's lease is 10 s).
LEASE_WAIT_MAX = 15.0


#: Ack ids per ModifyAckDeadline call when handing messages back.
RELEASE_BATCH = 1000


def _release(subscriber: Any, subscription: str, ack_ids: list[str]) -> None:
    """Hand leased messages back at once (ack deadline 0): an emulator that keeps running after
    a save delivers them to its consumer again without waiting for the lease to run out."""
    for first in range(0, len(ack_ids), RELEASE_BATCH):
        subscriber.modify_ack_deadline(subscription=subscription,
                                       ack_ids=ack_ids[first:first + RELEASE_BATCH],
                                       ack_deadline_seconds=0, timeout=CALL_TIMEOUT)


def _pubsub_messages(settings: Settings, wait_for_leases: bool,
                     release: bool = False) -> Iterator[dict[str, Any]]:
    from pulse_local.resources import close_pubsub_clients, pubsub_clients

    publisher, subscriber = pubsub_clients(f"{settings.host}:{settings.pubsub_port}")
    try:
        subscriptions = list(subscriber.list_subscriptions(
            project=f"projects/{settings.project}", timeout=CALL_TIMEOUT))
        for sub in subscriptions:
            if not sub.topic or sub.topic == "_deleted-topic_":
                continue
            until = (time.monotonic() + min(sub.ack_deadline_seconds, LEASE_WAIT_MAX) + 1
                     if wait_for_leases else 0.0)
            leased: list[str] | None = [] if release else None
            for message in _backlog(subscriber, sub.name, until, leased):
                yield {"s": sub.name, "t": sub.topic, "id": message.message_id,
                       "d": _b64(message.data), "a": dict(message.attributes),
                       "o": message.ordering_key}
            if leased:
                _release(subscriber, sub.name, leased)
    finally:
        close_pubsub_clients(publisher, subscriber)


def save_pubsub(settings: Settings, *, wait_for_leases: bool = False,
                release: bool = False) -> str:
    """Save every subscription's unacknowledged backlog; clears the ``live`` mark. After a
    consumer was killed (`wait_for_leases`), waits for the leases it held to run out (up to
    `LEASE_WAIT_MAX` s a subscription), so the messages it held are saved too. With `release`
    (the emulator keeps running: a snapshot), the messages read are handed back at once."""
    count, seconds = _save(settings, "pubsub", "the Pub/Sub backlog",
                           _pubsub_messages(settings, wait_for_leases, release))
    return f"pubsub: saved {count} unacknowledged messages in {seconds:.1f} s"


def resume_after_copy(settings: Settings, services: set[str]) -> None:
    """After a snapshot copied the state saved from emulators that kept running: they go on
    from it, so their ``live`` marks come back (a later kill is detected as ever), and the
    saved Pub/Sub backlog is deleted (its messages are still in the emulator: an `up` would
    publish them a second time)."""
    folder = state_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    if "pubsub" in services:
        (folder / "pubsub.jsonl.gz").unlink(missing_ok=True)
    for service in sorted(services & {"pubsub", "bigtable"}):
        (folder / f"{service}.live").write_text(datetime.now(UTC).isoformat() + "\n")


def restore_pubsub(settings: Settings) -> str | None:
    """Publish the saved backlog again (each message once per topic), then delete it."""
    import grpc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    folder = state_dir(settings)
    saved = folder / "pubsub.jsonl.gz"
    live = folder / "pubsub.live"
    notes: list[str] = []
    if live.exists():
        notes.append("pubsub: the last run ended without `pulse-local down` (killed or "
                     "crashed): what waited in Pub/Sub then was lost with the emulator; the "
                     "processor republishes it once it is up (`pulse_local.stack.event_gap`)")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "gap.check").write_text(datetime.now(UTC).isoformat() + "\n")
    if saved.exists():
        by_topic: dict[str, dict[str, dict[str, Any]]] = {}
        for line in _read_lines(saved):
            by_topic.setdefault(line["t"], {}).setdefault(line["id"], line)
        publisher = pubsub_v1.PublisherClient(
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
            transport=PublisherGrpcTransport(channel=grpc.insecure_channel(
                f"{settings.host}:{settings.pubsub_port}")))
        try:
            futures = [publisher.publish(topic, _unb64(m["d"]), ordering_key=m["o"], **m["a"])
                       for topic, messages in by_topic.items() for m in messages.values()]
            for future in futures:
                future.result(timeout=CALL_TIMEOUT)
        finally:
            publisher.stop()
        if count := sum(len(m) for m in by_topic.values()):
            notes.append(f"pubsub: republished {count} unacknowledged messages saved at "
                         f"{_saved_at(saved)}")
        saved.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    live.write_text(datetime.now(UTC).isoformat() + "\n")
    return "; ".join(notes) or None
