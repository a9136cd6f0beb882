"""The cells the consumer writes, and an aggregate row as the fold reads it back.

Building blocks of `pulse_local.streaming.store`: an event's fact row, the set-cell and
delete-column mutations of the pending, done and counter cells, a batch's pending column
qualifier; and `RowState`, an aggregate row parsed into counters, fold token, pending columns
and done cells. Protobuf messages come from `pulse_local.streaming.rpc`; tables, families and
the packed entries are `pulse_local.streaming.layout`'s.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pulse_local.streaming.keys as keys  # noqa: PLR0402 (no package import: circle)
from pulse_local.events import ResponseEvent
from pulse_local.streaming.layout import (
    DONE_SUFFIX,
    ENTRY,
    EVENT,
    FOLD_TOKEN,
    META,
    PENDING,
    PENDING_PREFIX,
    QUALITY,
    int64,
)
from pulse_local.streaming.quality import QualityResult

#: Cell timestamps must be multiples of 1000 µs on Bigtable.
MS = 1000
CONSUMER_VERSION = "pulse-local-streaming/2"
_CONSUMER = CONSUMER_VERSION.encode()


@dataclass(frozen=True)
class Delivered:
    """A valid event with its Pub/Sub metadata and quality results, ready to store."""

    event: ResponseEvent
    message_id: str
    publish_time: datetime
    data: bytes
    quality: QualityResult


def now_micros() -> int:
    """Now as a cell timestamp: whole milliseconds, in microseconds."""
    return int(time.time() * 1000) * MS


def add_fact(request: Any, item: Delivered) -> None:
    """Append the fact row of ``item`` to a MutateRows protobuf request. Cell timestamps are
    the event time, so rewriting the same event writes the very same cells."""
    event = item.event
    key = keys.fact_key(event.tenant_id, event.user_id, event.submitted_at, event.event_id)
    ts = keys.to_millis(event.submitted_at) * MS
    entry = request.entries.add(row_key=key)
    for family, qualifier, value in (
        (EVENT, b"json", item.data),
        (META, b"message_id", item.message_id.encode()),
        (META, b"publish_time", item.publish_time.isoformat().encode()),
        (META, b"consumer", _CONSUMER),
        (QUALITY, b"status", item.quality.status.encode()),
        (QUALITY, b"failures", json.dumps(item.quality.failures, sort_keys=True).encode()
         if item.quality.failures else b"{}"),
        (QUALITY, b"checks", ",".join(item.quality.checks).encode()),
    ):
        cell = entry.mutations.add().set_cell
        cell.family_name, cell.column_qualifier = family, qualifier
        cell.timestamp_micros, cell.value = ts, value


def set_cell(entry: Any, family: str, qualifier: bytes, value: bytes, stamp: int) -> None:
    """Add a SetCell to ``entry`` (a repeated mutations field of a request)."""
    cell = entry.add().set_cell
    cell.family_name, cell.column_qualifier = family, qualifier
    cell.timestamp_micros, cell.value = stamp, value


def delete_column(entry: Any, family: str, qualifier: bytes) -> None:
    """Add a DeleteFromColumn (every version) to ``entry``."""
    deletion = entry.add().delete_from_column
    deletion.family_name, deletion.column_qualifier = family, qualifier


def batch_token() -> bytes:
    """A fresh pending-column qualifier: the wall-clock milliseconds (so qualifier order is
    time order) and a random part (so two attempts never share a column)."""
    return PENDING_PREFIX + f"{int(time.time() * 1000):013d}.{secrets.token_hex(6)}".encode()


@dataclass
class RowState:
    """An aggregate row as the fold reads it."""

    key: bytes
    counters: dict[bytes, int] = field(default_factory=dict)
    token: bytes | None = None
    columns: list[tuple[bytes, int, bytes]] = field(default_factory=list)  # qualifier, ts, value
    #: Pending columns that have their done cell (every event of theirs is marked done).
    done: set[bytes] = field(default_factory=set)


def row_state(key: bytes, cells: Iterable[tuple[str, bytes, int, bytes]]) -> RowState:
    """Parse the latest cells of an aggregate row's ``counts`` and ``pending`` families
    ((family, qualifier, timestamp, value), as `BigtableRpc.read_cells` yields them)."""
    state = RowState(key)
    for family, qualifier, stamp, value in cells:
        if family == PENDING:
            if qualifier.endswith(DONE_SUFFIX):
                state.done.add(qualifier[:-len(DONE_SUFFIX)])
            else:
                state.columns.append((qualifier, stamp, value))
        elif qualifier == FOLD_TOKEN:
            state.token = value
        else:
            state.counters[qualifier] = int64(value)
    return state


@dataclass(frozen=True)
class Parsed:
    """A pending column's entries, parsed once (columns are written once)."""

    entries: list[tuple[bytes, int, int, int, int]]
    ids: frozenset[bytes]


def parse_column(value: bytes) -> Parsed:
    """The entries of a pending column's value (`ENTRY` after `ENTRY`)."""
    entries = list(ENTRY.iter_unpack(value))
    return Parsed(entries, frozenset(e[0] for e in entries))
