"""Raw test data in Google Datastream's append-only shape, and the facts expected from it.

`ChangeLog` plays the source database: `insert`/`update`/`delete` change its state and
append the change rows Datastream would land (an update = UPDATE-DELETE old image + UPDATE-
INSERT new image with the same timestamp and sequence number). `write(con)` appends the rows
not written yet to ``raw.<table>`` in a DuckDB file. `scenario_batch1`/`scenario_batch2`
build a small multi-tenant history with updates, deletes, revisions and SCD changes, and the
`expected_*` functions compute the warehouse's answers independently, in plain Python.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pulse_local.warehouse.raw import RAW_TABLES, create_raw_tables, raw_table_name

UTC = dt.UTC
T0 = dt.datetime(2024, 9, 2, tzinfo=UTC)
TRACKED = ("department", "role", "location", "team_id")


def day(d: float) -> dt.datetime:
    return T0 + dt.timedelta(days=d)


def uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pulse-test:{name}"))


def key_of(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["run_id"], row["user_id"]) if table == "run_participants" else (row["id"],)


@dataclass
class Change:
    table: str
    row: dict[str, Any]
    at: dt.datetime
    csn: str
    change_type: str


@dataclass
class ChangeLog:
    """The source database's state and the Datastream change rows it produced."""

    state: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = field(
        default_factory=lambda: {t: {} for t in RAW_TABLES})
    changes: list[Change] = field(default_factory=list)
    written: int = 0
    lsn: int = 0x16B3748
    answer_id: int = 0

    def _csn(self) -> str:
        self.lsn += 0x40
        return f"{self.lsn:016X}-{0:08X}"

    def _full(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        return {name: row.get(name) for name, _ in RAW_TABLES[table]}

    def insert(self, table: str, at: dt.datetime, **row: Any) -> dict[str, Any]:
        if table == "answers" and "id" not in row:
            self.answer_id += 1
            row["id"] = self.answer_id
        full = self._full(table, row)
        key = key_of(table, full)
        assert key not in self.state[table], (table, key)
        self.state[table][key] = full
        self.changes.append(Change(table, dict(full), at, self._csn(), "INSERT"))
        return full

    def update(self, table: str, key: Any, at: dt.datetime, **values: Any) -> dict[str, Any]:
        key = key if isinstance(key, tuple) else (key,)
        old = self.state[table][key]
        new = {**old, **values}
        if "updated_at" in new and "updated_at" not in values:
            new["updated_at"] = at
        csn = self._csn()
        self.changes.append(Change(table, dict(old), at, csn, "UPDATE-DELETE"))
        self.changes.append(Change(table, dict(new), at, csn, "UPDATE-INSERT"))
        self.state[table][key] = new
        return new

    def delete(self, table: str, key: Any, at: dt.datetime) -> None:
        key = key if isinstance(key, tuple) else (key,)
        old = self.state[table].pop(key)
        self.changes.append(Change(table, dict(old), at, self._csn(), "DELETE"))

    # ------------------------------------------------------------------------------------
    def write(self, con: Any) -> int:
        """Append the change rows not written yet to ``raw.<table>`` (DuckDB); return their count."""
        create_raw_tables(con)
        new = self.changes[self.written:]
        for table, cols in RAW_TABLES.items():
            rows = [c for c in new if c.table == table]
            if not rows:
                continue
            names = [n for n, _ in cols]
            placeholders = ", ".join("?" for _ in names)
            sql = (f'INSERT INTO raw."{raw_table_name(table)}" VALUES ({placeholders}, '
                   "{'uuid': ?, 'source_timestamp': ?, 'change_sequence_number': ?, "
                   "'change_type': ?, 'sort_keys': [?]})")
            params = []
            for c in rows:
                values = [json.dumps(v) if bq == "JSON" and v is not None else v
                          for (n, bq), v in zip(cols, (c.row[n] for n in names))]
                params.append([
                    *values, str(uuid.uuid4()), int(c.at.timestamp() * 1000), c.csn,
                    c.change_type, c.csn,
                ])
            con.executemany(sql, params)
        self.written = len(self.changes)
        return len(new)

    # Helpers of the scenario ------------------------------------------------------------
    def respond(self, name: str, *, tenant: str, assessment: str, run: str | None, user: str | None,
                submitted: dt.datetime, at: dt.datetime, answers: dict[str, Any]) -> None:
        """A processed Typeform response: the response row and its answers, scored as ingest does."""
        rid = uid(name)
        totals = _score(self, answers)
        self.insert("responses", at, id=rid, tenant_id=uid(tenant), assessment_id=uid(assessment),
                    run_id=uid(run) if run else None, user_id=uid(user) if user else None,
                    typeform_token=f"tok-{name}", typeform_event_id=f"evt-{name}",
                    landed_at=submitted - dt.timedelta(minutes=4), submitted_at=submitted,
                    is_complete=totals["complete"], answer_count=len(answers),
                    total_score=totals["total"], max_score=totals["max"], hidden={"src": "test"},
                    payload_sha256="a" * 64, revision=1, received_at=at, updated_at=at)
        for q, value in answers.items():
            self._answer(rid, tenant, q, value, at)

    def _answer(self, rid: str, tenant: str, q: str, value: Any, at: dt.datetime) -> None:
        question = self.state["questions"][(uid(q),)]
        raw = score = None
        num = text = boolean = None
        if isinstance(value, bool):
            boolean, kind = value, "boolean"
        elif isinstance(value, (int, float, Decimal)):
            num, kind = Decimal(str(value)), "number"
            if question["scale_min"] is not None:
                raw = num
                score = (question["scale_min"] + question["scale_max"] - num
                         if question["reverse_keyed"] else num)
        else:
            text, kind = str(value), "text"
        self.insert("answers", at, tenant_id=uid(tenant), response_id=rid, question_id=uid(q),
                    answer_type=kind, value_text=text, value_number=num, value_bool=boolean,
                    raw_score=raw, score=score)

    def revise(self, name: str, *, tenant: str, submitted: dt.datetime, at: dt.datetime,
               answers: dict[str, Any]) -> None:
        """A revision: answers replaced, response row updated in place (revision + 1)."""
        rid = uid(name)
        for key, ans in list(self.state["answers"].items()):
            if ans["response_id"] == rid:
                self.delete("answers", key, at)
        totals = _score(self, answers)
        old = self.state["responses"][(rid,)]
        self.update("responses", rid, at, submitted_at=submitted, is_complete=totals["complete"],
                    answer_count=len(answers), total_score=totals["total"], max_score=totals["max"],
                    revision=old["revision"] + 1, typeform_event_id=f"evt-{name}-r{old['revision'] + 1}")
        for q, value in answers.items():
            self._answer(rid, tenant, q, value, at)

    def delete_response(self, name: str, at: dt.datetime) -> None:
        rid = uid(name)
        for key, ans in list(self.state["answers"].items()):
            if ans["response_id"] == rid:
                self.delete("answers", key, at)
        self.delete("responses", rid, at)


def _score(log: ChangeLog, answers: dict[str, Any]) -> dict[str, Any]:
    total = maximum = None
    assessment = None
    for q, value in answers.items():
        question = log.state["questions"][(uid(q),)]
        assessment = question["assessment_id"]
        if question["scale_min"] is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        s = (question["scale_min"] + question["scale_max"] - value) if question["reverse_keyed"] else value
        total = (total or 0) + Decimal(str(s)) * question["weight"]
        maximum = (maximum or 0) + question["scale_max"] * question["weight"]
    required = {k for k, q in log.state["questions"].items()
                if q["assessment_id"] == assessment and q["required"]}
    answered = {(uid(q),) for q in answers}
    return {"total": total, "max": maximum, "complete": required <= answered}


# ----------------------------------------------------------------------------------------
# The scenario
# ----------------------------------------------------------------------------------------

def _question(log: ChangeLog, name: str, tenant: str, assessment: str, position: int, qtype: str,
              scale: tuple[int, int] | None = None, reverse: bool = False, weight: str = "1",
              required: bool = True) -> None:
    log.insert("questions", T0, id=uid(name), tenant_id=uid(tenant), assessment_id=uid(assessment),
               ref=name, title=f"Question {name}", question_type=qtype, position=position,
               required=required, scale_min=scale[0] if scale else None,
               scale_max=scale[1] if scale else None, reverse_keyed=reverse,
               weight=Decimal(weight), created_at=T0)


def _user(log: ChangeLog, name: str, tenant: str, at: dt.datetime, department: str, role: str,
          location: str, team: str) -> None:
    log.insert("users", at, id=uid(name), tenant_id=uid(tenant), external_id=f"ext-{name}",
               email=f"{name}@{tenant}.example", full_name=f"User {name.upper()}",
               department=department, role=role, location=location, team_id=uid(team),
               created_at=at, updated_at=at)


def scenario_batch1() -> ChangeLog:
    """Two tenants, 9 users, two assessments, three runs, responses with every kind of change."""
    log = ChangeLog()
    for t, name in (("acme", "Acme Corp"), ("globex", "Globex")):
        log.insert("organizations", T0, id=uid(t), slug=t, name=name, created_at=T0, updated_at=T0)
        for team in ("platform", "growth"):
            log.insert("teams", T0, id=uid(f"{t}-{team}"), tenant_id=uid(t), name=team.title(),
                       created_at=T0)
    for name, d in (("a1", "Engineering"), ("a2", "Sales"), ("a3", "HR"), ("a4", "Finance"),
                    ("a5", "Marketing")):
        _user(log, name, "acme", day(0), d, "IC", "Brussels", "acme-platform")
    for name in ("g1", "g2"):
        _user(log, name, "globex", day(0), "Engineering", "IC", "Lisbon", "globex-growth")
    _user(log, "g3", "globex", day(3), "Support", "IC", "Remote", "globex-growth")

    # Assessments and questions
    log.insert("assessments", T0, id=uid("eng"), tenant_id=uid("acme"), typeform_form_id="F-ENG",
               title="Engagement pulse", status="active", created_at=T0, updated_at=T0)
    _question(log, "e1", "acme", "eng", 0, "opinion_scale", (1, 5))
    _question(log, "e2", "acme", "eng", 1, "opinion_scale", (1, 5), reverse=True)
    _question(log, "e3", "acme", "eng", 2, "opinion_scale", (1, 5), weight="2", required=False)
    _question(log, "e4", "acme", "eng", 3, "long_text", required=False)
    _question(log, "e5", "acme", "eng", 4, "yes_no")
    log.insert("assessments", T0, id=uid("wb"), tenant_id=uid("globex"), typeform_form_id="F-WB",
               title="Wellbeing", status="draft", created_at=T0, updated_at=T0)
    log.update("assessments", uid("wb"), day(1), status="active")
    _question(log, "w1", "globex", "wb", 0, "rating", (0, 10))
    _question(log, "w2", "globex", "wb", 1, "rating", (0, 10), reverse=True, weight="1.5")
    _question(log, "w3", "globex", "wb", 2, "multiple_choice", required=False)

    # Runs and invitations
    for run, tenant, assessment, start in (("acme-r1", "acme", "eng", 0), ("acme-r2", "acme", "eng", 14),
                                           ("globex-r1", "globex", "wb", 0)):
        log.insert("assessment_runs", T0, id=uid(run), tenant_id=uid(tenant),
                   assessment_id=uid(assessment), name=run.upper(), opens_at=day(start),
                   closes_at=day(start + 13), created_at=T0)
        users = ["a1", "a2", "a3", "a4", "a5"] if tenant == "acme" else ["g1", "g2", "g3"]
        for u in users:
            at = max(day(start), day(3) if u == "g3" else T0)
            log.insert("run_participants", at, tenant_id=uid(tenant), run_id=uid(run),
                       user_id=uid(u), invited_at=at)

    # User history (SCD2)
    log.update("users", uid("a2"), day(5), email="a2.new@acme.example")          # no new version
    log.update("users", uid("a3"), day(8), role="Team Lead")                    # version 2
    log.update("users", uid("a1"), day(10), department="Sales")                 # version 2
    log.update("users", uid("a3"), day(12), location="Remote")                  # version 3
    log.update("users", uid("a3"), day(12.5), updated_at=day(12.5))             # no new version

    # Responses
    eng, wb = {"tenant": "acme", "assessment": "eng"}, {"tenant": "globex", "assessment": "wb"}
    log.respond("ra1", **eng, run="acme-r1", user="a1", submitted=day(5), at=day(5.01),
                answers={"e1": 4, "e2": 2, "e3": 5, "e4": "great", "e5": True})
    log.respond("ra2", **eng, run="acme-r1", user="a2", submitted=day(6), at=day(6.01),
                answers={"e1": 3, "e2": 5, "e5": False})
    log.respond("ra3", **eng, run="acme-r1", user="a3", submitted=day(9), at=day(9.01),
                answers={"e1": 5, "e2": 1, "e3": 1, "e5": True})
    log.respond("ra4", **eng, run="acme-r1", user="a4", submitted=day(2), at=day(2.01),
                answers={"e2": 4, "e4": "too many meetings"})                   # incomplete
    log.respond("rg1", **wb, run="globex-r1", user="g1", submitted=day(4), at=day(4.01),
                answers={"w1": 7, "w2": 3, "w3": "Calm"})
    log.respond("rg2", **wb, run="globex-r1", user="g2", submitted=day(4.5), at=day(4.51),
                answers={"w1": 2, "w2": 9})
    log.revise("rg2", tenant="globex", submitted=day(6), at=day(6.01), answers={"w1": 6, "w2": 4, "w3": "Tired"})
    # g3 answered before the user row existed (created at day 3): first version applies
    log.respond("rg3a", **wb, run="globex-r1", user="g3", submitted=day(2.5), at=day(3.2),
                answers={"w1": 10, "w2": 0})
    log.respond("rg3b", **wb, run="globex-r1", user="g3", submitted=day(5), at=day(5.01),
                answers={"w1": 1})
    log.delete_response("rg3b", day(7))
    log.respond("rx", **wb, run=None, user=None, submitted=day(11), at=day(11.01),
                answers={"w3": "Anonymous"})                                   # anonymous, nothing scored

    # a5 leaves: invitations cascade, then the user row
    for run in ("acme-r1", "acme-r2"):
        log.delete("run_participants", (uid(run), uid("a5")), day(20))
    log.delete("users", uid("a5"), day(20))
    log.update("organizations", uid("globex"), day(15), name="Globex International")
    return log


def scenario_batch2(log: ChangeLog) -> None:
    """Later changes: new responses, a revision, a deleted response, another SCD change."""
    eng = {"tenant": "acme", "assessment": "eng"}
    log.update("users", uid("a4"), day(30), department="Engineering", team_id=uid("acme-growth"))
    log.respond("ra1b", **eng, run="acme-r2", user="a1", submitted=day(16), at=day(30.1),
                answers={"e1": 2, "e2": 3, "e3": 4, "e5": True})
    log.respond("ra3b", **eng, run="acme-r2", user="a3", submitted=day(17), at=day(30.2),
                answers={"e1": 1, "e2": 5, "e5": False})
    log.respond("ra4b", **eng, run="acme-r2", user="a4", submitted=day(31), at=day(31.01),
                answers={"e1": 5, "e2": 1, "e3": 3, "e5": True})
    log.revise("ra2", tenant="acme", submitted=day(6.5), at=day(30.3),
               answers={"e1": 1, "e2": 1, "e3": 2, "e5": True})
    log.delete_response("ra4", day(30.4))


# ----------------------------------------------------------------------------------------
# Expected results, computed in Python from the source state and history
# ----------------------------------------------------------------------------------------

def expected_user_versions(log: ChangeLog) -> dict[str, list[dict[str, Any]]]:
    """user id -> versions [{version, attrs, valid_from, valid_to}] (SCD2 by hand)."""
    by_user: dict[str, list[Change]] = {}
    for c in log.changes:
        if c.table == "users" and c.change_type != "UPDATE-DELETE":
            by_user.setdefault(c.row["id"], []).append(c)
    out: dict[str, list[dict[str, Any]]] = {}
    for user, changes in by_user.items():
        changes.sort(key=lambda c: (c.at, c.csn))
        versions: list[dict[str, Any]] = []
        state: Any = None
        for c in changes:
            new_state = "deleted" if c.change_type == "DELETE" else tuple(c.row[a] for a in TRACKED)
            if new_state == state:
                continue
            if versions and versions[-1]["valid_to"] is None:
                versions[-1]["valid_to"] = c.at
            if new_state != "deleted":
                versions.append({"version": len(versions) + 1, "attrs": dict(zip(TRACKED, new_state)),
                                 "valid_from": c.at, "valid_to": None})
            state = new_state
        out[user] = versions
    return out


def expected_responses(log: ChangeLog) -> dict[str, dict[str, Any]]:
    """response id -> the fact_response values the warehouse must compute."""
    versions = expected_user_versions(log)
    questions = {k[0]: q for k, q in log.state["questions"].items()}
    out = {}
    for (rid,), r in log.state["responses"].items():
        answers = [a for a in log.state["answers"].values() if a["response_id"] == rid]
        raw = score = lo = hi = None
        scored = reverse = 0
        for a in answers:
            q = questions[a["question_id"]]
            if q["scale_min"] is None or a["value_number"] is None:
                continue
            w, v = q["weight"], a["value_number"]
            s = q["scale_min"] + q["scale_max"] - v if q["reverse_keyed"] else v
            raw, score = (raw or 0) + v * w, (score or 0) + s * w
            lo, hi = (lo or 0) + q["scale_min"] * w, (hi or 0) + q["scale_max"] * w
            scored += 1
            reverse += bool(q["reverse_keyed"])
        version = None
        if r["user_id"]:
            vs = versions[r["user_id"]]
            match = [v for v in vs if v["valid_from"] <= r["submitted_at"]
                     and (v["valid_to"] is None or r["submitted_at"] < v["valid_to"])]
            version = (match or vs[:1])[0]["version"]
        out[rid] = {
            "tenant_id": r["tenant_id"], "user_id": r["user_id"], "run_id": r["run_id"],
            "user_version": version,
            "date_key": int(r["submitted_at"].strftime("%Y%m%d")),
            "is_complete": r["is_complete"], "answered_count": len(answers),
            "scored_answer_count": scored, "reverse_keyed_answer_count": reverse,
            "raw_score": raw, "score": score, "min_score": lo, "max_score": hi,
            "revision": r["revision"],
        }
    return out


def expected_run_summary(log: ChangeLog) -> dict[str, dict[str, Any]]:
    responses = expected_responses(log)
    out = {}
    for (run_id,) in log.state["assessment_runs"]:
        invited = {p["user_id"] for p in log.state["run_participants"].values() if p["run_id"] == run_id}
        rs = [r for r in responses.values() if r["run_id"] == run_id]
        complete = [r for r in rs if r["is_complete"]]
        completed_participants = {r["user_id"] for r in complete} & invited
        scores = [float(r["score"]) for r in complete if r["score"] is not None]
        out[run_id] = {
            "participants": len(invited), "responses": len(rs), "complete_responses": len(complete),
            "completed_participants": len(completed_participants),
            "completion_rate": len(completed_participants) / len(invited) if invited else None,
            "average_score": sum(scores) / len(scores) if scores else None,
        }
    return out
