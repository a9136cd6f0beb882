"""The backend factory: the implementations of each profile and `for_profile`, which picks them.

The capabilities they implement are in `pulse_local.capabilities`; where the clients go is
`pulse_local.endpoints` (both below this module, re-exported here). Pub/Sub and Bigtable are the
same classes on both profiles (the official emulators speak the real APIs); their endpoints come
from `emulator_endpoints` and are passed to the clients explicitly. What really differs is the
raw bucket (a local directory or GCS) and the warehouse (DuckDB or BigQuery). Nothing this module
imports may import it back (tests/unit/test_import_graph.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never

# The capabilities and the endpoints live below this module (re-exported for its callers).
from pulse_local.capabilities import (
    Backends,
    ChangeStreams,
    MessageBus,
    RawArchive,
    RawEventSink,
    RawMessage,
    Warehouse,
)
from pulse_local.config import Settings
from pulse_local.endpoints import (
    EmulatorEndpoints,
    client_environment,
    emulator_endpoints,
    require_emulator_endpoints,
    use_profile,
)
from pulse_local.errors import missing_credentials
from pulse_local.profiles import profile_spec
from pulse_local.resources.clients import bigquery_client, storage_client
from pulse_local.streaming.sink import LocalParquetSink, NullRawEventSink, raw_events_dir

if TYPE_CHECKING:
    from pulse_local.serving.auth import TokenVerifier

__all__ = [
    "Backends", "BigQueryWarehouse", "ChangeStreams", "DatastreamStreams", "DuckDBWarehouse",
    "EmulatorEndpoints", "GcsArchive", "LocalCdcService", "LocalDirArchive", "MessageBus",
    "PubSubBus", "RawArchive", "RawEventSink", "RawMessage", "ServingSecurity", "Warehouse",
    "bigquery_client", "client_environment", "emulator_endpoints", "for_profile",
    "require_emulator_endpoints", "serving_caller", "serving_security", "storage_client",
    "use_profile",
]


class DuckDBWarehouse:
    """The warehouse as a DuckDB file (BigQuery stand-in). Connections are short-lived: DuckDB
    allows one writing process per file, so nothing here holds it open between calls."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(self.path)) as conn:
            return conn.execute(sql).fetchall()

    def query_bigquery_sql(self, sql: str, *, lock_wait_seconds: float = 10.0
                           ) -> list[tuple[Any, ...]]:
        """Translated to DuckDB SQL, on a read-only connection that waits for a writer (dbt)."""
        from pulse_local.monitoring.warehouse import duckdb_query_bigquery_sql

        return duckdb_query_bigquery_sql(self.path, sql, lock_wait_seconds=lock_wait_seconds)


class BigQueryWarehouse:
    """The warehouse on BigQuery (Application Default Credentials; client made on first use).

    With `endpoint` (``http://host:port`` of an emulator, from ``BIGQUERY_EMULATOR_HOST``) the
    same client goes there with anonymous credentials: how the rehearsal runs this code."""

    def __init__(self, project: str, location: str, endpoint: str | None = None) -> None:
        self.project, self.location, self.endpoint = project, location, endpoint

    @cached_property
    def client(self) -> Any:
        return bigquery_client(self.project, self.location, self.endpoint)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row.values()) for row in self.client.query(sql).result()]

    def query_bigquery_sql(self, sql: str, *, lock_wait_seconds: float = 10.0
                           ) -> list[tuple[Any, ...]]:
        """BigQuery runs BigQuery SQL as it is (no file locks to wait for)."""
        return self.query(sql)


