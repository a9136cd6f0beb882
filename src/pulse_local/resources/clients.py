"""Build Google clients for an endpoint: an emulator (``host:port``) or GCP (``None``).

This is the only place that knows the difference. gRPC clients are imported inside the
functions because importing them takes about a second.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pulse_local.config import Profile, Settings
from pulse_local.endpoints import emulator_endpoints
from pulse_local.errors import missing_credentials

if TYPE_CHECKING:
    from google.cloud.bigtable import Client as BigtableClient
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

def pubsub_endpoint(settings: Settings, profile: Profile) -> str | None:
    """The Pub/Sub emulator to use, or None for GCP (`endpoints.emulator_endpoints`)."""
    return emulator_endpoints(settings, profile).pubsub


def bigtable_endpoint(settings: Settings, profile: Profile) -> str | None:
    """The Bigtable emulator to use, or None for GCP (`endpoints.emulator_endpoints`)."""
    return emulator_endpoints(settings, profile).bigtable


def pubsub_clients(emulator_host: str | None) -> tuple[PublisherClient, SubscriberClient]:
    """A publisher and a subscriber for the emulator at ``emulator_host`` (or GCP when None).

    For an emulator both use a plaintext gRPC channel and no credentials. Close them with
    `close_pubsub_clients`.
    """
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import pubsub_v1

    if emulator_host is None:
        try:
            return pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        except DefaultCredentialsError as exc:
            raise missing_credentials("Pub/Sub") from exc

    import grpc
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    publisher = pubsub_v1.PublisherClient(
        transport=PublisherGrpcTransport(channel=grpc.insecure_channel(emulator_host))
    )
    subscriber = pubsub_v1.SubscriberClient(
        transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(emulator_host))
    )
    return publisher, subscriber


def close_pubsub_clients(publisher: PublisherClient, subscriber: SubscriberClient) -> None:
    """Release the gRPC channels of clients made by `pubsub_clients`."""
    publisher.transport.close()
    subscriber.close()


@contextmanager
def _bigtable_emulator_env(emulator_host: str | None) -> Iterator[None]:
    """Set ``BIGTABLE_EMULATOR_HOST`` while a Bigtable client is constructed.

    The Bigtable client reads the variable only in its constructor (there is no parameter for
    it); the previous value is restored afterwards.
    """
    previous = os.environ.get("BIGTABLE_EMULATOR_HOST")
    if emulator_host is None:
        os.environ.pop("BIGTABLE_EMULATOR_HOST", None)
    else:
        os.environ["BIGTABLE_EMULATOR_HOST"] = emulator_host
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("BIGTABLE_EMULATOR_HOST", None)
        else:
            os.environ["BIGTABLE_EMULATOR_HOST"] = previous


def bigtable_admin_client(project: str, emulator_host: str | None) -> BigtableClient:
    """A ``google.cloud.bigtable.Client(project, admin=True)`` for the emulator or GCP.

    The table admin and data sub-clients are created right away for an emulator: the data
    client reads ``BIGTABLE_EMULATOR_HOST`` when it is first used, so creating it later would
    send data calls (and client-side metrics) to GCP. Close it with `close_bigtable_client`.
    """
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud.bigtable import Client

    with _bigtable_emulator_env(emulator_host):
        try:
            client = Client(project=project, admin=True)
        except DefaultCredentialsError as exc:
            raise missing_credentials("Bigtable") from exc
        if emulator_host is not None:
            _ = client.table_admin_client, client.table_data_client
    return client


def close_bigtable_client(client: BigtableClient) -> None:
    """Release the gRPC channels of the table admin and data APIs.

    The library has no ``close()`` on this client; its sub-clients' transports are closed.
    """
    client.table_admin_client.transport.close()
    client.table_data_client.transport.close()


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
    from google.cloud import storage  # type: ignore[attr-defined]

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
