"""Integration: a snapshot taken at an older schema migration level is restored and `up`
brings it to this code's level with every row intact (real PostgreSQL and Pub/Sub emulator on
their own stack and free ports). The older level is made for real: the stack is first started
with the migrations directory holding all but the last migration."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulse_local.config import Settings
from pulse_local.source import migrations
from pulse_local.stack import snapshot
from pulse_local.stack.native import NativeStack
from pulse_local.stack.services import native_services
from pulse_local.testing.plugin import make_test_settings

pytestmark = pytest.mark.integration

SERVICES = {"postgres", "pubsub"}
#: Tables whose every row must come through the migration unchanged.
TABLES = ("organizations", "users", "questions", "responses", "answers", "webhook_deliveries")


@pytest.fixture()
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Settings]:
    s = make_test_settings().model_copy(update={"snapshot_dir": tmp_path / "snapshots"})
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"{s.host}:{s.pubsub_port}")
    yield s
    NativeStack(s).down(save=False)
    shutil.rmtree(s.state_dir, ignore_errors=True)


def _rows(settings: Settings) -> dict[str, list[str]]:
    """Every row of `TABLES` as the md5 of its text, sorted, as the owner role (all tenants)."""
    import psycopg
    from psycopg import sql

    query = sql.SQL("select md5(x::text) from {} x order by 1")
    with psycopg.connect(settings.admin_dsn()) as conn:
        return {t: [r[0] for r in conn.execute(query.format(sql.Identifier(t)))] for t in TABLES}


def _leading_column(settings: Settings, index: str) -> str:
    """The first column of an index (0004 reorders users_team_idx to lead with team_id)."""
    import psycopg

    with psycopg.connect(settings.admin_dsn()) as conn:
        row = conn.execute(
            "select a.attname from pg_index i join pg_class c on c.oid = i.indexrelid "
            "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0] "
            "where c.relname = %s", (index,)).fetchone()
    assert row is not None, f"index {index} is missing"
    return str(row[0])


def test_an_older_level_snapshot_is_migrated_to_head_with_its_rows(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pulse_local.source.bulk import bulk_load
    from pulse_local.source.fixtures import generate
    from pulse_local.source.seed import seed_reference_data

    every = migrations.discover()
    head, older = every[-1], every[:-1]
    old_dir = tmp_path / "older-migrations"
    old_dir.mkdir()
    for m in older:
        shutil.copy(m.path, old_dir / m.path.name)
    real_migrate = migrations.migrate
    # the stack's bootstrap imports `migrate` when it runs: this code is one migration behind
    monkeypatch.setattr(migrations, "migrate",
                        lambda s, directory=old_dir: real_migrate(s, old_dir))
    stack = NativeStack(settings, [s for s in native_services(settings) if s.name in SERVICES])
    stack.up()
    assert migrations.applied_versions(settings) == [m.version for m in older]
    generate(1, 7, tmp_path / "fixtures")
    seed_reference_data(settings, tmp_path / "fixtures")
    loaded = bulk_load(settings, tmp_path / "fixtures")
    assert loaded.responses_written > 0
    before = _rows(settings)
    assert all(before[t] for t in TABLES)

    saved = snapshot.save(settings, "older", stack=stack)
    assert saved.manifest.migration_level == older[-1].version
    assert head.version not in saved.manifest.migrations
    stack.down()
    monkeypatch.setattr(migrations, "migrate", real_migrate)  # this code again: at head
    shutil.rmtree(settings.state_dir)  # restore into an empty state directory

    restored = snapshot.restore(settings, "older", stack=stack)
    assert any(f"snapshot schema level {older[-1].version}" in n for n in restored.notes)
    assert migrations.applied_versions(settings) == [m.version for m in every]
    assert head.name == "index_order" and _leading_column(settings, "users_team_idx") == "team_id"
    assert _rows(settings) == before
    # a snapshot of the migrated state records the head level
    again = snapshot.save(settings, "migrated", stack=stack)
    assert again.manifest.migration_level == head.version