class LocalDirArchive:
    """The raw bucket as a local directory (GCS stand-in): one JSONL file per day and process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def append(self, prefix: str, day: str, records: list[Mapping[str, Any]]) -> str:
        folder = self.root / prefix / f"dt={day}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "part-local.jsonl"
        lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        with self._lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
        return path.as_uri()

    def names(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in folder.rglob("*")
                      if p.is_file())

    def read_text(self, name: str) -> str:
        return (self.root / name).read_text(encoding="utf-8")

    def write(self, name: str, text: str) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as fh:  # a new object, as on GCS
            fh.write(text)
        return path.as_uri()

    def move(self, name: str, new_name: str) -> None:
        target = self.root / new_name
        target.parent.mkdir(parents=True, exist_ok=True)
        (self.root / name).rename(target)  # atomic: the processor's next append starts anew

    def delete(self, name: str) -> None:
        (self.root / name).unlink()


class GcsArchive:
    """The raw bucket on Cloud Storage: one object per append (GCS objects are immutable).
    ``PULSE_RAW_BUCKET`` must be set (`GcpSettingMissing` before the first call otherwise)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket_name = settings.raw_bucket

    @cached_property
    def bucket(self) -> Any:
        self.settings.require_gcp("raw_bucket")

        return storage_client(self.settings).bucket(self.bucket_name)

    def append(self, prefix: str, day: str, records: list[Mapping[str, Any]]) -> str:
        import uuid

        name = f"{prefix}/dt={day}/part-{uuid.uuid4().hex}.jsonl"
        body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        self.bucket.blob(name).upload_from_string(body, content_type="application/x-ndjson")
        return f"gs://{self.bucket.name}/{name}"

    def names(self, prefix: str) -> list[str]:
        return sorted(blob.name for blob in self.bucket.list_blobs(prefix=f"{prefix}/"))

    def read_text(self, name: str) -> str:
        from google.api_core.exceptions import NotFound

        try:
            return str(self.bucket.blob(name).download_as_text(encoding="utf-8"))
        except NotFound:
            raise FileNotFoundError(f"gs://{self.bucket.name}/{name}") from None

    def write(self, name: str, text: str) -> str:
        self.bucket.blob(name).upload_from_string(text, content_type="application/x-ndjson")
        return f"gs://{self.bucket.name}/{name}"

    def move(self, name: str, new_name: str) -> None:
        """Copy, then delete (how GCS renames within a bucket)."""
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.rename_blob(self.bucket.blob(name), new_name)
        except NotFound:
            raise FileNotFoundError(f"gs://{self.bucket.name}/{name}") from None

    def delete(self, name: str) -> None:
        self.bucket.delete_blob(name)


#: How long the publisher waits to fill a batch (see `PubSubBus.client`).
PUBLISH_MAX_LATENCY_S = 0.002
#: Limits of one Publish request (the service allows 1,000 messages and 10 MB).
PUBLISH_MANY_MAX_MESSAGES = 1000
PUBLISH_MANY_MAX_BYTES = 9 * 1024 * 1024


