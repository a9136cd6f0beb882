"""The raw layer as the dbt project reads it: Google Datastream's BigQuery shape.

Datastream (append-only mode) writes one row per change of a source row into
``raw.public_<table>``: the source columns typed as Datastream maps PostgreSQL to BigQuery
(uuid/text -> STRING, integer/bigint -> INT64, numeric -> NUMERIC, timestamptz ->
TIMESTAMP, jsonb -> JSON, boolean -> BOOL, date -> DATE) plus::

    datastream_metadata STRUCT<uuid STRING, source_timestamp INT64 (epoch ms),
                               change_sequence_number STRING, change_type STRING,
                               sort_keys ARRAY<STRING>>

``change_type`` is INSERT, UPDATE-INSERT (new image of an update), UPDATE-DELETE (old
image of an update) or DELETE; there is no ``is_deleted`` in this mode. The shape is declared
once, in `pulse_local.cdc.datastream`. Locally DuckDB stands in for BigQuery (STRING ->
VARCHAR, INT64 -> BIGINT, NUMERIC -> DECIMAL(38,9), TIMESTAMP -> TIMESTAMPTZ, JSON -> JSON).

This module holds that shape (`RAW_TABLES`), DDL to create empty raw tables in a DuckDB
file (`create_raw_tables`) and a fast SQL generator of a synthetic raw data set of any
size (`generate_raw`), used by the benchmark.
"""

from __future__ import annotations

from typing import Any

from pulse_local.cdc.datastream import (
    DUCKDB_TYPES,
    destination_table,
    metadata_type_bigquery,
    metadata_type_duckdb,
)

METADATA_BQ = metadata_type_bigquery("append-only")
METADATA_DUCKDB = metadata_type_duckdb("append-only")
#: The source schema whose tables Datastream lands (``raw.public_<table>``).
SOURCE_SCHEMA = "public"

#: Source tables published to CDC and their columns with Datastream's BigQuery types
#: (from src/pulse_local/source/migrations/0001_schema.sql; webhook_secrets is never published).
RAW_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "organizations": (
        ("id", "STRING"), ("slug", "STRING"), ("name", "STRING"),
        ("created_at", "TIMESTAMP"), ("updated_at", "TIMESTAMP"),
    ),
    "teams": (
        ("id", "STRING"), ("tenant_id", "STRING"), ("name", "STRING"), ("created_at", "TIMESTAMP"),
    ),
    "users": (
        ("id", "STRING"), ("tenant_id", "STRING"), ("external_id", "STRING"), ("email", "STRING"),
        ("full_name", "STRING"), ("department", "STRING"), ("role", "STRING"),
        ("location", "STRING"), ("team_id", "STRING"), ("created_at", "TIMESTAMP"),
        ("updated_at", "TIMESTAMP"),
    ),
    "assessments": (
        ("id", "STRING"), ("tenant_id", "STRING"), ("typeform_form_id", "STRING"),
        ("title", "STRING"), ("status", "STRING"), ("created_at", "TIMESTAMP"),
        ("updated_at", "TIMESTAMP"),
    ),
    "questions": (
        ("id", "STRING"), ("tenant_id", "STRING"), ("assessment_id", "STRING"), ("ref", "STRING"),
        ("title", "STRING"), ("question_type", "STRING"), ("position", "INT64"),
        ("required", "BOOL"), ("scale_min", "INT64"), ("scale_max", "INT64"),
        ("reverse_keyed", "BOOL"), ("weight", "NUMERIC"), ("created_at", "TIMESTAMP"),
    ),
    "assessment_runs": (
        ("id", "STRING"), ("tenant_id", "STRING"), ("assessment_id", "STRING"), ("name", "STRING"),
        ("opens_at", "TIMESTAMP"), ("closes_at", "TIMESTAMP"), ("created_at", "TIMESTAMP"),
    ),
    "run_participants": (
        ("tenant_id", "STRING"), ("run_id", "STRING"), ("user_id", "STRING"),
        ("invited_at", "TIMESTAMP"),
    ),
    "responses": (
        ("id", "STRING"), ("tenant_id", "STRING"), ("assessment_id", "STRING"), ("run_id", "STRING"),
        ("user_id", "STRING"), ("typeform_token", "STRING"), ("typeform_event_id", "STRING"),
        ("landed_at", "TIMESTAMP"), ("submitted_at", "TIMESTAMP"), ("is_complete", "BOOL"),
        ("answer_count", "INT64"), ("total_score", "NUMERIC"), ("max_score", "NUMERIC"),
        ("hidden", "JSON"), ("payload_sha256", "STRING"), ("revision", "INT64"),
        ("received_at", "TIMESTAMP"), ("updated_at", "TIMESTAMP"),
    ),
    "answers": (
        ("id", "INT64"), ("tenant_id", "STRING"), ("response_id", "STRING"),
        ("question_id", "STRING"), ("answer_type", "STRING"), ("value_text", "STRING"),
        ("value_number", "NUMERIC"), ("value_bool", "BOOL"), ("value_json", "JSON"),
        ("raw_score", "NUMERIC"), ("score", "NUMERIC"),
    ),
    "webhook_deliveries": (
        ("id", "INT64"), ("tenant_id", "STRING"), ("event_id", "STRING"),
        ("typeform_token", "STRING"), ("response_id", "STRING"), ("outcome", "STRING"),
        ("payload_sha256", "STRING"), ("received_at", "TIMESTAMP"),
    ),
}

