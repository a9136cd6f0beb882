"""Component options from the environment: a bad value is a named `ConfigError` (no sockets)."""

from __future__ import annotations

import pytest

from pulse_local.config import load_options
from pulse_local.errors import ConfigError
from pulse_local.ingest.options import ProcessorOptions
from pulse_local.streaming.options import StreamingOptions


def test_bad_value_names_the_variable_and_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_STREAMING_MAX_FAILED_ATTEMPTS", "0")
    with pytest.raises(ConfigError) as err:
        load_options(StreamingOptions)
    message = str(err.value)
    assert "PULSE_STREAMING_MAX_FAILED_ATTEMPTS='0'" in message
    assert "greater than or equal to 1" in message


def test_each_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_PROCESSOR_WORKERS", "many")
    monkeypatch.setenv("PULSE_PROCESSOR_MAX_BODY_BYTES", "-1")
    with pytest.raises(ConfigError) as err:
        load_options(ProcessorOptions)
    assert "PULSE_PROCESSOR_WORKERS='many'" in str(err.value)
    assert "PULSE_PROCESSOR_MAX_BODY_BYTES='-1'" in str(err.value)


def test_good_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_STREAMING_MAX_FAILED_ATTEMPTS", "7")
    assert load_options(StreamingOptions).max_failed_attempts == 7


def test_consumer_cli_reports_it_and_exits_1(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from pulse_local.streaming.__main__ import main

    monkeypatch.setenv("PULSE_STREAMING_WORKERS", "0")
    # endpoints that answer nothing: the options are refused before any client is made
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("BIGTABLE_EMULATOR_HOST", "127.0.0.1:9")
    assert main(["consume", "--idle-timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert "error: invalid StreamingOptions: PULSE_STREAMING_WORKERS='0'" in err
    assert "Traceback" not in err
