"""Load fixture reference data (tenants, users, assessments...) into the source database.

Runs as the owner role but always inside each tenant's context (``tenancy.tenant``), so it works
where the owner is subject to the FORCE'd row-level security (Cloud SQL) as well as locally.
Locally the owner is a superuser and bypasses RLS, so every statement also filters on the
tenant explicitly.
Idempotent: rows are inserted with ``on conflict do nothing``; user attribute changes are applied
in ``effective_at`` order and only when newer than the stored ``updated_at`` (each one is a real
UPDATE, so CDC sees the SCD2 history).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from pulse_local.config import Settings
from pulse_local.errors import PulseError
from pulse_local.source.tenancy import tenant


class FixtureError(PulseError):
    """A fixture directory is missing or incomplete."""


def load_json(directory: Path, name: str) -> Any:
    """Read one JSON file of a fixture directory, with a message that says how to make it."""
    path = Path(directory) / name
    if not path.is_file():
        raise FixtureError(
            f"{path} is missing: generate fixtures first, e.g. "
            f"`pulse-local fixtures generate --scale 2 --seed 42 --out {directory}`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _by_tenant(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["tenant_id"]].append(row)
    return grouped


def seed_reference_data(settings: Settings, directory: Path) -> dict[str, int]:
    """Insert the reference data of a fixture directory; return rows inserted per table."""
    import psycopg

    directory = Path(directory)
    orgs = load_json(directory, "organizations.json")
    teams = _by_tenant(load_json(directory, "teams.json"))
    users = _by_tenant(load_json(directory, "users.json"))
    changes = _by_tenant(load_json(directory, "user_changes.json"))
    assessments = _by_tenant(load_json(directory, "assessments.json"))
    runs = _by_tenant(load_json(directory, "runs.json"))
    inserted: dict[str, int] = defaultdict(int)

    def run(conn: psycopg.Connection, table: str, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with conn.cursor() as cur:
            cur.executemany(sql, rows)
            inserted[table] += max(cur.rowcount, 0)

    with psycopg.connect(settings.admin_dsn()) as conn:
        for org in orgs:
            tid = org["id"]
            with tenant(conn, tid):
                run(conn, "organizations",
                    "insert into organizations (id, slug, name, created_at, updated_at) "
                    "values (%s, %s, %s, %s, %s) on conflict do nothing",
                    [(tid, org["slug"], org["name"], org["created_at"], org["created_at"])])
                conn.execute("select set_config('pulse.lookup_slug', %s, true)", (org["slug"],))
                found = conn.execute("select id from organizations where slug = %s",
                                     (org["slug"],)).fetchone()
                if found is None or str(found[0]) != tid:
                    raise FixtureError(
                        f"tenant slug {org['slug']!r} already exists with another id "
                        f"({found[0] if found else 'invisible'}): the database holds a different "
                        "fixture set. Seed the same scale/seed again, or start from an empty "
                        "database (pulse-local down; remove the state directory; pulse-local up)"
                    )
                run(conn, "webhook_secrets",
                    "insert into webhook_secrets (tenant_id, secret) values (%s, %s) "
                    "on conflict do nothing", [(tid, org["webhook_secret"])])
                run(conn, "teams",
                    "insert into teams (id, tenant_id, name) values (%s, %s, %s) "
                    "on conflict do nothing", [(t["id"], tid, t["name"]) for t in teams[tid]])
                run(conn, "users",
                    "insert into users (id, tenant_id, external_id, email, full_name, department,"
                    " role, location, team_id, created_at, updated_at) values "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
                    [(u["id"], tid, u["external_id"], u["email"], u["full_name"], u["department"],
                      u["role"], u["location"], u["team_id"], u["created_at"], u["created_at"])
                     for u in users[tid]])
                run(conn, "assessments",
                    "insert into assessments (id, tenant_id, typeform_form_id, title) "
                    "values (%s, %s, %s, %s) on conflict do nothing",
                    [(a["id"], tid, a["typeform_form_id"], a["title"]) for a in assessments[tid]])
                run(conn, "questions",
                    "insert into questions (id, tenant_id, assessment_id, ref, title, "
                    "question_type, position, required, scale_min, scale_max, reverse_keyed) "
                    "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
                    [(q["id"], tid, a["id"], q["ref"], q["title"], q["question_type"],
                      q["position"], q["required"], q["scale_min"], q["scale_max"],
                      q["reverse_keyed"]) for a in assessments[tid] for q in a["questions"]])
                run(conn, "assessment_runs",
                    "insert into assessment_runs (id, tenant_id, assessment_id, name, opens_at, "
                    "closes_at) values (%s, %s, %s, %s, %s, %s) on conflict do nothing",
                    [(r["id"], tid, r["assessment_id"], r["name"], r["opens_at"], r["closes_at"])
                     for r in runs[tid]])
                with conn.cursor() as cur:  # every user of the tenant is invited to every run
                    cur.execute(
                        "insert into run_participants (tenant_id, run_id, user_id, invited_at) "
                        "select r.tenant_id, r.id, u.id, r.opens_at "
                        "from assessment_runs r join users u on u.tenant_id = r.tenant_id "
                        "where r.tenant_id = %s on conflict do nothing", (tid,))
                    inserted["run_participants"] += max(cur.rowcount, 0)
                for change in changes[tid]:
                    attrs = [k for k in ("department", "role", "location", "team_id") if k in change]
                    assignments = ", ".join(f"{k} = %s" for k in attrs)
                    with conn.cursor() as cur:
                        cur.execute(
                            f"update users set {assignments}, updated_at = %s "
                            "where tenant_id = %s and external_id = %s and updated_at < %s",
                            [*(change[k] for k in attrs), change["effective_at"], tid,
                             change["external_id"], change["effective_at"]])
                        inserted["user_changes"] += max(cur.rowcount, 0)
    return dict(inserted)
