"""An independent oracle for the translator: ZetaSQL's compliance tests run on DuckDB.

`python -m pulse_local.conformance` reads the compliance files from a ZetaSQL mirror
(``PULSE_ZETASQL_DIR``), translates each in-scope case with `bigquery_to_duckdb`, runs
it on DuckDB and compares typed results. See docs/translation.md ("Conformance").
"""
