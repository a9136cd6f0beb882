"""Events stored in PostgreSQL that no durable event layer holds, and their republishing.

After a run that ended without `pulse-local down`, what waited in Pub/Sub died with the
emulator: those events are in PostgreSQL (a stored revision each) but in neither the raw events
sink nor Bigtable. Every stored revision is one applied delivery in ``webhook_deliveries``
(``created``, then one ``revised`` each, in order), whose body the raw archive holds (every
verified delivery is archived before it is written). Posting that body to the processor again,
with its original signature, republishes exactly that revision's event (same event id: a
``duplicate`` for the current revision, a ``stale`` body stored earlier for an older one), and
the consumer drops any repeat.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from pulse_local.config import Settings
from pulse_local.events import response_event_id

#: Every revision stored, as the owner role (all tenants): response, body digest, revision,
#: and the response's current digest and submission time.
_STORED_REVISIONS = """
select d.response_id, d.payload_sha256,
       row_number() over (partition by d.tenant_id, d.response_id order by d.id) as revision,
       r.payload_sha256, r.submitted_at
from webhook_deliveries d join responses r on r.id = d.response_id and r.tenant_id = d.tenant_id
where d.outcome in ('created', 'revised')
"""


@dataclass(frozen=True)
class Delivery:
    """An archived, verified delivery: its tenant slug, signature header and raw body."""

    tenant: str
    signature: str
    body: bytes


@dataclass
class Gap:
    """Stored revisions whose event is in no durable event layer, and their bodies."""

    missing: int = 0
    deliveries: list[Delivery] | None = None
    #: Missing revisions whose body the archive does not hold (cannot be republished).
    unarchived: int = 0
    #: Missing revisions whose body, posted again, would be stored as a new revision (not
    #: older than the current one): left alone.
    unsafe: int = 0


def _consumed_event_ids(settings: Settings) -> set[str]:
    from pulse_local.streaming.sink import raw_events_dir, read_raw

    root = raw_events_dir(settings)
    # no file yet (the consumer makes the folder, then its schema file): nothing consumed
    if not root.exists() or next(root.rglob("*.parquet"), None) is None:
        return set()
    return {json.loads(attributes).get("event_id", "")
            for *_, attributes in read_raw(root)}


def _archived(settings: Settings, digests: set[str], prefix: str) -> dict[str, Delivery]:
    """The verified archived deliveries whose body has one of `digests`, by digest."""
    found: dict[str, Delivery] = {}
    for path in sorted((settings.raw_bucket_dir / prefix).rglob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                if not record.get("verified") or "body" not in record:
                    continue
                body = record["body"].encode("utf-8")
                digest = hashlib.sha256(body).hexdigest()
                if digest in digests and digest not in found:
                    found[digest] = Delivery(record["tenant"], record.get("signature") or "",
                                             body)
    return found


def find_gap(settings: Settings, archive_prefix: str = "typeform/webhooks") -> Gap:
    """The stored revisions whose event the raw events sink does not hold."""
    import psycopg

    consumed = _consumed_event_ids(settings)
    with psycopg.connect(settings.admin_dsn(), connect_timeout=5) as conn:
        rows = conn.execute(_STORED_REVISIONS).fetchall()
    missing = [(sha, current_sha, current_at) for rid, sha, revision, current_sha, current_at
               in rows
               if str(response_event_id(uuid.UUID(str(rid)), revision)) not in consumed]
    gap = Gap(missing=len(missing), deliveries=[])
    if not missing:
        return gap
    archived = _archived(settings, {sha for sha, _, _ in missing}, archive_prefix)
    chosen: dict[str, Delivery] = {}
    for sha, current_sha, current_at in missing:
        if sha not in archived:
            gap.unarchived += 1
        elif sha == current_sha or _submitted_at(archived[sha].body) < current_at:
            chosen[sha] = archived[sha]  # a duplicate, or a stale body stored earlier
        else:
            gap.unsafe += 1
    gap.deliveries = list(chosen.values())
    return gap


def _submitted_at(body: bytes) -> datetime:
    return datetime.fromisoformat(json.loads(body)["form_response"]["submitted_at"])


def republish_gap(settings: Settings) -> str | None:
    """Find the gap and post its archived bodies to the processor; a note for `up`."""
    import httpx

    from pulse_local.config import load_options
    from pulse_local.ingest.options import ProcessorOptions
    from pulse_local.ingest.signature import HEADER

    gap = find_gap(settings, load_options(ProcessorOptions).archive_prefix)
    if not gap.missing:
        return "pubsub: every revision stored in PostgreSQL is in the raw events sink"
    statuses: dict[int, int] = {}
    base = f"http://{settings.host}:{settings.processor_port}/webhooks/typeform"
    with httpx.Client(timeout=30) as client:
        for d in gap.deliveries or []:
            answer = client.post(f"{base}/{d.tenant}", content=d.body,
                                 headers={HEADER: d.signature,
                                          "content-type": "application/json"})
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
    failed = sum(n for status, n in statuses.items() if status != 200)
    note = (f"pubsub: {gap.missing} revisions stored in PostgreSQL were in no durable event "
            f"layer (lost with Pub/Sub); republished their events by posting "
            f"{len(gap.deliveries or [])} archived bodies to the processor")
    if failed or gap.unarchived or gap.unsafe:
        note += (f"; {failed} posts failed (statuses {statuses}), {gap.unarchived} revisions "
                 f"have no archived body and {gap.unsafe} would be stored again as new "
                 "revisions: their events are not in Bigtable (run `pulse-local up` again "
                 "once the processor is healthy)")
    return note


def republish_after_unclean_stop(settings: Settings) -> str | None:
    """`republish_gap` when the last run ended without a save (`emulator_state` leaves
    ``gap.check`` for it); the mark stays until every post succeeded."""
    from pulse_local.stack.emulator_state import state_dir

    mark = state_dir(settings) / "gap.check"
    if not mark.exists():
        return None
    note = republish_gap(settings)
    if note is not None and "posts failed" not in note:
        mark.unlink()
    return note
