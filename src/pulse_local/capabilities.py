"""What differs between profiles, as capabilities: the protocols and the `Backends` bundle.

The abstraction only: it depends on `config` and `errors` (nothing here imports an
implementation). The implementations and the factory that picks them by profile
(`backends.for_profile`) sit above it; lower layers (cdc, streaming, monitoring, resources)
receive a capability, or the endpoint they need (`pulse_local.endpoints`), instead of importing
the factory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pulse_local.config import Settings


class RawArchive(Protocol):
    """Capability: append raw payloads (JSON lines) to the raw bucket, partitioned by date, and
    read them back (`pulse-local replay --pending`). Names are relative to the bucket, with
    ``/`` between parts, on both profiles."""

    def append(self, prefix: str, day: str, records: list[Mapping[str, Any]]) -> str:
        """Append records under ``{prefix}/dt={day}/``; return the object's URI."""
        ...

    def names(self, prefix: str) -> list[str]:
        """The names of every object under ``{prefix}/``, sorted."""
        ...

    def read_text(self, name: str) -> str:
        """The object's content as UTF-8 text (`FileNotFoundError` when there is none)."""
        ...

    def write(self, name: str, text: str) -> str:
        """Store a new object ``name`` holding `text`; return its URI."""
        ...

    def move(self, name: str, new_name: str) -> None:
        """Rename an object (`FileNotFoundError` when there is none)."""
        ...

    def delete(self, name: str) -> None:
        """Remove an object."""
        ...


class MessageBus(Protocol):
    """Capability: publish a message to a topic and wait until the service has it."""

    def publish(self, topic: str, data: bytes, **attributes: str) -> str:
        """Publish; return the message id once the service acknowledged it."""
        ...

    def submit(self, topic: str, data: bytes, **attributes: str) -> Future[str]:
        """Publish without blocking; the future gives the message id once acknowledged (for
        asyncio callers: ``await asyncio.wrap_future(bus.submit(...))``)."""
        ...

    def publish_many(self, topic: str,
                     messages: Sequence[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        """Publish ``(data, attributes)`` pairs in as few calls as the service allows; return
        their message ids once acknowledged (for bulk loads: no per-message futures)."""
        ...

    async def apublish_many(self, topic: str,
                            messages: Sequence[tuple[bytes, Mapping[str, str]]], *,
                            timeout: float = 60.0) -> list[str]:
        """`publish_many` for asyncio callers, on the running event loop (no worker thread);
        each Publish call (its retries included) gives up after `timeout` seconds."""
        ...

    async def acheck(self, topic: str, timeout: float) -> None:
        """A real call (GetTopic) on the running event loop; raises when the service does not
        answer within `timeout` seconds or the topic is missing."""
        ...

    async def aclose(self) -> None:
        """Release what `apublish_many` opened on the running event loop (idempotent)."""
        ...


class Warehouse(Protocol):
    """Capability: run SQL in the analytical warehouse and return the rows."""

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one or more statements; return the rows of the last one."""
        ...

    def query_bigquery_sql(self, sql: str, *, lock_wait_seconds: float = 10.0
                           ) -> list[tuple[Any, ...]]:
        """Read with BigQuery Standard SQL (the same text on both profiles); return the rows."""
        ...


@dataclass(frozen=True)
class RawMessage:
    """One row of the raw table (the columns a BigQuery subscription with metadata writes)."""

    subscription_name: str
    message_id: str
    publish_time: datetime
    data: bytes
    attributes: Mapping[str, str]


class RawEventSink(Protocol):
    """Capability: land raw Pub/Sub messages in the warehouse's raw dataset."""

    def write(self, records: Sequence[RawMessage]) -> None:
        """Store the records durably before returning (the caller acks afterwards)."""
        ...


class ChangeStreams(Protocol):
    """Capability: the declared change streams (emulators/datastream/stream.yaml): make them
    exist, wait until they carried what the source committed, say how far behind they are."""

    def create(self, settings: Settings, streams: Mapping[str, Mapping[str, Any]]) -> str:
        """Create the streams (Datastream API bodies by stream id); return what was done."""
        ...

    def catch_up(self, settings: Settings, timeout: float = 300.0) -> dict[str, object]:
        """Return once the raw layer holds every change committed before the call."""
        ...

    def lag(self, settings: Settings) -> Any:
        """How far behind the raw layer is (`cdc.Lag` locally, `DatastreamLag` on GCP)."""
        ...


@dataclass(frozen=True)
class Backends:
    """What differs between profiles, built once per process."""

    archive: RawArchive
    bus: MessageBus
    warehouse: Warehouse
    #: Where consumed Pub/Sub messages land in the raw dataset. On GCP a BigQuery subscription
    #: (declared in emulators/pubsub/resources.yaml) does it, so the consumer's sink is a no-op.
    raw_events: RawEventSink
    #: Who runs the declared change streams: the local cdc service, or Datastream.
    change_streams: ChangeStreams
    #: How raw tables are named: ``raw.public_<table>``, as Datastream names them in BigQuery
    #: and the local CDC names its views (dbt's sources do the same).
    raw_table_prefix: str = "public_"
    #: Whether the stack's run files (the consumer's status file, dbt's run_results.json) are
    #: on this machine. Not on GCP: a Cloud Run job has none of them.
    run_files_here: bool = True
