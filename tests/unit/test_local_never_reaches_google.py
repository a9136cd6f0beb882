"""On profile local, every service started without emulator endpoints refuses to start.

Each entry point runs in a child process whose environment is empty but for
``PULSE_PROFILE=local`` (and ``PYTHONPATH``, so the child imports this checkout). It must exit
non-zero with `EmulatorEndpointMissing`'s message, naming the missing variable and the commands
that set it, before it writes anything (no signing key, nothing in its working directory).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pulse_local
from pulse_local.backends import PubSubBus, for_profile, require_emulator_endpoints
from pulse_local.config import Settings
from pulse_local.errors import EmulatorEndpointMissing
from pulse_local.serving.auth import signing_key_path

ENTRY_POINTS = [
    (["-m", "pulse_local.ingest"], ["PUBSUB_EMULATOR_HOST"]),
    (["-m", "pulse_local.streaming", "consume"],
     ["PUBSUB_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST"]),
    (["-m", "pulse_local.serving"], ["BIGTABLE_EMULATOR_HOST"]),
    (["-m", "pulse_local.orchestration"], ["PUBSUB_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST"]),
]


@pytest.mark.parametrize(("argv", "missing"), ENTRY_POINTS, ids=lambda v: " ".join(v))
def test_a_service_without_emulator_endpoints_refuses_to_start(
        argv: list[str], missing: list[str], tmp_path: Path) -> None:
    source = str(Path(pulse_local.__file__).resolve().parents[1])
    key = signing_key_path(Settings())
    key_existed = key.exists()
    done = subprocess.run([sys.executable, *argv], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={"PULSE_PROFILE": "local", "PYTHONPATH": source})
    assert done.returncode != 0, done.stdout + done.stderr
    assert "PULSE_PROFILE=local but" in done.stderr, done.stderr
    for name in missing:
        assert name in done.stderr, done.stderr
    assert "pulse-local up" in done.stderr and 'eval "$(pulse-local env)"' in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []
    assert key.exists() == key_existed


def test_the_check_is_local_only_and_names_each_missing_variable() -> None:
    with pytest.raises(EmulatorEndpointMissing, match="PUBSUB_EMULATOR_HOST and BIGTABLE"):
        require_emulator_endpoints(Settings(), "x", pubsub=True, bigtable=True)
    require_emulator_endpoints(Settings(pubsub_emulator_host="h:1"), "x", pubsub=True)
    require_emulator_endpoints(Settings(profile="gcp"), "x", pubsub=True, bigtable=True)


def test_the_bus_gets_its_endpoint_from_the_profile_not_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    bus = for_profile(Settings(pubsub_port=18085)).bus
    assert isinstance(bus, PubSubBus) and bus.endpoint == "127.0.0.1:18085"
    # the client is built for that endpoint although the process environment names none
    # (grpc's channel keeps its target in a private attribute: no public accessor)
    assert bus.client.transport.grpc_channel._channel.target() == b"dns:///127.0.0.1:18085"
    assert PubSubBus("p", None).endpoint is None
