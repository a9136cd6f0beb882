"""The Prefect launcher skips migrations and block registration only when a full start recorded
the same Prefect version, collections, database URL and database revision (files only: no
server is started here)."""

from __future__ import annotations

from pathlib import Path

from pulse_local.stack.prefect_server import (
    MEMO,
    may_skip_start_steps,
    memo_path,
    start_facts,
    write_memo,
)

URL = "postgresql+asyncpg://u:pw@127.0.0.1:5432/prefect"


def test_the_facts_name_prefect_its_collections_and_no_password() -> None:
    facts = start_facts({"PREFECT_API_DATABASE_CONNECTION_URL": URL})
    assert facts["prefect"].count(".") >= 2
    assert any(c.startswith("prefect-dbt==") for c in facts["collections"])
    assert "pw" not in str(facts)
    assert facts != start_facts({"PREFECT_API_DATABASE_CONNECTION_URL": URL + "2"})


def test_a_recorded_full_start_is_skipped_only_while_nothing_changed(tmp_path: Path) -> None:
    memo = memo_path({"PREFECT_HOME": str(tmp_path)})
    assert memo == tmp_path / MEMO
    facts = start_facts({"PREFECT_API_DATABASE_CONNECTION_URL": URL})
    assert not may_skip_start_steps(memo, facts, "abc123")  # no full start recorded yet
    write_memo(memo, facts, "abc123")
    assert may_skip_start_steps(memo, facts, "abc123")
    assert not may_skip_start_steps(memo, facts, "def456")  # database at another revision
    assert not may_skip_start_steps(memo, facts, None)  # database not migrated (recreated)
    assert not may_skip_start_steps(memo, {**facts, "prefect": "0.0.1"}, "abc123")
    assert not may_skip_start_steps(memo, {**facts, "collections": []}, "abc123")


def test_an_unreadable_memo_means_a_full_start(tmp_path: Path) -> None:
    memo = tmp_path / MEMO
    memo.write_text("{not json")
    facts = start_facts({"PREFECT_API_DATABASE_CONNECTION_URL": URL})
    assert not may_skip_start_steps(memo, facts, "abc123")
    assert not may_skip_start_steps(None, facts, "abc123")
