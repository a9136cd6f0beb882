"""The runner's classification, end to end on a small file written for this test (real DuckDB)."""

from __future__ import annotations

import mmap
from pathlib import Path

from pulse_local.conformance.runner import WORKER_MEMORY_BYTES, run_file, run_file_isolated
from pulse_local.conformance.source import TESTDATA, ComplianceSource

SAMPLE = """\
[default_time_zone=UTC]
[prepare_database]
CREATE TABLE Fruit AS SELECT 1 AS id, "apple" AS name, 1.5 AS price
--
ARRAY<STRUCT<id INT64, name STRING, price DOUBLE>>[{1, "apple", 1.5}, {2, "pear", NULL}]
==
[name=right_answer]
SELECT name FROM Fruit WHERE price > 1
--
ARRAY<STRUCT<name STRING>>[{"apple"}]
==
[name=wrong_on_purpose]
SELECT COUNT(*) FROM Fruit
--
ARRAY<STRUCT<INT64>>[{3}]
==
[name=error_expected_and_raised]
SELECT 1 / 0
--
ERROR: generic::out_of_range: division by zero: 1 / 0
==
[name=error_expected_result_returned]
SELECT 1
--
ERROR: generic::invalid_argument: made up for this test
==
[name=untranslatable_case]
SELECT NTILE(0) OVER (ORDER BY id) FROM Fruit
--
ARRAY<STRUCT<INT64>>[{1}, {1}]
==
[name=feature_out_of_scope]
[required_features=PIPES]
FROM Fruit |> SELECT id
--
ARRAY<STRUCT<id INT64>>[unknown order:{1}, {2}]
==
[name=dml_update]
UPDATE Fruit SET price = 2 WHERE id = 2
--
STRUCT<num_rows_modified INT64, all_rows ARRAY<>>{
  1,
  ARRAY<STRUCT<id INT64, name STRING, price DOUBLE>>[unknown order:{1, "apple", 1.5}, {2, "pear", 2}]
}
==
[name=table_unchanged_after_dml]
SELECT price FROM Fruit WHERE id = 2
--
ARRAY<STRUCT<price DOUBLE>>[{NULL}]
==
[name=uint64_literal]
SELECT 18446744073709551615 > 0
--
ARRAY<STRUCT<BOOL>>[{true}]
==
[name=uint64_result]
SELECT id FROM Fruit WHERE id = 1
--
ARRAY<STRUCT<UINT64>>[{18446744073709551615}]
==
[name=uint64_in_int64_range_is_measured]
SELECT id FROM Fruit WHERE id = 1
--
ARRAY<STRUCT<UINT64>>[{1}]
==
[name=uint64_literal_where_bigquery_raises_too]
SELECT 18446744073709551615
--
ERROR: generic::out_of_range: Invalid integer literal
"""

EXPECTED = {
    "right_answer": "correct",
    "wrong_on_purpose": "wrong",
    "error_expected_and_raised": "correct",
    "error_expected_result_returned": "wrong",
    "untranslatable_case": "untranslatable",
    "feature_out_of_scope": "skipped",
    "dml_update": "correct",
    "table_unchanged_after_dml": "correct",
    "uint64_literal": "skipped",
    "uint64_result": "skipped",
    "uint64_in_int64_range_is_measured": "correct",
    "uint64_literal_where_bigquery_raises_too": "correct",
}


def _source(tmp_path: Path) -> ComplianceSource:
    testdata = tmp_path / TESTDATA
    testdata.mkdir(parents=True)
    (testdata / "sample.test").write_text(SAMPLE, encoding="utf-8")
    return ComplianceSource(tmp_path)


def test_outcomes(tmp_path: Path) -> None:
    report = run_file(_source(tmp_path), "sample")
    got = {r.name: r.outcome for r in report.results}
    assert got == EXPECTED, [(r.name, r.outcome, r.reason) for r in report.results]
    skipped = next(r for r in report.results if r.name == "feature_out_of_scope")
    assert "PIPES" in skipped.reason
    for name in ("uint64_literal", "uint64_result"):
        reason = next(r.reason for r in report.results if r.name == name)
        assert "18446744073709551615" in reason and "not a BigQuery type" in reason


def test_isolated_run_gives_the_same_outcomes(tmp_path: Path) -> None:
    report = run_file_isolated(_source(tmp_path), "sample")
    assert {r.name: r.outcome for r in report.results} == EXPECTED


def test_isolated_run_from_a_process_already_past_the_childrens_memory_ceiling(
        tmp_path: Path) -> None:
    """A long-lived caller (a test worker after the integration tests) maps more than a
    child's ceiling: children forked from it failed every allocation; the fork server's do not."""
    reserved = mmap.mmap(-1, WORKER_MEMORY_BYTES + 2**30,
                         flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # address space, never touched
    try:
        report = run_file_isolated(_source(tmp_path), "sample")
    finally:
        reserved.close()
    assert {r.name: r.outcome for r in report.results} == EXPECTED
