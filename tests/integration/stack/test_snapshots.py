"""Integration: a whole-stack snapshot brings every layer back to the saved point, and a
damaged file is refused while the running stack goes on (real PostgreSQL, CDC, emulators,
processor and consumer on their own stack and free ports)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulse_local.config import Settings
from pulse_local.errors import SnapshotCorrupt
from pulse_local.stack import snapshot
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import native_services
from pulse_local.testing.plugin import make_test_settings, start_from_snapshot

pytestmark = pytest.mark.integration

PIPELINE = {"postgres", "pubsub", "bigtable", "processor", "cdc", "streaming"}


@pytest.fixture()
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Settings]:
    s = make_test_settings().model_copy(update={"snapshot_dir": tmp_path / "snapshots"})
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"{s.host}:{s.pubsub_port}")
    monkeypatch.setenv("BIGTABLE_EMULATOR_HOST", f"{s.host}:{s.bigtable_port}")
    yield s
    NativeStack(s).down(save=False)
    shutil.rmtree(s.state_dir, ignore_errors=True)


def _post(settings: Settings, deliveries: list[tuple[str, str, bytes]]) -> None:
    from pulse_local.source.replay import replay_async

    outcome = asyncio.run(replay_async(f"http://{settings.host}:{settings.processor_port}",
                                       deliveries, concurrency=8, progress=False))
    assert set(outcome.statuses) == {200}, outcome.statuses


def _postgres(settings: Settings) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(settings.admin_dsn()) as conn:
        return {
            "responses": conn.execute("select id::text, md5(r::text) from responses r "
                                      "order by 1").fetchall(),
            "deliveries": conn.execute("select count(*) from webhook_deliveries").fetchone(),
            "events": conn.execute("select count(*) from webhook_deliveries where outcome in "
                                   "('created', 'revised')").fetchone()[0],
            "tenants": [r[0] for r in conn.execute(
                "select distinct tenant_id from responses order by 1")],
        }


def _raw_files(settings: Settings) -> dict[str, str]:
    """Every landed file of the raw layer (CDC tables and the raw events sink)."""
    root = settings.state_dir / "warehouse" / "raw"
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.parquet"))}


def _raw_events(settings: Settings, *, dedup: bool = True) -> list[str]:
    from pulse_local.streaming.sink import raw_events_dir, read_raw

    root = raw_events_dir(settings)
    return (sorted(json.loads(r[4])["event_id"] for r in read_raw(root, dedup=dedup))
            if root.exists() else [])


def _cdc_responses(settings: Settings) -> set[str]:
    """Response ids in the CDC raw layer; fails if a change event landed twice."""
    import duckdb

    from pulse_local.cdc import refresh_views

    with duckdb.connect() as conn:
        refresh_views(conn, settings)
        total, distinct = conn.execute(
            "select count(*), count(distinct datastream_metadata.change_sequence_number) "
            "from raw.public_responses").fetchone()
        assert total == distinct, f"{total - distinct} change events landed twice"
        return {r[0] for r in conn.execute(
            "select distinct id::text from raw.public_responses").fetchall()}


def _counters(settings: Settings, tenants: list[uuid.UUID]) -> dict[str, Any]:
    from pulse_local.streaming.testing import fact_event_ids, tenant_total

    return {str(t): (tenant_total(settings, t).events, sorted(fact_event_ids(settings, t)))
            for t in tenants}


def _settled(settings: Settings) -> dict[str, Any]:
    """Wait until CDC landed everything and every stored revision reached the raw sink and
    Bigtable; then the layers' picture."""
    from pulse_local.cdc import drain

    drain(settings, timeout=60)
    pg = _postgres(settings)
    deadline = time.monotonic() + 60
    while len(_raw_events(settings)) < pg["events"] and time.monotonic() < deadline:
        time.sleep(0.3)
    counters = _counters(settings, pg["tenants"])
    while (sum(c[0] for c in counters.values()) < pg["events"]
           and time.monotonic() < deadline):
        time.sleep(0.3)
        counters = _counters(settings, pg["tenants"])
    return {"postgres": pg, "raw": _raw_files(settings), "events": _raw_events(settings),
            "bigtable": counters}


