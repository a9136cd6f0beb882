"""Row keys of the Bigtable event store, and the time buckets of the aggregates.

Every key starts with the tenant id, so a tenant's data is one contiguous key range and the
serving API scopes a read to a tenant by construction (it only ever builds ranges inside
``{tenant}#``). Components other than UUIDs are escaped so that a ``#`` in a value can never
move a key into another tenant's or another dimension's range.

``events_fact``      ``{tenant}#{user}#{reversed_ms:013d}#{event_id}`` (a user's events, newest first)
``events_aggregate`` ``{tenant}#{dimension}#{value}#{granularity}#{bucket}`` (``T#all`` or
                     ``D#YYYY-MM-DD``; the day row holds the hours as ``hHH.`` columns)
``events_dedup``     ``{tenant}#{event_id}``
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

#: Largest millisecond timestamp a reversed key can hold (2286-11-20); 13 digits.
MAX_MS = 9_999_999_999_999
#: Width of a reversed timestamp in a key.
REVERSED_WIDTH = 13
#: Bigtable refuses row keys over 4 KiB on GCP (the emulator does not check: we do).
MAX_ROW_KEY_BYTES = 4096
#: The user component of events without a user (anonymous respondents). Not a UUID, so it
#: never collides with a real user id.
ANONYMOUS_USER = "anonymous"
SEP = "#"


class Dimension(StrEnum):
    """What an aggregate row is grouped by."""

    ALL = "all"  #: the whole tenant; value ``*``
    FORM = "form"  #: Typeform form id
    ASSESSMENT = "assessment"  #: assessment id


class Granularity(StrEnum):
    """Time bucket of an aggregate row; the letter is part of the key."""

    TOTAL = "T"  #: all time (the live counters); bucket ``all``
    DAY = "D"  #: ``YYYY-MM-DD`` (UTC)
    HOUR = "H"  #: ``YYYY-MM-DDTHH`` (UTC); hourly counters are columns of the day row


ALL_VALUE = "*"
TOTAL_BUCKET = "all"


class RowKeyTooLong(ValueError):
    """A key exceeds Bigtable's 4 KiB limit (GCP rejects it; the emulator would accept it)."""


def escape(component: str) -> str:
    """Escape ``%`` and ``#`` so that a free-text component cannot contain the separator."""
    return component.replace("%", "%25").replace(SEP, "%23")


def unescape(component: str) -> str:
    """Inverse of `escape`."""
    return component.replace("%23", SEP).replace("%25", "%")


def _check(key: str) -> bytes:
    data = key.encode("utf-8")
    if len(data) > MAX_ROW_KEY_BYTES:
        raise RowKeyTooLong(
            f"row key of {len(data)} bytes exceeds Bigtable's {MAX_ROW_KEY_BYTES}-byte limit "
            f"(starts {key[:60]!r}): shorten the component (form ids are normally < 64 chars)"
        )
    return data


def to_micros(ts: datetime) -> int:
    """Epoch microseconds of an aware datetime."""
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no timezone: pass an aware datetime")
    # timestamp() is exact to the microsecond for any date a key can hold; timedelta
    # arithmetic on pydantic's tzinfo is ~50x slower.
    return round(ts.timestamp() * 1_000_000)


