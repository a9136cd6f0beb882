"""dbt-bigquery's partitioning configs on dbt-duckdb: `partition_by`, `insert_overwrite`, `_dbt_max_partition`.

A BigQuery dbt project configures models with

    partition_by={'field': 'event_date', 'data_type': 'date', 'granularity': 'day'},
    incremental_strategy='insert_overwrite', partitions=[...]    # static (optional)

and reads ``_dbt_max_partition`` (a script variable dbt-bigquery declares as
``max(<field>)`` of the existing table) in its ``is_incremental()`` branch. DuckDB has no
partitions, so on DuckDB (with `pulse_local.translate.dbt_plugin` in the profile):

* `partition_by` (a dict) is storage layout on BigQuery: checked like dbt-bigquery checks it,
  then ignored (dbt-duckdb would refuse a dict). `cluster_by`, `partition_expiration_days`,
  `require_partition_filter`, `labels`, `kms_key_name`, `copy_partitions` ... change nothing
  a query returns and dbt-duckdb ignores them.
* `insert_overwrite` replaces what dbt-bigquery's MERGE replaces: every target row whose
  partition value (dbt-bigquery's ``render_wrapped``: the field truncated to the granularity,
  or the int64 range bucket) is among the new rows' (dynamic; NULL partitions are never
  replaced, as ``array_agg(... IGNORE NULLS)``), or among the configured `partitions`
  (static: BigQuery SQL expressions, translated); then every new row is inserted.
* ``_dbt_max_partition`` becomes ``(SELECT MAX(field) FROM <this> WHERE field IS NOT NULL)``.
* ``time_ingestion_partitioning`` (``_PARTITIONTIME``) has no DuckDB counterpart: refused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pulse_local.errors import PulseError

DATA_TYPES = frozenset({"date", "timestamp", "datetime", "int64"})
GRANULARITIES = frozenset({"hour", "day", "month", "year"})
MAX_PARTITION = "_dbt_max_partition"
_PATCH_ATTR = "__pulse_bigquery_strategies__"


class BigQueryConfigError(PulseError):
    """A model's BigQuery partitioning config is invalid or cannot be reproduced on DuckDB."""


@dataclass(frozen=True)
class PartitionBy:
    """dbt-bigquery's `partition_by` config (field, data_type, granularity, int64 range)."""

    field: str
    data_type: str = "date"
    granularity: str = "day"
    range: tuple[int, int, int] | None = None  # start, end, interval

    @classmethod
    def parse(cls, raw: Any, model: str = "model") -> PartitionBy:
        """Read a `partition_by` dict as dbt-bigquery does (values lower-cased); raise
        `BigQueryConfigError` naming what is wrong."""
        if not isinstance(raw, Mapping) or not raw.get("field"):
            raise BigQueryConfigError(
                f"{model}: invalid partition_by config {raw!r}: expected a dictionary with "
                "'field' and 'data_type' keys (dbt-bigquery's format)")
        values = {k: (v.lower() if isinstance(v, str) and k != "field" else v) for k, v in raw.items()}
        if values.get("time_ingestion_partitioning"):
            raise BigQueryConfigError(
                f"{model}: partition_by.time_ingestion_partitioning (_PARTITIONTIME) has no "
                "DuckDB counterpart: partition on a column of the model instead")
        data_type = values.get("data_type", "date")
        granularity = values.get("granularity", "day")
        if data_type not in DATA_TYPES:
            raise BigQueryConfigError(
                f"{model}: partition_by.data_type {data_type!r} is not one of {sorted(DATA_TYPES)}")
        if granularity not in GRANULARITIES:
            raise BigQueryConfigError(
                f"{model}: partition_by.granularity {granularity!r} is not one of {sorted(GRANULARITIES)}")
        if data_type == "date" and granularity == "hour":
            raise BigQueryConfigError(f"{model}: a date column cannot be partitioned by hour")
        bucket = None
        if data_type == "int64":
            spec = values.get("range")
            if not isinstance(spec, Mapping) or not {"start", "end", "interval"} <= set(spec):
                raise BigQueryConfigError(
                    f"{model}: int64 partition_by needs range: {{start, end, interval}}")
            bucket = (int(spec["start"]), int(spec["end"]), int(spec["interval"]))
        unknown = set(values) - {"field", "data_type", "granularity", "range", "copy_partitions"}
        if unknown:
            raise BigQueryConfigError(f"{model}: unknown partition_by keys {sorted(unknown)}")
        return cls(str(values["field"]), data_type, granularity, bucket)

    def wrapped(self) -> str:
        """The partition value of a row as BigQuery SQL (dbt-bigquery's ``render_wrapped``)."""
        column = f"`{self.field}`"
        if self.data_type == "int64":
            if self.range is None or self.range[2] == 1:
                return column
            start, _end, interval = self.range
            return f"({column} - MOD({column} - {start}, {interval}))"
        if self.data_type == "date" and self.granularity == "day":
            return f"DATE({column})"
        return f"{self.data_type.upper()}_TRUNC({column}, {self.granularity.upper()})"


