"""Run BigQuery SQL on DuckDB with BigQuery's answers.

The pipeline's dbt models are written once, in BigQuery Standard SQL. Locally they run
on DuckDB after `bigquery_to_duckdb` rewrites them: sqlglot parses the BigQuery text,
the rules in `pulse_local.translate.rules` correct the places where a literal
translation would return a different result (types, offsets, week numbering, ...),
and sqlglot generates DuckDB SQL. Anything that cannot be made to return what
BigQuery returns raises `UntranslatableSQL` naming the construct and its position.

See docs/translation.md for the rules and the known differences.
"""

from __future__ import annotations

from pulse_local.translate.core import translate
from pulse_local.translate.errors import UntranslatableSQL

__all__ = ["UntranslatableSQL", "bigquery_to_duckdb", "translate"]


def bigquery_to_duckdb(sql: str) -> str:
    """Translate BigQuery Standard SQL into DuckDB SQL that returns BigQuery's results.

    `sql` may hold one or several statements (queries, DML including MERGE, DDL such
    as ``CREATE OR REPLACE TABLE ... AS``, ``CREATE TEMP FUNCTION``); the result holds
    the same statements separated by ``;``. Results are cached per input text.

    The DuckDB session must be prepared with `pulse_local.translate.session.configure`
    (UTC, BigQuery's default time zone, and the helper functions such as
    ``bq_farm_fingerprint`` that translations of BigQuery-only functions call); the dbt
    plugin and the golden runner do this.

    Raises:
        UntranslatableSQL: on a BigQuery syntax error (with its line and column) or on a
            construct that has no correct DuckDB translation (JavaScript UDFs, unknown
            functions, BigQuery scripting, ...), naming the construct and its position.
    """
    return translate(sql)