def to_millis(ts: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return to_micros(ts) // 1000


def reversed_millis(ts: datetime) -> int:
    """``MAX_MS - epoch_ms``: newer timestamps get smaller numbers, so they sort first."""
    ms = to_millis(ts)
    if not 0 <= ms <= MAX_MS:
        raise ValueError(f"timestamp {ts.isoformat()} is outside 1970..2286 and cannot be keyed")
    return MAX_MS - ms


def reversed_component(ts: datetime) -> str:
    """The zero-padded reversed timestamp of a key."""
    return f"{reversed_millis(ts):0{REVERSED_WIDTH}d}"


def from_reversed_component(component: str) -> datetime:
    """The timestamp a reversed component encodes (millisecond precision, UTC)."""
    return datetime.fromtimestamp((MAX_MS - int(component)) / 1000, tz=UTC)


def tenant_prefix(tenant_id: uuid.UUID) -> bytes:
    """``{tenant}#``: every key of one tenant starts with it."""
    return f"{tenant_id}{SEP}".encode()


def user_component(user_id: uuid.UUID | None) -> str:
    return str(user_id) if user_id is not None else ANONYMOUS_USER


def user_prefix(tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> bytes:
    """``{tenant}#{user}#``: the fact rows of one user, newest first."""
    return f"{tenant_id}{SEP}{user_component(user_id)}{SEP}".encode()


def fact_key(tenant_id: uuid.UUID, user_id: uuid.UUID | None, ts: datetime,
             event_id: uuid.UUID) -> bytes:
    """``{tenant}#{user}#{reversed_ms}#{event_id}``."""
    return _check(
        f"{tenant_id}{SEP}{user_component(user_id)}{SEP}{reversed_component(ts)}{SEP}{event_id}"
    )


@dataclass(frozen=True)
class FactKey:
    """A parsed fact row key."""

    tenant_id: uuid.UUID
    user: str
    timestamp: datetime
    event_id: uuid.UUID


def parse_fact_key(key: bytes) -> FactKey:
    """Split a fact key back into its parts (raises ValueError on a foreign key)."""
    parts = key.decode("utf-8").split(SEP)
    if len(parts) != 4 or len(parts[2]) != REVERSED_WIDTH:
        raise ValueError(f"not an events_fact key: {key!r}")
    return FactKey(uuid.UUID(parts[0]), parts[1], from_reversed_component(parts[2]),
                   uuid.UUID(parts[3]))


def fact_range(tenant_id: uuid.UUID, user_id: uuid.UUID | None, start: datetime | None = None,
               end: datetime | None = None) -> tuple[bytes, bytes]:
    """``[start_key, end_key)`` of a user's events with ``start <= ts < end`` (newest first).

    Reversed timestamps flip the bounds: the newest allowed time (just below ``end``) gives the
    smallest key.
    """
    prefix = user_prefix(tenant_id, user_id)
    # ts < end  <=>  reversed(ts) > reversed(end)  <=>  reversed(ts) >= reversed(end) + 1
    low = prefix + (f"{reversed_millis(end) + 1:0{REVERSED_WIDTH}d}".encode() if end else b"")
    # ts >= start  <=>  reversed(ts) <= reversed(start): end the range after that component
    high = (prefix + reversed_component(start).encode() + b"$") if start else prefix_end(prefix)
    return low, high


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b""
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def dedup_key(tenant_id: uuid.UUID, event_id: uuid.UUID) -> bytes:
    """``{tenant}#{event_id}`` in ``events_dedup``."""
    return f"{tenant_id}{SEP}{event_id}".encode()


def attempts_key(message_id: str, published: datetime) -> bytes:
    """``~attempts#{message_id}#{publish time, µs since the epoch}`` in ``events_dedup``: a
    message's own failure count (``~`` sorts after every tenant's keys)."""
    return f"~attempts{SEP}{message_id}{SEP}{to_micros(published)}".encode()


def bucket(ts: datetime, granularity: Granularity) -> str:
    """The bucket label of ``ts`` (UTC) for a granularity."""
    if granularity is Granularity.TOTAL:
        return TOTAL_BUCKET
    utc = ts.astimezone(UTC)
    match granularity:
        case Granularity.DAY:
            return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        case Granularity.HOUR:
            return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}"
    raise ValueError(f"unknown granularity {granularity!r}")


def aggregate_key(tenant_id: uuid.UUID, dimension: Dimension, value: str,
                  granularity: Granularity, bucket_label: str) -> bytes:
    """``{tenant}#{dimension}#{escaped value}#{granularity}#{bucket}``."""
    return _check(
        SEP.join((str(tenant_id), dimension.value, escape(value), granularity.value, bucket_label))
    )


def aggregate_prefix(tenant_id: uuid.UUID, dimension: Dimension, value: str | None = None,
                     granularity: Granularity | None = None) -> bytes:
    """The key prefix of a tenant's aggregates, narrowed by dimension, value and granularity."""
    parts = [str(tenant_id), dimension.value]
    if value is not None:
        parts.append(escape(value))
        if granularity is not None:
            parts.append(granularity.value)
    return (SEP.join(parts) + SEP).encode()


@dataclass(frozen=True)
class AggregateKey:
    """A parsed aggregate row key."""

    tenant_id: uuid.UUID
    dimension: Dimension
    value: str
    granularity: Granularity
    bucket: str


def parse_aggregate_key(key: bytes) -> AggregateKey:
    """Split an aggregate key back into its parts (raises ValueError on a foreign key)."""
    parts = key.decode("utf-8").split(SEP)
    if len(parts) != 5:
        raise ValueError(f"not an events_aggregate key: {key!r}")
    return AggregateKey(uuid.UUID(parts[0]), Dimension(parts[1]), unescape(parts[2]),
                        Granularity(parts[3]), parts[4])
