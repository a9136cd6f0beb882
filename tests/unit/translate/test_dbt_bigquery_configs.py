"""The dbt plugin's handling of BigQuery-only model configs and cross-database macros.

Nodes and manifests here are fakes (SimpleNamespace / dict configs) carrying only the
attributes the plugin reads; tests/integration/translate/test_ga4_project.py runs the same
code inside real dbt.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from dbt_common.exceptions import CompilationError

from pulse_local.translate.dbt_plugin import (
    _duckdb_flavoured_macros,
    apply_bigquery_configs,
    refuse_duckdb_flavoured_macros,
)


def node(config: dict[str, Any], macros: list[str] | None = None) -> SimpleNamespace:
    return SimpleNamespace(name="m", original_file_path="models/m.sql", config=config,
                           relation_name='"db"."main"."m"',
                           depends_on=SimpleNamespace(macros=macros or []))


def macro(*calls: str) -> SimpleNamespace:
    return SimpleNamespace(depends_on=SimpleNamespace(macros=list(calls)))


def test_partition_by_dict_is_checked_and_kept_from_dbt_duckdb() -> None:
    n = node({"partition_by": {"field": "d", "data_type": "date", "granularity": "month"}})
    assert apply_bigquery_configs(n, "select 1") == "select 1"
    assert n.config["partitioned_by"] == ["d"]
    assert n.config["partition_by"]["granularity"] == "month"  # left for insert_overwrite
    with pytest.raises(CompilationError, match="granularity"):
        apply_bigquery_configs(node({"partition_by": {"field": "d", "granularity": "week"}}), "select 1")


def test_max_partition_is_the_tables_maximum() -> None:
    n = node({"partition_by": {"field": "d", "data_type": "date"}})
    sql = apply_bigquery_configs(n, "select * from s where d >= _dbt_max_partition")
    assert sql == ('select * from s where d >= (SELECT MAX(`d`) FROM "db"."main"."m" '
                   "WHERE `d` IS NOT NULL)")
    with pytest.raises(CompilationError, match="only declares for models with a partition_by"):
        apply_bigquery_configs(node({}), "select _dbt_max_partition")


def test_cross_database_macros_found_through_project_macros_only() -> None:
    manifest = SimpleNamespace(macros={
        "macro.proj.key": macro("macro.dbt_utils.surrogate"),
        "macro.dbt_utils.surrogate": macro("macro.dbt._split_part_negative", "macro.dbt.concat", "macro.dbt.hash"),
        "macro.dbt.date_spine": macro("macro.dbt.datediff"),  # dbt internals are not followed
    })
    assert _duckdb_flavoured_macros(node({}, ["macro.proj.key"]), manifest) == ["_split_part_negative"]
    assert _duckdb_flavoured_macros(node({}, ["macro.dbt.date_spine"]), manifest) == []
    with pytest.raises(CompilationError, match=r"dbt\._split_part_negative: .*safe_offset\(n\)"):
        refuse_duckdb_flavoured_macros(node({}, ["macro.proj.key"]), manifest)
