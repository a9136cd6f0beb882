"""Bigtable channels read server streams on the calling thread (no services: channels connect
lazily, so an unused address is enough; the GCP factory is checked with a fake creator)."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.experimental
import pytest

from pulse_local.streaming.rpc import (
    CHANNEL_OPTIONS,
    SINGLE_THREADED_STREAMS,
    _with_stream_option,
    data_client_class,
    gapic_client,
)

READ_ROWS = "/google.bigtable.v2.Bigtable/ReadRows"


def _single_threaded(channel: grpc.Channel) -> bool:
    """Whether ``channel`` makes unary-stream calls without gRPC's channel-spin thread (the
    class name is gRPC's own: if gRPC renames it, this fails and the option needs a look)."""
    return type(channel.unary_stream(READ_ROWS)).__name__ == \
        "_SingleThreadedUnaryStreamMultiCallable"


def test_the_option_is_grpc_pythons_own_name() -> None:
    assert SINGLE_THREADED_STREAMS[0][0] == grpc.experimental.ChannelOptions.SingleThreadedUnaryStream


def test_the_consumers_generated_client_reads_streams_on_the_calling_thread() -> None:
    client = gapic_client("localhost:1")
    try:
        assert _single_threaded(client.transport.grpc_channel)
    finally:
        client.transport.close()


def test_the_serving_data_client_reads_streams_on_the_calling_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIGTABLE_EMULATOR_HOST", "localhost:1")
    client = data_client_class()(project="p")
    try:
        assert _single_threaded(client.transport.grpc_channel)
    finally:
        client.close()


def test_a_plain_channel_is_multi_threaded_so_the_check_can_fail() -> None:
    channel = grpc.insecure_channel("localhost:1", options=CHANNEL_OPTIONS)
    try:
        assert not _single_threaded(channel)
    finally:
        channel.close()


def test_the_gcp_channel_factory_adds_the_option_to_the_transports_own() -> None:
    """Unit test with a fake channel creator standing in for the transport's."""
    seen: dict[str, object] = {}

    def create(host: str, **kwargs: object) -> str:
        seen.update(kwargs, host=host)
        return "channel"

    made = _with_stream_option(create)("bigtable.googleapis.com", credentials=None,
                                       options=[("grpc.max_send_message_length", -1)])
    assert made == "channel"
    assert seen["host"] == "bigtable.googleapis.com"
    assert seen["options"] == [("grpc.max_send_message_length", -1), *SINGLE_THREADED_STREAMS]


@pytest.mark.parametrize("make", ["generated", "data"])
def test_no_credentials_on_gcp_is_a_named_error_with_the_fix(
        make: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from pulse_local.errors import ConfigError

    monkeypatch.delenv("BIGTABLE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="gcloud auth application-default login"):
        if make == "generated":
            gapic_client(None)
        else:
            from pulse_local.config import Settings
            from pulse_local.streaming.layout import bigtable_data_client

            bigtable_data_client(Settings(profile="gcp"))
