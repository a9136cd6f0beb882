"""Round trips through every service: what `pulse-local doctor` and the `check_stack` flow run.

Each check does real work (write then read back) and cleans up after itself. The same code runs
on both profiles: the clients reach the emulators or GCP depending on the environment.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pulse_local.config import Settings


@dataclass(frozen=True)
class CheckResult:
    """One round trip: which service, what was done, whether it came back right, how long."""

    service: str
    operation: str
    ok: bool
    seconds: float
    detail: str = ""


def _timed(service: str, operation: str, check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # noqa: BLE001 - a failed round trip is a result to report, not a crash
        return CheckResult(service, operation, False, time.perf_counter() - started,
                           f"{type(exc).__name__}: {exc}"[:300])
    return CheckResult(service, operation, True, time.perf_counter() - started, detail)


def check_postgres(settings: Settings) -> str:
    """Write and read a row as the application role (not a superuser: RLS applies to it)."""
    import psycopg

    token = uuid.uuid4().hex
    with psycopg.connect(settings.app_dsn(), connect_timeout=5) as conn:
        role = conn.execute("select current_user, rolsuper, rolbypassrls from pg_roles "
                            "where rolname = current_user").fetchone()
        if role is None or role[1] or role[2]:
            raise RuntimeError(f"application role {role} must be neither superuser nor BYPASSRLS")
        conn.execute("create temp table doctor_roundtrip (token text primary key)")
        conn.execute("insert into doctor_roundtrip values (%s)", (token,))
        got = conn.execute("select token from doctor_roundtrip").fetchone()
    if got != (token,):
        raise RuntimeError(f"wrote {token}, read {got}")
    return f"as {role[0]} (no superuser, no bypassrls)"


def check_pubsub(settings: Settings) -> str:
    """Publish a message to a fresh topic and pull it back from a fresh subscription."""
    from pulse_local.resources import close_pubsub_clients, pubsub_clients, pubsub_endpoint

    name = f"doctor-{uuid.uuid4().hex[:12]}"
    publisher, subscriber = pubsub_clients(pubsub_endpoint(settings, settings.profile))
    topic = publisher.topic_path(settings.project, name)
    subscription = subscriber.subscription_path(settings.project, name)
    publisher.create_topic(request={"name": topic})
    try:
        subscriber.create_subscription(request={"name": subscription, "topic": topic})
        try:
            payload = uuid.uuid4().hex.encode()
            publisher.publish(topic, payload).result(timeout=10)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                pulled = subscriber.pull(request={"subscription": subscription, "max_messages": 1},
                                         timeout=5)
                if pulled.received_messages:
                    message = pulled.received_messages[0]
                    subscriber.acknowledge(request={"subscription": subscription,
                                                    "ack_ids": [message.ack_id]})
                    if message.message.data != payload:
                        raise RuntimeError("pulled a different message than was published")
                    return f"published and pulled on {name}"
            raise RuntimeError("published message was not delivered within 10 s")
        finally:
            subscriber.delete_subscription(request={"subscription": subscription})
    finally:
        publisher.delete_topic(request={"topic": topic})
        close_pubsub_clients(publisher, subscriber)


def check_bigtable(settings: Settings) -> str:
    """Create a scratch table, write a cell, read it back, drop the table."""
    from google.cloud.bigtable import column_family

    from pulse_local.resources import (
        bigtable_admin_client,
        bigtable_endpoint,
        close_bigtable_client,
    )

    client = bigtable_admin_client(settings.project,
                                   bigtable_endpoint(settings, settings.profile))
    table = client.instance(settings.bigtable_instance).table(f"doctor_{uuid.uuid4().hex[:8]}")
    table.create(column_families={"cf": column_family.MaxVersionsGCRule(1)})
    try:
        value = uuid.uuid4().hex.encode()
        row = table.direct_row(b"doctor#1")
        row.set_cell("cf", b"v", value)
        row.commit()
        got = table.read_row(b"doctor#1")
        if got is None or got.cells["cf"][b"v"][0].value != value:
            raise RuntimeError("the cell read back differs from the one written")
    finally:
        table.delete()
        close_bigtable_client(client)
    return "wrote and read a cell"


#: The dataset (DuckDB schema) the warehouse round trip writes its table into: BigQuery has no
#: table outside a dataset, so the name is always qualified. dbt's staging dataset exists on
#: both profiles once provisioned (`create schema if not exists` covers a fresh DuckDB file).
DOCTOR_DATASET = "staging"


def warehouse_roundtrip(warehouse: Any) -> str:
    """Create a table in `warehouse` (a `Warehouse`), query it, drop it."""
    name = f"{DOCTOR_DATASET}.doctor_{uuid.uuid4().hex[:8]}"
    rows = warehouse.query(
        f"create schema if not exists {DOCTOR_DATASET}; "
        f"create table {name} as select 41 + 1 as answer; select answer from {name}; "
    )
    warehouse.query(f"drop table {name}")
    if rows != [(42,)]:
        raise RuntimeError(f"expected [(42,)], got {rows}")
    return f"created, queried and dropped {name}"


def check_warehouse(settings: Settings) -> str:
    """Create a table in the warehouse, query it, drop it."""
    from pulse_local.backends import for_profile

    return warehouse_roundtrip(for_profile(settings).warehouse)


CHECKS: list[tuple[str, str, Callable[[Settings], str]]] = [
    ("postgres", "write+read row as app role", check_postgres),
    ("pubsub", "publish+pull", check_pubsub),
    ("bigtable", "write+read cell", check_bigtable),
    ("warehouse", "create+query table", check_warehouse),
]


def run_checks(settings: Settings) -> list[CheckResult]:
    """Run every round trip (one after another: they are quick) and return the results."""
    return [_timed(service, op, functools.partial(fn, settings)) for service, op, fn in CHECKS]
