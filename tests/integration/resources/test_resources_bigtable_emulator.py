"""apply_bigtable against the real Bigtable emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any  # the `emulators` fixture of conftest.py: .pubsub_host, .bigtable_host

import pytest
from google.cloud.bigtable import Client
from google.cloud.bigtable import column_family as cf

from pulse_local.errors import ServiceUnavailable
from pulse_local.resources import (
    apply_bigtable,
    bigtable_admin_client,
    bigtable_ready,
    close_bigtable_client,
    load_bigtable,
)

pytestmark = pytest.mark.integration

INSTANCE = "pulse"


@pytest.fixture
def admin(emulators: Any, project: str) -> Iterator[Client]:
    client = bigtable_admin_client(project, emulators.bigtable_host)
    yield client
    close_bigtable_client(client)


def _families(admin: Client, table: str) -> dict[str, object]:
    return {
        fid: family.gc_rule.to_pb()
        for fid, family in admin.instance(INSTANCE).table(table).list_column_families().items()
    }


def test_apply_twice_creates_then_exists(admin: Client) -> None:
    decl = load_bigtable()
    first = apply_bigtable(decl, admin, INSTANCE)
    assert first.names("created", "table") == ["events_fact", "events_aggregate", "events_dedup"]
    assert sorted(first.names("created", "column_family")) == [
        "events_aggregate/counts",
        "events_aggregate/pending",
        "events_dedup/seen",
        "events_fact/event",
        "events_fact/meta",
        "events_fact/quality",
    ]
    second = apply_bigtable(decl, admin, INSTANCE)
    assert {r.action for r in second.results} == {"exists"}
    assert len(second.results) == len(first.results)


def test_column_families_and_gc_rules(admin: Client) -> None:
    apply_bigtable(load_bigtable(), admin, INSTANCE)
    tables = {t.table_id for t in admin.instance(INSTANCE).list_tables()}
    assert tables == {"events_fact", "events_aggregate", "events_dedup"}
    one_version = cf.MaxVersionsGCRule(1).to_pb()
    assert _families(admin, "events_fact") == {
        "event": one_version,
        "meta": one_version,
        "quality": one_version,
    }
    assert _families(admin, "events_aggregate") == {"counts": one_version,
                                                    "pending": one_version}
    assert _families(admin, "events_dedup") == {"seen": cf.MaxAgeGCRule(timedelta(days=7)).to_pb()}


def test_drift_is_repaired_or_reported(admin: Client) -> None:
    table = admin.instance(INSTANCE).table("events_fact")
    table.create(
        column_families={
            "event": cf.MaxVersionsGCRule(3),  # drifted GC rule
            "legacy": cf.MaxVersionsGCRule(1),  # not declared
        }
    )  # meta and quality are missing
    report = apply_bigtable(load_bigtable(), admin, INSTANCE)
    actions = {r.name: r.action for r in report.results if r.name.startswith("events_fact")}
    assert actions == {
        "events_fact": "exists",
        "events_fact/event": "updated",
        "events_fact/meta": "created",
        "events_fact/quality": "created",
        "events_fact/legacy": "drift",
    }
    families = _families(admin, "events_fact")
    assert families["event"] == cf.MaxVersionsGCRule(1).to_pb()
    assert set(families) == {"event", "meta", "quality", "legacy"}  # nothing deleted
    again = apply_bigtable(load_bigtable(), admin, INSTANCE)
    assert not again.changed
    assert [r.name for r in again.drifted] == ["events_fact/legacy"]


def test_data_round_trip_in_a_declared_family(admin: Client, emulators: Any) -> None:
    apply_bigtable(load_bigtable(), admin, INSTANCE)
    table = admin.instance(INSTANCE).table("events_dedup")
    row = table.direct_row(b"event-1")
    row.set_cell("seen", b"at", b"2024-01-01T00:00:00Z")
    row.commit()
    assert table.read_row(b"event-1").cells["seen"][b"at"][0].value == b"2024-01-01T00:00:00Z"


def test_probe_answers_and_fails_fast(emulators: Any) -> None:
    bigtable_ready(emulators.bigtable_host, "probe-project", INSTANCE)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="does not answer ListTables"):
        bigtable_ready("127.0.0.1:1", "probe-project", INSTANCE, timeout=0.5)
    assert time.monotonic() - started < 5
