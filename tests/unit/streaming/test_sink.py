"""The local raw sink: atomic Parquet files read through DuckDB views (no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from pulse_local.streaming.sink import LocalParquetSink, RawMessage, read_raw


def _msg(mid: str, event: str, minutes: int = 0) -> RawMessage:
    return RawMessage("projects/p/subscriptions/response-events-bigquery", mid,
                      datetime(2024, 5, 1, tzinfo=UTC) + timedelta(minutes=minutes),
                      b'{"x": 1}', {"event_id": event})


def test_files_are_partitioned_and_deduplicated_on_read(tmp_path: Path) -> None:
    sink = LocalParquetSink(tmp_path)
    sink.ensure()
    assert read_raw(tmp_path) == []  # the schema file makes an empty table readable
    sink.write([_msg("1", "e1"), _msg("2", "e2")])
    sink.write([_msg("1", "e1"), _msg("3", "e2", 5), _msg("4", "e3", 60 * 24)])
    assert sorted(p.parent.name for p in tmp_path.rglob("part-*.parquet")) == [
        "dt=2024-05-01", "dt=2024-05-01", "dt=2024-05-02"]
    assert not list(tmp_path.rglob("*.tmp"))
    assert len(read_raw(tmp_path, dedup=False)) == 5
    rows = read_raw(tmp_path)
    assert [r[1] for r in rows] == ["1", "2", "4"]  # one row per event id, earliest publish
    assert rows[0][3] == '{"x": 1}'


def test_rows_hold_attributes_as_sorted_json_and_land_by_utc_date(tmp_path: Path) -> None:
    import duckdb

    sink = LocalParquetSink(tmp_path)
    late_evening_new_york = datetime(2024, 5, 1, 21, 30, tzinfo=timezone(timedelta(hours=-4)))
    sink.write([RawMessage("projects/p/subscriptions/s", "m1", late_evening_new_york, b"{}",
                           {"tenant_id": "t", "event_id": "e", "a": "1"})])
    (part,) = tmp_path.rglob("part-*.parquet")
    assert part.parent.name == "dt=2024-05-02"  # 01:30 UTC the next day
    stored, published = duckdb.sql(
        f"select attributes, publish_time from read_parquet('{part}')").fetchone()
    assert stored == '{"a": "1", "event_id": "e", "tenant_id": "t"}'
    assert published == datetime(2024, 5, 2, 1, 30, tzinfo=UTC)