def test_restore_brings_every_layer_back_and_a_damaged_file_is_refused(
        settings: Settings, tmp_path: Path) -> None:
    from pulse_local.source.fixtures import generate
    from pulse_local.source.replay import load_deliveries
    from pulse_local.source.seed import seed_reference_data

    stack = NativeStack(settings, [s for s in native_services(settings) if s.name in PIPELINE])
    stack.up()
    generate(1, 11, tmp_path / "fixtures")
    seed_reference_data(settings, tmp_path / "fixtures")
    deliveries = load_deliveries(tmp_path / "fixtures")
    _post(settings, deliveries[:120])
    saved_point = _settled(settings)
    assert saved_point["postgres"]["events"] > 0
    assert len(saved_point["events"]) == saved_point["postgres"]["events"]
    assert sum(c[0] for c in saved_point["bigtable"].values()) == saved_point["postgres"]["events"]

    report = snapshot.save(settings, "point", stack=stack)
    assert report.manifest.responses == len(saved_point["postgres"]["responses"])
    assert not any(name.startswith(("secrets/", "run/", "logs/"))
                   for name in report.manifest.files)
    from pulse_local.testing.secret_scan import leaks, stack_secrets

    secrets = stack_secrets(settings)
    assert sum(name.startswith("webhook secret") for name in secrets) >= 1
    assert leaks({"manifest": report.manifest.to_json().decode()}, secrets) == []
    assert "emulators/bigtable.jsonl.gz" in report.manifest.files
    assert {s.name for s in stack.status() if s.health == "healthy"} == PIPELINE

    _post(settings, deliveries[120:200])
    changed = _settled(settings)
    assert changed["postgres"] != saved_point["postgres"]
    assert changed["bigtable"] != saved_point["bigtable"]

    restored = snapshot.restore(settings, "point", stack=stack)
    assert restored.manifest.name == "point"
    assert not (settings.state_dir.parent / f".{settings.state_dir.name}.before-restore").exists()
    assert _settled(settings) == saved_point

    damaged = settings.snapshot_dir / "damaged.tar.zst"  # type: ignore[operator]
    whole = report.path.read_bytes()
    damaged.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SnapshotCorrupt, match="corrupt or truncated"):
        snapshot.restore(settings, str(damaged), stack=stack)
    assert {s.name for s in stack.status() if s.health == "healthy"} == PIPELINE
    assert _postgres(settings) == saved_point["postgres"]
    assert not (settings.state_dir.parent / f".{settings.state_dir.name}.restoring").exists()

    # after the restore CDC resumes from the snapshot's slot position: new changes land, once
    _post(settings, deliveries[120:150])
    after = _settled(settings)
    assert len(after["events"]) == after["postgres"]["events"] > saved_point["postgres"]["events"]
    assert _cdc_responses(settings) == {r[0] for r in after["postgres"]["responses"]}

    # a snapshot taken mid-stream (CDC, Pub/Sub and the consumer still busy): after its
    # restore every layer catches up to its PostgreSQL, nothing landed or counted twice
    _post(settings, deliveries[150:200])
    at_save = _postgres(settings)
    snapshot.save(settings, "midstream", stack=stack)
    _post(settings, deliveries[200:230])
    snapshot.restore(settings, "midstream", stack=stack)
    caught_up = _settled(settings)
    assert caught_up["postgres"] == at_save
    assert len(caught_up["events"]) == len(set(caught_up["events"])) == at_save["events"]
    # the sink is at-least-once (a batch lands before its messages are acked; its `_dedup`
    # view drops repeats): repeats of saved events may be there, nothing else
    assert set(_raw_events(settings, dedup=False)) == set(caught_up["events"])
    assert sum(c[0] for c in caught_up["bigtable"].values()) == at_save["events"]
    assert _cdc_responses(settings) == {r[0] for r in at_save["responses"]}

    # the pytest plugin's PULSE_TEST_SNAPSHOT path: the file into a new, empty state directory
    stack.down()
    fresh = make_test_settings().model_copy(update={
        name: getattr(settings, name) for name in ("postgres_port", "pubsub_port",
                                                   "bigtable_port", "processor_port",
                                                   "snapshot_dir")})
    other = NativeStack(fresh, [s for s in native_services(fresh) if s.name in PIPELINE])
    try:
        start_from_snapshot(fresh, other, str(report.path))
        # the snapshot carried no secret: this stack made its own passwords and set them on
        # the restored roles (single-user mode, before the server started); both roles work
        assert fresh.admin_password() != settings.admin_password()
        assert fresh.app_password() != settings.app_password()
        assert _settled(fresh) == saved_point
        import psycopg

        with psycopg.connect(fresh.app_dsn()) as conn:
            assert conn.execute("select current_user").fetchone() == (fresh.db_app_user,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(fresh.app_dsn().replace(fresh.app_password(),
                                                    settings.app_password()))
        # a stopped stack is snapshotted too (PostgreSQL alone, briefly, for the manifest)
        other.down()
        cold = snapshot.save(fresh, "cold", stack=other)
        assert cold.manifest.responses == report.manifest.responses
        assert cold.manifest.migrations == report.manifest.migrations
        assert all(s.health == "down" for s in other.status())
    finally:
        other.down(save=False)
        shutil.rmtree(fresh.state_dir, ignore_errors=True)