#: Primary key of each source table (the grain staging de-duplicates on).
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "run_participants": ("run_id", "user_id"),
    **{t: ("id",) for t in RAW_TABLES if t != "run_participants"},
}


def raw_table_name(table: str) -> str:
    """Datastream's name of source table `table` in the raw dataset (``public_<table>``)."""
    return destination_table(SOURCE_SCHEMA, table)


def raw_table_ddl(table: str, schema: str = "raw") -> str:
    """DuckDB ``CREATE TABLE`` for an empty raw table in Datastream's shape."""
    cols = ", ".join(f'"{name}" {DUCKDB_TYPES[bq]}' for name, bq in RAW_TABLES[table])
    return (f'CREATE TABLE IF NOT EXISTS {schema}."{raw_table_name(table)}" ({cols}, '
            f"datastream_metadata {METADATA_DUCKDB})")


def create_raw_tables(con: Any, schema: str = "raw") -> None:
    """Create every raw table (empty, if missing) in the DuckDB connection `con`."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for table in RAW_TABLES:
        con.execute(raw_table_ddl(table, schema))


# --------------------------------------------------------------------------------------
# Synthetic raw data at any size (benchmark). Pure DuckDB SQL: 1M responses in seconds.
# --------------------------------------------------------------------------------------

#: Epoch of the synthetic data: Monday 2 September 2024, 00:00 UTC (as the source fixtures).
EPOCH_MS = 1725235200000

_META = (
    "{{'uuid': {uuid}, 'source_timestamp': {ts}, 'change_sequence_number': "
    "lpad(to_hex(CAST({seq} AS BIGINT)), 16, '0'), 'change_type': {ctype}, "
    "'sort_keys': [lpad(to_hex(CAST({seq} AS BIGINT)), 16, '0')]}}"
)


def _meta(uuid: str, ts: str, seq: str, ctype: str = "'INSERT'") -> str:
    return _META.format(uuid=uuid, ts=ts, seq=seq, ctype=ctype)


def generate_raw(con: Any, responses: int = 2000, *, tenants: int | None = None,
                 users_per_tenant: int = 250, schema: str = "raw") -> dict[str, int]:
    """Fill the raw tables of `con` (DuckDB) with a synthetic Datastream change history.

    About `responses` responses (8 answers each, 5 scored, 2 reverse keyed), spread over
    `tenants` tenants (default: one per 1,000 responses) with `users_per_tenant` users, one
    assessment and 4 runs per tenant; 10 % of users change department (a second version),
    2 % of responses are revised (UPDATE-DELETE + UPDATE-INSERT) and 0.5 % deleted.
    Returns the number of rows written per table.
    """
    n_resp = max(int(responses), 1)
    n_ten = tenants or max(1, n_resp // 1000)
    n_users = n_ten * users_per_tenant
    create_raw_tables(con, schema)
    con.execute("SET TimeZone = 'UTC'")
    s = schema
    ts = lambda ms_expr: f"make_timestamptz(CAST(({EPOCH_MS} + ({ms_expr})) * 1000 AS BIGINT))"

    con.execute(f"""
        INSERT INTO {s}.public_organizations
        SELECT 'org-' || i, 'tenant-' || i, 'Tenant ' || i, {ts('i * 1000')}, {ts('i * 1000')},
               {_meta("'m-org-' || i", f'{EPOCH_MS} + i * 1000', 'i')}
        FROM range({n_ten}) t(i)""")
    con.execute(f"""
        INSERT INTO {s}.public_teams
        SELECT 'team-' || t || '-' || k, 'org-' || t, 'Team ' || k, {ts('t * 1000')},
               {_meta("'m-team-' || t || '-' || k", f'{EPOCH_MS} + t * 1000', 't * 8 + k')}
        FROM range({n_ten}) a(t), range(5) b(k)""")
    depts = "['Engineering', 'Sales', 'Customer Success', 'Finance', 'HR', 'Marketing']"
    roles = "['Individual Contributor', 'Senior IC', 'Team Lead', 'Manager', 'Director']"
    locs = "['Brussels', 'Lisbon', 'Berlin', 'Remote', 'Dublin', 'Warsaw']"
    user_cols = f"""'user-' || u AS id, 'org-' || (u // {users_per_tenant}) AS tenant_id,
        'ext-' || u AS external_id, 'user' || u || '@example.com' AS email, 'User ' || u AS full_name,
        {depts}[1 + u % 6] AS department, {roles}[1 + u % 5] AS role, {locs}[1 + u % 6] AS location,
        'team-' || (u // {users_per_tenant}) || '-' || (u % 5) AS team_id,
        {ts('u')} AS created_at"""
    con.execute(f"""
        INSERT INTO {s}.public_users
        SELECT {user_cols}, {ts('u')},
               {_meta("'m-user-' || u", f'{EPOCH_MS} + u', '1000000 + u')}
        FROM range({n_users}) t(u)""")
    # Department changes (SCD2): the old image (UPDATE-DELETE) and the new one (UPDATE-INSERT).
    change_ms = 21 * 86400 * 1000
    for ctype, dept_shift in (("UPDATE-DELETE", 0), ("UPDATE-INSERT", 1)):
        con.execute(f"""
            INSERT INTO {s}.public_users
            SELECT 'user-' || u, 'org-' || (u // {users_per_tenant}), 'ext-' || u,
                   'user' || u || '@example.com', 'User ' || u,
                   {depts}[1 + (u + {dept_shift}) % 6], {roles}[1 + u % 5], {locs}[1 + u % 6],
                   'team-' || (u // {users_per_tenant}) || '-' || (u % 5), {ts('u')},
                   {ts(f'{change_ms} + u')},
                   {_meta("'m-userc-' || u", f'{EPOCH_MS} + {change_ms} + u', '2000000 + u',
                          f"'{ctype}'")}
            FROM range({n_users}) t(u) WHERE u % 10 = 3""")
    con.execute(f"""
        INSERT INTO {s}.public_assessments
        SELECT 'asmt-' || t, 'org-' || t, 'form-' || t, 'Engagement pulse', 'active',
               {ts('t')}, {ts('t')}, {_meta("'m-asmt-' || t", f'{EPOCH_MS} + t', '3000000 + t')}
        FROM range({n_ten}) a(t)""")
    # 8 questions: q0..q4 scored 1-5 (q2, q4 reverse keyed; q3 weight 2), q5 yes/no, q6 text, q7 choice.
    con.execute(f"""
        INSERT INTO {s}.public_questions
        SELECT 'q-' || t || '-' || k, 'org-' || t, 'asmt-' || t, 'ref_' || k, 'Question ' || k,
               CASE WHEN k < 5 THEN 'opinion_scale' WHEN k = 5 THEN 'yes_no'
                    WHEN k = 6 THEN 'long_text' ELSE 'multiple_choice' END,
               k, k < 4, CASE WHEN k < 5 THEN 1 END, CASE WHEN k < 5 THEN 5 END,
               k IN (2, 4), CASE WHEN k = 3 THEN 2 ELSE 1 END, {ts('t')},
               {_meta("'m-q-' || t || '-' || k", f'{EPOCH_MS} + t', '3100000 + t * 8 + k')}
        FROM range({n_ten}) a(t), range(8) b(k)""")
    con.execute(f"""
        INSERT INTO {s}.public_assessment_runs
        SELECT 'run-' || t || '-' || r, 'org-' || t, 'asmt-' || t, 'Run ' || r,
               {ts('r * 14 * 86400000')}, {ts('(r * 14 + 13) * 86400000')}, {ts('t')},
               {_meta("'m-run-' || t || '-' || r", f'{EPOCH_MS} + t', '3200000 + t * 4 + r')}
        FROM range({n_ten}) a(t), range(4) b(r)""")
    con.execute(f"""
        INSERT INTO {s}.public_run_participants
        SELECT 'org-' || (u // {users_per_tenant}), 'run-' || (u // {users_per_tenant}) || '-' || r,
               'user-' || u, {ts('r * 14 * 86400000')},
               {_meta("'m-rp-' || u || '-' || r", f'{EPOCH_MS} + r * 14 * 86400000',
                      '3300000 + u * 4 + r')}
        FROM range({n_users}) a(u), range(4) b(r)""")
    # Responses: response i by user (i % n_users) in run ((i // n_users) % 4) of its tenant.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _resp AS
        SELECT i, i % {n_users} AS u, (i % {n_users}) // {users_per_tenant} AS t,
               (i // {n_users}) % 4 AS r,
               CAST(((i // {n_users}) % 4) * 14 * 86400000 + (hash(i) % (13 * 86400000)) AS BIGINT) AS sub_ms,
               hash(i * 7 + 1) % 10 <> 0 AS complete
        FROM range({n_resp}) a(i)""")
    resp_cols = f"""'resp-' || i, 'org-' || t, 'asmt-' || t, 'run-' || t || '-' || r, 'user-' || u,
        'tok-' || i, 'evt-' || i, {ts('sub_ms + 5000')}, {ts('sub_ms')}, complete"""
    score_expr = "(hash(i * 31 + k) % 5) + 1"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _ans AS
        SELECT i, k, t, sub_ms, complete,
               CAST(CASE WHEN k < 5 THEN {score_expr} END AS BIGINT) AS v,
               CAST(CASE WHEN k IN (2, 4) THEN 6 - ({score_expr}) WHEN k < 5 THEN {score_expr} END AS BIGINT) AS sc,
               CASE WHEN k = 3 THEN 2 ELSE 1 END AS w
        FROM _resp, range(8) b(k)
        WHERE complete OR k <> 3""")
    con.execute(f"""
        INSERT INTO {s}.public_responses
        SELECT {resp_cols}, n, total, maximum,
               '{{"source": "bench"}}'::JSON, lpad(printf('%x', i), 64, '0'), 1,
               {ts('sub_ms + 5000')}, {ts('sub_ms + 5000')},
               {_meta("'m-resp-' || i", f'{EPOCH_MS} + sub_ms + 5000', '10000000 + i')}
        FROM _resp JOIN (
            SELECT i, count(*) AS n, sum(sc * w) AS total, sum(CASE WHEN k < 5 THEN 5 * w END) AS maximum
            FROM _ans GROUP BY i
        ) USING (i)""")
    con.execute(f"""
        INSERT INTO {s}.public_answers
        SELECT i * 8 + k, 'org-' || t, 'resp-' || i, 'q-' || t || '-' || k,
               CASE WHEN k < 5 THEN 'number' WHEN k = 5 THEN 'boolean' WHEN k = 6 THEN 'text'
                    ELSE 'choice' END,
               CASE WHEN k = 6 THEN 'comment ' || i WHEN k = 7 THEN 'Good' END,
               v, CASE WHEN k = 5 THEN i % 2 = 0 END,
               CASE WHEN k = 7 THEN '{{"label": "Good"}}'::JSON END, v, sc,
               {_meta("'m-ans-' || i || '-' || k", f'{EPOCH_MS} + sub_ms + 5000', '10000000 + i')}
        FROM _ans""")
    # 2 % revised an hour later: the old image (UPDATE-DELETE) and the new one (revision 2).
    con.execute(f"""
        INSERT INTO {s}.public_responses
        SELECT id, tenant_id, assessment_id, run_id, user_id, typeform_token, typeform_event_id,
               landed_at, submitted_at, is_complete, answer_count, total_score, max_score, hidden,
               payload_sha256, CASE WHEN ct = 'UPDATE-INSERT' THEN 2 ELSE revision END, received_at,
               updated_at + INTERVAL 1 HOUR,
               {{'uuid': datastream_metadata.uuid || '-' || ct, 'source_timestamp':
                 datastream_metadata.source_timestamp + 3600000, 'change_sequence_number':
                 lpad(printf('%x', 90000000 + CAST(substr(id, 6) AS BIGINT)), 16, '0'),
                 'change_type': ct, 'sort_keys': [lpad(printf('%x', 90000000 +
                 CAST(substr(id, 6) AS BIGINT)), 16, '0')]}}
        FROM {s}.public_responses, (VALUES ('UPDATE-DELETE'), ('UPDATE-INSERT')) v(ct)
        WHERE hash(CAST(substr(id, 6) AS BIGINT) * 13) % 50 = 0""")
    # 0.5 % deleted: the response and its answers (cascade).
    con.execute(f"""
        INSERT INTO {s}.public_responses
        SELECT * REPLACE ({{'uuid': datastream_metadata.uuid || '-del', 'source_timestamp':
                 datastream_metadata.source_timestamp + 7200000, 'change_sequence_number':
                 lpad(printf('%x', 95000000 + CAST(substr(id, 6) AS BIGINT)), 16, '0'),
                 'change_type': 'DELETE', 'sort_keys': [lpad(printf('%x', 95000000 +
                 CAST(substr(id, 6) AS BIGINT)), 16, '0')]}} AS datastream_metadata)
        FROM {s}.public_responses
        WHERE datastream_metadata.change_type = 'INSERT'
          AND hash(CAST(substr(id, 6) AS BIGINT) * 17) % 200 = 0""")
    con.execute(f"""
        INSERT INTO {s}.public_answers
        SELECT a.* REPLACE ({{'uuid': a.datastream_metadata.uuid || '-del', 'source_timestamp':
                 a.datastream_metadata.source_timestamp + 7200000, 'change_sequence_number':
                 lpad(printf('%x', 95000000 + CAST(substr(a.response_id, 6) AS BIGINT)), 16, '0'),
                 'change_type': 'DELETE', 'sort_keys': [lpad(printf('%x', 95000000 +
                 CAST(substr(a.response_id, 6) AS BIGINT)), 16, '0')]}} AS datastream_metadata)
        FROM {s}.public_answers a
        WHERE hash(CAST(substr(a.response_id, 6) AS BIGINT) * 17) % 200 = 0""")
    con.execute("DROP TABLE _resp; DROP TABLE _ans")
    return {t: con.execute(f'SELECT count(*) FROM {s}."{raw_table_name(t)}"').fetchone()[0]
            for t in RAW_TABLES}