def translate_expression(bigquery: str) -> str:
    """A BigQuery scalar expression as DuckDB SQL (through the translator)."""
    from pulse_local.translate.core import translate

    duck = translate(f"SELECT {bigquery}")
    if not duck.upper().startswith("SELECT "):  # pragma: no cover - translator contract
        raise BigQueryConfigError(f"cannot translate the expression {bigquery!r}")
    return duck[len("SELECT "):]


def max_partition_sql(partition: PartitionBy, relation: str) -> str:
    """BigQuery SQL for ``_dbt_max_partition`` of the table `relation` (as dbt-bigquery declares it)."""
    column = f"`{partition.field}`"
    return f"(SELECT MAX({column}) FROM {relation} WHERE {column} IS NOT NULL)"


def substitute_max_partition(sql: str, replacement: str) -> str:
    """Replace every ``_dbt_max_partition`` identifier (not strings or comments) by `replacement`."""
    import sqlglot
    from sqlglot.tokens import TokenType

    tokens = sqlglot.tokenize(sql, read="bigquery")
    out: list[str] = []
    last = 0
    for token in tokens:
        if token.token_type == TokenType.VAR and token.text.lower() == MAX_PARTITION:
            out.append(sql[last:token.start])
            out.append(replacement)
            last = token.end + 1
    out.append(sql[last:])
    return "".join(out)


def insert_overwrite_sql(config: Any, model_name: str, arg_dict: Mapping[str, Any]) -> str:
    """DuckDB SQL replacing the target's partitions with the new rows (dbt-bigquery's semantics).

    `config` is the model's dbt config (``config.get``); `arg_dict` dbt's strategy arguments
    (target_relation, temp_relation, dest_columns)."""
    raw = config.get("partition_by")
    if raw is None:
        raise BigQueryConfigError(
            f"{model_name}: the 'insert_overwrite' strategy requires the `partition_by` config")
    partition = PartitionBy.parse(raw, model_name)
    target, temp = arg_dict["target_relation"], arg_dict["temp_relation"]
    columns = ", ".join('"' + c.name.replace('"', '""') + '"' for c in arg_dict["dest_columns"])
    value = translate_expression(partition.wrapped())
    partitions = config.get("partitions")
    if partitions:
        if isinstance(partitions, str):
            partitions = [partitions]
        listed = ", ".join(translate_expression(str(p)) for p in partitions)
        replaced = f"{value} IN ({listed})"
    else:
        replaced = f"{value} IN (SELECT {value} FROM {temp} WHERE {value} IS NOT NULL)"
    return (f"DELETE FROM {target} WHERE {replaced};\n"
            f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {temp}")


def _strategy_sql(config: Any, model_name: str, arg_dict: Mapping[str, Any]) -> str:
    """`insert_overwrite_sql` for dbt's materialization: errors become dbt compilation errors."""
    from dbt_common.exceptions import CompilationError

    try:
        return insert_overwrite_sql(config, model_name, arg_dict)
    except BigQueryConfigError as err:
        raise CompilationError(str(err)) from err


def install_strategies(uses_plugin: Callable[[Any], bool]) -> None:
    """Teach dbt-duckdb's adapter the `insert_overwrite` strategy (idempotent).

    Only adapters whose credentials satisfy `uses_plugin` get it; others keep dbt-duckdb's
    behaviour ("not valid for this adapter")."""
    from dbt.adapters.duckdb.impl import DuckDBAdapter

    if getattr(DuckDBAdapter.get_incremental_strategy_macro, _PATCH_ATTR, False):
        return
    valid = DuckDBAdapter.valid_incremental_strategies
    strategy_macro = DuckDBAdapter.get_incremental_strategy_macro

    @functools.wraps(valid)
    def valid_incremental_strategies(self: Any) -> list[str]:
        strategies = list(valid(self))
        if uses_plugin(self.config.credentials) and "insert_overwrite" not in strategies:
            strategies.append("insert_overwrite")
        return strategies

    @functools.wraps(strategy_macro)
    def get_incremental_strategy_macro(self: Any, model_context: Any, strategy: str) -> Any:
        if strategy == "insert_overwrite" and uses_plugin(self.config.credentials):
            model = model_context.get("model") or {}
            name = model.get("name", "model") if isinstance(model, Mapping) else getattr(model, "name", "model")
            return functools.partial(_strategy_sql, model_context["config"], name)
        return strategy_macro(self, model_context, strategy)

    setattr(get_incremental_strategy_macro, _PATCH_ATTR, True)
    DuckDBAdapter.valid_incremental_strategies = valid_incremental_strategies  # type: ignore[method-assign]
    DuckDBAdapter.get_incremental_strategy_macro = get_incremental_strategy_macro  # type: ignore[method-assign]