class PubSubBus:
    """Pub/Sub through the official client, at the endpoint the profile gives: an emulator
    (``host:port``, plaintext, no credentials) or GCP (``None``). The endpoint is passed to
    the client explicitly, never left to the process environment."""

    def __init__(self, project: str, endpoint: str | None = None) -> None:
        self.project = project
        self.endpoint = endpoint
        self._async: tuple[Any, Any] | None = None

    @cached_property
    def client(self) -> Any:
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import pubsub_v1

        # A caller of `publish` waits for its message: flush batches after 2 ms, not the
        # client's default 10 ms. (The processor publishes through `publish_many`.)
        batching = pubsub_v1.types.BatchSettings(max_latency=PUBLISH_MAX_LATENCY_S)
        if self.endpoint is not None:
            import grpc
            from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

            return pubsub_v1.PublisherClient(batch_settings=batching, transport=(
                PublisherGrpcTransport(channel=grpc.insecure_channel(self.endpoint))))
        try:
            return pubsub_v1.PublisherClient(batch_settings=batching)
        except DefaultCredentialsError:
            raise missing_credentials("Pub/Sub") from None

    def publish(self, topic: str, data: bytes, **attributes: str) -> str:
        return str(self.submit(topic, data, **attributes).result(timeout=30))

    def submit(self, topic: str, data: bytes, **attributes: str) -> Future[str]:
        # the client's future is a concurrent.futures.Future; batching happens in its threads
        return self.client.publish(self.client.topic_path(self.project, topic), data,
                                   **attributes)

    def _requests(self, topic: str,
                  messages: Sequence[tuple[bytes, Mapping[str, str]]]) -> Iterator[Any]:
        """Publish requests for ``messages`` as raw protobufs (proto-plus objects per message
        cost more CPU than the call), within the service's limits of 1,000 messages and 10 MB
        a request."""
        from google.pubsub_v1.services.publisher import PublisherClient as GeneratedPublisher
        from google.pubsub_v1.types import PublishRequest

        # a static method: the asyncio path must not build the batching client (and its
        # credentials) only to format a path
        path = GeneratedPublisher.topic_path(self.project, topic)
        request, size = PublishRequest.pb()(topic=path), 0
        for data, attributes in messages:
            length = len(data) + sum(len(k) + len(v) for k, v in attributes.items())
            if request.messages and (len(request.messages) == PUBLISH_MANY_MAX_MESSAGES
                                     or size + length > PUBLISH_MANY_MAX_BYTES):
                yield request
                request, size = PublishRequest.pb()(topic=path), 0
            request.messages.add(data=data, attributes=attributes)
            size += length
        if request.messages:
            yield request

    def publish_many(self, topic: str,
                     messages: Sequence[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        # the generated client retries transient errors as for `submit`
        ids: list[str] = []
        for request in self._requests(topic, messages):
            ids += self._publish_request(request)
        return ids

    def _publish_request(self, request: Any) -> list[str]:
        from google.pubsub_v1.services.publisher import PublisherClient as GeneratedPublisher
        from google.pubsub_v1.types import PublishRequest

        # The generated client's Publish (the batching client overrides `publish`; its `api`
        # proxy warns on every call).
        response = GeneratedPublisher.publish(self.client, request=PublishRequest.wrap(request),
                                              timeout=60)
        return list(response.message_ids)

    async def apublish_many(self, topic: str,
                            messages: Sequence[tuple[bytes, Mapping[str, str]]], *,
                            timeout: float = 60.0) -> list[str]:
        # The generated asyncio client (gRPC asyncio, emulator or GCP like the others): a
        # Publish of 5 events cost 370 us of CPU and 1 ms against the emulator, the threaded
        # call 810 us and 2 ms (same machine, same run of a micro-benchmark).
        from google.pubsub_v1.types import PublishRequest

        client = self._async_client()
        ids: list[str] = []
        for request in self._requests(topic, messages):
            response = await client.publish(request=PublishRequest.wrap(request),
                                            timeout=timeout)
            ids += response.message_ids
        return ids

    async def acheck(self, topic: str, timeout: float) -> None:
        from google.api_core.retry_async import AsyncRetry
        from google.pubsub_v1.services.publisher import PublisherClient as GeneratedPublisher

        await self._async_client().get_topic(
            topic=GeneratedPublisher.topic_path(self.project, topic), timeout=timeout,
            retry=AsyncRetry(timeout=timeout))

    async def aclose(self) -> None:
        if self._async is not None:
            _, client = self._async
            self._async = None
            await client.transport.close()

    def _async_client(self) -> Any:
        """The asyncio publisher of the running event loop (a gRPC asyncio channel belongs to
        the loop that made it), made on first use."""
        import asyncio

        from google.auth.exceptions import DefaultCredentialsError
        from google.pubsub_v1.services.publisher import PublisherAsyncClient

        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            if self.endpoint is not None:
                import grpc
                from google.pubsub_v1.services.publisher.transports import (
                    PublisherGrpcAsyncIOTransport,
                )

                transport = PublisherGrpcAsyncIOTransport(
                    channel=grpc.aio.insecure_channel(self.endpoint))
                self._async = (loop, PublisherAsyncClient(transport=transport))
            else:
                try:
                    self._async = (loop, PublisherAsyncClient())
                except DefaultCredentialsError:
                    raise missing_credentials("Pub/Sub") from None
        return self._async[1]


class LocalCdcService:
    """Locally the stack's `cdc` service reads stream.yaml itself: nothing to create."""

    def create(self, settings: Settings, streams: Mapping[str, Mapping[str, Any]]) -> str:
        return ("profile local: nothing to create; the stack's cdc service "
                "(`python -m pulse_local.cdc serve`, started by `pulse-local up`) reads the same "
                "emulators/datastream/stream.yaml")

    def catch_up(self, settings: Settings, timeout: float = 300.0) -> dict[str, object]:
        """The local CDC engine's drain (waits for the service when it holds the slot)."""
        from pulse_local.cdc import drain

        report = drain(settings, timeout=timeout)
        return {"changes": report.changes, "backfilled_rows": report.backfilled_rows,
                "transactions": report.transactions, "files": report.files,
                "waited_for_service": report.waited_for_service, "seconds": report.seconds}

    def lag(self, settings: Settings) -> Any:
        from pulse_local.cdc import lag

        return lag(settings)


class DatastreamStreams:
    """On GCP, Datastream streams through its API (google-cloud-datastream). The local CDC
    engine never runs here: it would consume Datastream's slot."""

    def create(self, settings: Settings, streams: Mapping[str, Mapping[str, Any]]) -> str:
        from pulse_local.cdc.provision import create_streams

        done = create_streams(settings, {k: dict(v) for k, v in streams.items()})
        return "Datastream: " + "; ".join(done)

    def catch_up(self, settings: Settings, timeout: float = 300.0) -> dict[str, object]:
        """Every stream RUNNING, then its slot confirmed past the WAL position of the call."""
        from pulse_local.cdc.provision import wait_for_datastream

        return wait_for_datastream(settings, timeout=timeout)

    def lag(self, settings: Settings) -> Any:
        from pulse_local.cdc.provision import datastream_lag

        return datastream_lag(settings)


def for_profile(settings: Settings) -> Backends:
    """Build the backends for `settings.profile`: the implementations its registry entry
    (`pulse_local.profiles.PROFILES`) names (checked by tests/unit/test_wiring.py)."""
    spec = profile_spec(settings.profile)
    match settings.profile:
        case "local":
            return Backends(
                archive=LocalDirArchive(settings.raw_bucket_dir),
                bus=PubSubBus(settings.project, emulator_endpoints(settings).pubsub),
                warehouse=DuckDBWarehouse(settings.duckdb_path),
                raw_events=LocalParquetSink(raw_events_dir(settings)),
                change_streams=LocalCdcService(),
                raw_table_prefix=spec.raw_table_prefix,
                run_files_here=spec.run_files_here,
            )
        case "gcp":
            settings.require_gcp("project")  # before any client exists
            return Backends(
                archive=GcsArchive(settings),
                bus=PubSubBus(settings.project, emulator_endpoints(settings).pubsub),
                warehouse=BigQueryWarehouse(settings.project, settings.location,
                                            endpoint=settings.bigquery_emulator_host),
                raw_events=NullRawEventSink(),
                change_streams=DatastreamStreams(),
                raw_table_prefix=spec.raw_table_prefix,
                run_files_here=spec.run_files_here,
            )
    assert_never(settings.profile)


@dataclass(frozen=True)
class ServingSecurity:
    """How the serving API authenticates callers, and whether it publishes its schema."""

    verifier: TokenVerifier
    #: Serve ``/docs`` and ``/openapi.json`` (a map of every route for whoever asks).
    docs: bool


def serving_security(settings: Settings) -> ServingSecurity:
    """The token verifier and docs switch of `settings.profile`.

    ``local``: JWTs signed with the stack's key (made on first need). ``gcp``: Google-signed ID
    tokens for ``PULSE_SERVING_AUDIENCE`` (a named error when unset); docs off unless asked."""
    from pulse_local.errors import GcpSettingMissing
    from pulse_local.serving.auth import GoogleIdTokenVerifier, LocalTokenVerifier, signing_key

    match settings.profile:
        case "local":
            docs = True if settings.serving_docs is None else settings.serving_docs
            return ServingSecurity(LocalTokenVerifier(signing_key(settings)), docs)
        case "gcp":
            if not settings.serving_audience:
                raise GcpSettingMissing(
                    "PULSE_SERVING_AUDIENCE is not set: the serving API on gcp accepts only "
                    "Google ID tokens for its own audience; set it to the service's Cloud Run "
                    "URL (e.g. `gcloud run services describe serving --format "
                    "'value(status.url)'`) or the IAP client id")
            verifier = GoogleIdTokenVerifier(settings.serving_audience,
                                             settings.serving_tenant_claim,
                                             frozenset(settings.serving_operators))
            return ServingSecurity(verifier, bool(settings.serving_docs))
    assert_never(settings.profile)


def serving_caller(settings: Settings) -> tuple[str, str]:
    """The serving API's base URL and an operator's bearer token, for this repository's own
    reads of it (`make run`'s summary, flows).

    ``local``: the stack's service and a 5-minute operator token signed with the stack's key.
    ``gcp``: ``PULSE_SERVING_URL`` and a Google ID token of the caller's credentials (their
    e-mail must be one of ``PULSE_SERVING_OPERATORS``)."""
    from pulse_local.errors import GcpSettingMissing

    match settings.profile:
        case "local":
            from pulse_local.serving.auth import issue_local_token, signing_key

            token = issue_local_token(signing_key(settings), tenant_id=None, operator=True,
                                      ttl_seconds=300)
            return f"http://{settings.host}:{settings.serving_port}", token
        case "gcp":
            if not settings.serving_url or not settings.serving_audience:
                raise GcpSettingMissing("PULSE_SERVING_URL and PULSE_SERVING_AUDIENCE must be set to "
                                  "read the serving API on gcp (its Cloud Run URL and audience)")
            import google.auth.transport.requests
            from google.auth.exceptions import DefaultCredentialsError
            from google.oauth2 import id_token

            try:
                token = id_token.fetch_id_token(google.auth.transport.requests.Request(),
                                                settings.serving_audience)
            except DefaultCredentialsError:
                raise missing_credentials("the serving API (ID token)") from None
            return settings.serving_url.rstrip("/"), token
    assert_never(settings.profile)
