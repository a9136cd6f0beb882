"""Integration: the `gcp` profile's code runs against the emulators when Google's emulator
variables are set (so CI exercises it), and fails with a named error where no emulator exists."""

from __future__ import annotations

from typing import Any

import pytest

from pulse_local.backends import for_profile
from pulse_local.config import Settings
from pulse_local.doctor import run_checks
from pulse_local.errors import ConfigError

pytestmark = pytest.mark.integration


def gcp_settings(local: Settings) -> Settings:
    """The session stack's settings on profile gcp: the settings gcp requires set explicitly
    (to the stack's own values), and the stack's emulators named (Settings reads Google's
    variables; the session's settings clear them, so they are set here)."""
    return local.model_copy(update={
        "profile": "gcp", "project": local.project, "raw_bucket": local.raw_bucket,
        "database_url": local.app_dsn(), "admin_database_url": local.admin_dsn(),
        "pubsub_emulator_host": f"{local.host}:{local.pubsub_port}",
        "bigtable_emulator_host": f"{local.host}:{local.bigtable_port}"})


def test_gcp_profile_uses_the_emulators_when_their_variables_are_set(
    pulse_stack: Any, pulse_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    results = {r.service: r for r in run_checks(gcp_settings(pulse_settings))}
    assert results["pubsub"].ok, results["pubsub"].detail
    assert results["bigtable"].ok, results["bigtable"].detail
    assert results["postgres"].ok, results["postgres"].detail  # Cloud SQL is Postgres: same code


def test_gcp_bus_publishes_through_the_emulator(
    pulse_stack: Any, pulse_settings: Settings, pubsub_publisher: Any, pubsub_subscriber: Any
) -> None:
    project = pulse_settings.project
    topic = pubsub_publisher.topic_path(project, "profile-check")
    sub = pubsub_subscriber.subscription_path(project, "profile-check")
    pubsub_publisher.create_topic(request={"name": topic})
    pubsub_subscriber.create_subscription(request={"name": sub, "topic": topic})
    message_id = for_profile(gcp_settings(pulse_settings)).bus.publish(
        "profile-check", b"from-gcp-code", origin="test"
    )
    pulled = pubsub_subscriber.pull(request={"subscription": sub, "max_messages": 1}, timeout=10)
    got = pulled.received_messages[0].message
    assert (got.message_id, got.data, got.attributes["origin"]) == (message_id, b"from-gcp-code", "test")


@pytest.mark.parametrize("on_loop", [False, True], ids=["publish_many", "apublish_many"])
def test_many_messages_are_published_in_requests_within_the_limit(
    pulse_stack: Any, pulse_settings: Settings, pubsub_publisher: Any, pubsub_subscriber: Any,
    monkeypatch: pytest.MonkeyPatch, on_loop: bool
) -> None:
    """Seven messages with a limit of three a request: three Publish calls, every message
    delivered once with its attributes, ids in order (gcp code, through the emulator)."""
    import asyncio
    import uuid

    from pulse_local import backends

    name = f"many-{uuid.uuid4().hex[:8]}"
    project = pulse_settings.project
    topic, sub = pubsub_publisher.topic_path(project, name), \
        pubsub_subscriber.subscription_path(project, name)
    pubsub_publisher.create_topic(request={"name": topic})
    pubsub_subscriber.create_subscription(request={"name": sub, "topic": topic})
    monkeypatch.setattr(backends, "PUBLISH_MANY_MAX_MESSAGES", 3)
    bus = for_profile(gcp_settings(pulse_settings)).bus
    messages = [(f"m{i}".encode(), {"n": str(i)}) for i in range(7)]
    if on_loop:
        async def publish_then_close() -> list[str]:
            try:
                return await bus.apublish_many(name, messages)
            finally:
                await bus.aclose()

        ids = asyncio.run(publish_then_close())
    else:
        ids = bus.publish_many(name, messages)
    assert len(set(ids)) == 7
    got: dict[str, tuple[bytes, str]] = {}
    for _ in range(20):
        pulled = pubsub_subscriber.pull(request={"subscription": sub, "max_messages": 10},
                                        timeout=10).received_messages
        got.update({r.message.message_id: (r.message.data, r.message.attributes["n"])
                    for r in pulled})
        if len(got) == 7:
            break
    assert [got[i] for i in ids] == [(data, attrs["n"]) for data, attrs in messages]


def test_gcp_warehouse_without_credentials_is_a_named_error(
    pulse_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="gcloud auth application-default login"):
        for_profile(gcp_settings(pulse_settings)).warehouse.query("select 1")
