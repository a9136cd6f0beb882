"""Unit: Datastream provisioning through google-cloud-datastream's real request objects.

No Datastream server exists offline, so the client here is a FAKE that keeps what was created
in memory and records every request (real proto-plus objects: a wrong field name fails when
they are built). It answers NotFound like the API for what it does not hold."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import datastream_v1 as ds

from pulse_local.cdc.config import STREAM_FILE, load_stream_config
from pulse_local.cdc.provision import (
    apply_streams,
    connection_profile_requests,
    describe_streams,
    start_request,
    stream_requests,
)
from pulse_local.config import Settings


class _Done:
    def __init__(self, value: Any = None) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class FakeDatastreamClient:
    """In-memory stand-in for ``DatastreamClient`` (unit test fake, see module docstring)."""

    def __init__(self) -> None:
        self.profiles: dict[str, ds.ConnectionProfile] = {}
        self.streams: dict[str, ds.Stream] = {}
        self.calls: list[str] = []

    def get_connection_profile(self, name: str) -> ds.ConnectionProfile:
        self.calls.append(f"get_connection_profile {name.rsplit('/', 1)[1]}")
        if name not in self.profiles:
            raise gexc.NotFound(name)
        return self.profiles[name]

    def create_connection_profile(self, request: ds.CreateConnectionProfileRequest) -> _Done:
        assert isinstance(request, ds.CreateConnectionProfileRequest)
        self.calls.append(f"create_connection_profile {request.connection_profile_id}")
        name = f"{request.parent}/connectionProfiles/{request.connection_profile_id}"
        self.profiles[name] = request.connection_profile
        return _Done()

    def get_stream(self, name: str) -> ds.Stream:
        self.calls.append(f"get_stream {name.rsplit('/', 1)[1]}")
        if name not in self.streams:
            raise gexc.NotFound(name)
        return self.streams[name]

    def create_stream(self, request: ds.CreateStreamRequest) -> _Done:
        assert isinstance(request, ds.CreateStreamRequest)
        self.calls.append(f"create_stream {request.stream_id}")
        stream = ds.Stream(request.stream)
        stream.name = f"{request.parent}/streams/{request.stream_id}"
        stream.state = ds.Stream.State.NOT_STARTED
        self.streams[stream.name] = stream
        return _Done()

    def update_stream(self, request: ds.UpdateStreamRequest) -> _Done:
        assert list(request.update_mask.paths) == ["state"]
        self.calls.append(f"update_stream {request.stream.name.rsplit('/', 1)[1]} "
                          f"{request.stream.state.name}")
        self.streams[request.stream.name].state = request.stream.state
        return _Done()


def _settings() -> Settings:
    return Settings(profile="gcp", project="pulse-prod", location="europe-west1",
                    admin_database_url="postgresql://datastream@10.1.2.3:5432/pulse")


def test_requests_are_real_datastream_objects_with_the_declared_values() -> None:
    settings, config = _settings(), load_stream_config(STREAM_FILE)
    source, destination = connection_profile_requests(settings, config)
    pg = source.connection_profile.postgresql_profile
    assert (pg.hostname, pg.port, pg.username, pg.database) == ("10.1.2.3", 5432, "datastream",
                                                                "pulse")
    assert pg.password == ""  # by reference only
    assert pg.secret_manager_stored_password == (
        "projects/pulse-prod/secrets/pulse-datastream-password/versions/latest")
    assert "bigquery_profile" in destination.connection_profile
    (request,) = stream_requests(settings, describe_streams(config, settings))
    stream = request.stream
    assert request.stream_id == "pulse-postgres-raw"
    assert stream.source_config.postgresql_source_config.replication_slot == "pulse_datastream"
    bq = stream.destination_config.bigquery_destination_config
    assert bq.single_target_dataset.dataset_id == "pulse-prod:raw"
    assert "append_only" in bq and bq.data_freshness.seconds == 900
    assert "backfill_all" in stream
    start = start_request("projects/p/locations/l/streams/s")
    assert start.stream.state == ds.Stream.State.RUNNING


def test_apply_creates_profiles_and_streams_then_starts_them_and_is_idempotent() -> None:
    settings, config = _settings(), load_stream_config(STREAM_FILE)
    streams = describe_streams(config, settings)
    client = FakeDatastreamClient()
    first = apply_streams(settings, config, streams, client)
    assert first == ["created connection profile pulse-postgres",
                     "created connection profile pulse-bigquery",
                     "created stream pulse-postgres-raw", "started stream pulse-postgres-raw"]
    (stream,) = client.streams.values()
    assert stream.state == ds.Stream.State.RUNNING
    client.calls.clear()
    second = apply_streams(settings, config, streams, client)
    assert second == ["connection profile pulse-postgres exists",
                      "connection profile pulse-bigquery exists",
                      "stream pulse-postgres-raw exists"]
    assert not [c for c in client.calls if not c.startswith("get_")]  # get before create


def test_a_paused_stream_is_started_again() -> None:
    settings, config = _settings(), load_stream_config(STREAM_FILE)
    streams = describe_streams(config, settings)
    client = FakeDatastreamClient()
    apply_streams(settings, config, streams, client)
    (stream,) = client.streams.values()
    stream.state = ds.Stream.State.PAUSED
    assert apply_streams(settings, config, streams, client)[-1] == (
        "started stream pulse-postgres-raw")


def test_the_connection_profile_needs_the_admin_dsn_on_gcp() -> None:
    from pulse_local.errors import GcpSettingMissing

    with pytest.raises(GcpSettingMissing, match="PULSE_ADMIN_DATABASE_URL"):
        connection_profile_requests(Settings(profile="gcp", project="p"),
                                    load_stream_config(STREAM_FILE))
