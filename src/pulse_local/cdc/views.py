"""DuckDB views over the landed Parquet files: the warehouse reads the raw layer the way BigQuery
reads files landed in GCS through external tables.

For each landed table ``t`` (in schema ``raw`` by default):

* ``raw.t__changes`` - every change event (backfill rows are INSERTs), values of TOASTed columns
  that an UPDATE reported unchanged filled in from the row's previous version, and the
  append-only metadata (uuid, source_timestamp, change_sequence_number, change_type, sort_keys);
* ``raw.t`` - Datastream's destination table: in **append-only** mode every change event with
  exactly that metadata (no ``is_deleted``); in **merge** mode the latest version of each row
  (deleted rows gone) with ``datastream_metadata {uuid, source_timestamp}``, and keyless tables
  append-only with ``{uuid, source_timestamp, is_deleted}`` (Datastream's rule).

``t`` is ``<schema>_<table>`` (``public_users``), Datastream's name in a single target dataset.
The shapes are declared once, in `pulse_local.cdc.datastream`.

Views read the files at query time and show only committed flushes (file names at or below the
watermark in ``_cdc_state.json``), so a query never sees a half-landed batch. Call
`refresh_views` again after a new table or column appeared (dbt does it in on-run-start).
"""

from __future__ import annotations

from typing import Any

from pulse_local.cdc.config import StreamConfig, load_stream_config
from pulse_local.cdc.datastream import DELETE, INSERT, UPDATE_DELETE, UPDATE_INSERT
from pulse_local.cdc.errors import CdcError
from pulse_local.cdc.landing import RawLayer
from pulse_local.config import Settings

_NAME_LSN = r"([0-9A-F]{16})-[0-9A-F]{16}(-[0-9]+)?\.parquet$"
_TOASTABLE_KINDS = ("string", "json", "bytes", "array")
#: Change rows that carry a live image of the source row (not a delete, an old image or a
#: local TRUNCATE marker).
_LIVE = f"datastream_metadata.change_type IN ('{INSERT}', '{UPDATE_INSERT}')"
_REMOVED = f"datastream_metadata.change_type IN ('{DELETE}', '{UPDATE_DELETE}')"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _visible_sql(layer: RawLayer, table: str) -> str:
    glob = _literal(str(layer.table_dir(table) / "*.parquet"))
    state = _literal(str(layer.state_path))
    return (
        f"SELECT * EXCLUDE (filename) FROM read_parquet({glob}, union_by_name = true, "
        f"filename = true) WHERE regexp_extract(filename, '{_NAME_LSN}', 1) <= "
        f"(SELECT watermark_hex FROM read_json({state}, columns = {{'watermark_hex': 'VARCHAR'}}))"
    )


def _landed_columns(conn: Any, layer: RawLayer, table: str) -> list[str]:
    glob = _literal(str(layer.table_dir(table) / "*.parquet"))
    rows = conn.execute(
        f"DESCRIBE SELECT * FROM read_parquet({glob}, union_by_name = true)").fetchall()
    return [r[0] for r in rows]


def changes_view_sql(layer: RawLayer, table: str, columns: list[dict[str, Any]],
                     key: tuple[str, ...]) -> str:
    """SELECT of ``t__changes``: visible change rows, unchanged TOAST values resolved."""
    order = "datastream_metadata.change_sequence_number"
    window = (f"PARTITION BY {', '.join(_ident(k) for k in key)} ORDER BY {order} "
              "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING") if key else ""
    select = []
    for column in columns:
        name = _ident(column["name"])
        toastable = column["kind"] in _TOASTABLE_KINDS or column["type_oid"] == 1700
        if key and toastable and column["name"] not in key:
            flag = f"list_contains(_pulse_unchanged, {_literal(column['name'])})"
            previous = (f"last_value(CASE WHEN {_LIVE} AND NOT "
                        f"coalesce({flag}, false) THEN {{'v': {name}}} END IGNORE NULLS) "
                        f"OVER ({window})")
            select.append(f"CASE WHEN coalesce({flag}, false) THEN ({previous}).v "
                          f"ELSE {name} END AS {name}")
        else:
            select.append(name)
    select.append("datastream_metadata")
    return f"SELECT {', '.join(select)} FROM ({_visible_sql(layer, table)}) ORDER BY {order}"


def datastream_view_sql(changes_view: str, columns: list[str], key: tuple[str, ...],
                        mode: str) -> str:
    """SELECT of ``t``: Datastream's destination table shape for `mode`."""
    cols = ", ".join(_ident(c) for c in columns)
    meta = "datastream_metadata"
    if mode == "merge" and key:
        last_truncate = (f"(SELECT coalesce(max({meta}.change_sequence_number), '') FROM "
                         f"{changes_view} WHERE {meta}.change_type = 'TRUNCATE')")
        return (
            f"SELECT {cols}, {{'uuid': {meta}.uuid, 'source_timestamp': "
            f"{meta}.source_timestamp}} AS {meta} FROM {changes_view} "
            f"WHERE {meta}.change_sequence_number > {last_truncate} "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(_ident(k) for k in key)} "
            f"ORDER BY {meta}.change_sequence_number DESC) = 1 AND {_LIVE}"
        )
    if mode == "merge":  # no key: append-only with is_deleted, as Datastream does
        return (
            f"SELECT {cols}, {{'uuid': {meta}.uuid, 'source_timestamp': {meta}.source_timestamp, "
            f"'is_deleted': {_REMOVED}}} AS {meta} FROM {changes_view} "
            f"WHERE {meta}.change_type <> 'TRUNCATE'"
        )
    return f"SELECT {cols}, {meta} FROM {changes_view} WHERE {meta}.change_type <> 'TRUNCATE'"


def refresh_views(conn: Any, settings: Settings, config: StreamConfig | None = None, *,
                  schema: str = "raw") -> list[str]:
    """Create or replace the views ``<schema>.<table>`` and ``<schema>.<table>__changes`` over
    the landed files of every table, in the DuckDB connection `conn`; return the table names.

    Cheap (no data is read). Call it after the service landed a new table or column."""
    config = config or load_stream_config()
    layer = RawLayer(config.raw_dir(settings), config.name)
    layer.read_state()  # a layer landed in another shape: RawLayerVersionError, never garbage
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
    tables = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
        "AND table_type = 'BASE TABLE'", [schema]).fetchall()}
    clash = sorted(tables & set(layer.tables()))
    if clash:
        raise CdcError(
            f"{schema}.{clash[0]} is a table in this DuckDB database, not a CDC view (created by "
            "pulse_local.warehouse.raw.create_raw_tables or a test?): drop it "
            f"(`DROP TABLE {schema}.{clash[0]}`) to read the CDC's landed files instead")
    created = []
    for table in layer.tables():
        described = layer.read_schema(table)
        if described is None:
            continue
        table_schema, mode = described
        landed = set(_landed_columns(conn, layer, table))
        columns = [c for c in layer.all_columns(table) if c["name"] in landed]
        key = table_schema.key
        changes = f"{_ident(schema)}.{_ident(table + '__changes')}"
        conn.execute(f"CREATE OR REPLACE VIEW {changes} AS "
                     f"{changes_view_sql(layer, table, columns, key)}")
        conn.execute(f"CREATE OR REPLACE VIEW {_ident(schema)}.{_ident(table)} AS "
                     f"{datastream_view_sql(changes, [c['name'] for c in columns], key, mode)}")
        created.append(table)
    return created
