"""The backend factory: the one place that branches on the profile.

Pub/Sub and Bigtable are the same classes on both profiles (the official emulators speak the real
APIs); their endpoints come from `emulator_endpoints` and are passed to the clients explicitly. What
really differs is the raw bucket (a local directory or GCS) and the warehouse (DuckDB or BigQuery).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, assert_never

from pulse_local.config import Profile, Settings
from pulse_local.errors import missing_credentials
from pulse_local.streaming.sink import (
    LocalParquetSink,
    NullRawEventSink,
    RawEventSink,
    raw_events_dir,
)

if TYPE_CHECKING:
    from pulse_local.serving.auth import TokenVerifier


class RawArchive(Protocol):
    """Capability: append raw payloads (JSON lines) to the raw bucket, partitioned by date."""

    def append(self, prefix: str, day: str, records: list[Mapping[str, Any]]) -> str:
        """Append records under ``{prefix}/dt={day}/``; return the object's URI."""
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


def bigquery_client(project: str, location: str, endpoint: str | None = None) -> Any:
    """google-cloud-bigquery's client: Google with Application Default Credentials, or, with
    `endpoint` (``http://host:port`` of an emulator, ``BIGQUERY_EMULATOR_HOST`` in Settings),
    that emulator with anonymous credentials. Every BigQuery client of the gcp code is made here."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import bigquery

    if endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(project=project, location=location,
                               credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=endpoint))
    try:
        return bigquery.Client(project=project, location=location)
    except DefaultCredentialsError:
        raise missing_credentials("BigQuery") from None


def storage_client(settings: Settings) -> Any:
    """google-cloud-storage's client: Google with Application Default Credentials, or the
    emulator at ``STORAGE_EMULATOR_HOST`` (Settings) with anonymous credentials."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    if settings.storage_emulator_host:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=settings.project, credentials=AnonymousCredentials(),
                              client_options=ClientOptions(
                                  api_endpoint=settings.storage_emulator_host))
    try:
        return storage.Client(project=settings.project)
    except DefaultCredentialsError:
        raise missing_credentials("Cloud Storage") from None


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


def for_profile(settings: Settings) -> Backends:
    """Build the backends for `settings.profile`."""
    match settings.profile:
        case "local":
            return Backends(
                archive=LocalDirArchive(settings.raw_bucket_dir),
                bus=PubSubBus(settings.project, emulator_endpoints(settings).pubsub),
                warehouse=DuckDBWarehouse(settings.duckdb_path),
                raw_events=LocalParquetSink(raw_events_dir(settings)),
                change_streams=LocalCdcService(),
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
                run_files_here=False,
            )
    assert_never(settings.profile)


@dataclass(frozen=True)
class EmulatorEndpoints:
    """Where Google's clients go: ``host:port`` of an emulator, or None for Google itself."""

    pubsub: str | None
    bigtable: str | None


def emulator_endpoints(settings: Settings, profile: Profile | None = None) -> EmulatorEndpoints:
    """Google's emulator variables win on every profile (that is how CI runs the gcp code on
    the emulators); without them ``local`` means the stack's own emulators, so local work can
    never reach a real project by accident, and ``gcp`` means Google."""
    match profile or settings.profile:
        case "local":
            return EmulatorEndpoints(
                settings.pubsub_emulator_host or f"{settings.host}:{settings.pubsub_port}",
                settings.bigtable_emulator_host or f"{settings.host}:{settings.bigtable_port}",
            )
        case "gcp":
            return EmulatorEndpoints(settings.pubsub_emulator_host, settings.bigtable_emulator_host)
    assert_never(profile or settings.profile)


def require_emulator_endpoints(settings: Settings, command: str, *, pubsub: bool = False,
                               bigtable: bool = False) -> None:
    """On ``local``, refuse to start a service whose Google clients have no emulator endpoint.

    A service process (processor, consumer, serving) must be told where the emulators are,
    by `pulse-local up` or ``eval "$(pulse-local env)"``; without that, Google's clients would
    fall back to the production endpoints. Raises `EmulatorEndpointMissing` naming the missing
    variables and the commands that set them. On ``gcp`` nothing is required."""
    from pulse_local.errors import EmulatorEndpointMissing

    if settings.profile != "local":
        return
    missing = [name for name, wanted, value in (
        ("PUBSUB_EMULATOR_HOST", pubsub, settings.pubsub_emulator_host),
        ("BIGTABLE_EMULATOR_HOST", bigtable, settings.bigtable_emulator_host)) if wanted and not value]
    if missing:
        raise EmulatorEndpointMissing(
            f"PULSE_PROFILE=local but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
            f" not set: `{command}` refuses to start rather than reach Google's production "
            "endpoints. Start it with the stack (`pulse-local up`), or first run "
            '`eval "$(pulse-local env)"`')


def client_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that point Google's clients and Prefect at this profile's services.

    ``local``: the stack's emulators and Prefect server. ``gcp``: nothing; the clients use
    Application Default Credentials and whatever ``PREFECT_API_URL`` the user configured.
    Variables already set in the environment win (an IDE or CI can override any of them).
    """
    match settings.profile:
        case "local":
            from pulse_local.stack.services import service_env

            return service_env(settings)
        case "gcp":
            return {}
    assert_never(settings.profile)


def use_profile(settings: Settings) -> None:
    """Apply `client_environment` to this process (call once when a command or flow starts)."""
    import os

    for key, value in client_environment(settings).items():
        os.environ.setdefault(key, value)


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
    from pulse_local.errors import ConfigError
    from pulse_local.serving.auth import GoogleIdTokenVerifier, LocalTokenVerifier, signing_key

    match settings.profile:
        case "local":
            docs = True if settings.serving_docs is None else settings.serving_docs
            return ServingSecurity(LocalTokenVerifier(signing_key(settings)), docs)
        case "gcp":
            if not settings.serving_audience:
                raise ConfigError(
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
    from pulse_local.errors import ConfigError

    match settings.profile:
        case "local":
            from pulse_local.serving.auth import issue_local_token, signing_key

            token = issue_local_token(signing_key(settings), tenant_id=None, operator=True,
                                      ttl_seconds=300)
            return f"http://{settings.host}:{settings.serving_port}", token
        case "gcp":
            if not settings.serving_url or not settings.serving_audience:
                raise ConfigError("PULSE_SERVING_URL and PULSE_SERVING_AUDIENCE must be set to "
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
