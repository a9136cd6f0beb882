"""Is the CDC service capturing, and how far behind is the raw layer?"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pulse_local.cdc.config import StreamConfig, load_stream_config
from pulse_local.cdc.landing import RawLayer
from pulse_local.config import Settings
from pulse_local.errors import ServiceUnavailable

#: A heartbeat older than this means the service is stuck or gone.
HEARTBEAT_MAX_AGE = 5.0


@dataclass(frozen=True)
class Lag:
    """How far the raw layer is behind the source."""

    slot: str
    #: A CDC process is attached to the slot right now.
    slot_active: bool
    current_lsn: str
    confirmed_flush_lsn: str | None
    #: WAL bytes between the server's current position and the slot's confirmed position.
    bytes_behind: int | None
    #: Seconds since the raw layer was last known complete: the later of the commit time of the
    #: last landed transaction and the last moment the service had nothing left to land.
    seconds_behind: float | None
    last_landed_commit: datetime | None
    landed_changes: int

    def summary(self) -> str:
        """One line for `pulse-local status`."""
        if self.confirmed_flush_lsn is None:
            return (f"slot {self.slot} missing: CDC never ran here, or the slot was dropped "
                    "(`python -m pulse_local.cdc resync`)")
        seconds = "n/a" if self.seconds_behind is None else f"{self.seconds_behind:.1f} s"
        state = "active" if self.slot_active else "idle"
        return (f"slot {self.slot} {state}: {self.bytes_behind} WAL bytes, {seconds} behind, "
                f"{self.landed_changes} changes landed")


def lag(settings: Settings, config: StreamConfig | None = None) -> Lag:
    """Measure the lag of the stream's slot and landed files (one short query)."""
    import psycopg

    config = config or load_stream_config()
    layer = RawLayer(config.raw_dir(settings), config.name)
    slot = config.source.replication_slot
    try:
        with psycopg.connect(settings.admin_dsn(), connect_timeout=5, autocommit=True) as conn:
            row = conn.execute(
                "select pg_current_wal_lsn()::text, s.active, s.confirmed_flush_lsn::text, "
                "pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint "
                "from (select 1) one left join pg_replication_slots s on s.slot_name = %s",
                (slot,)).fetchone()
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(
            f"cannot measure CDC lag: PostgreSQL does not answer ({exc}). Start the stack "
            "(`pulse-local up`)") from exc
    assert row is not None
    current, active, confirmed, behind = row
    state = layer.read_state()
    heartbeat = layer.read_heartbeat() or {}
    complete_at = [t for t in (state.last_commit_time if state else None,
                               heartbeat.get("caught_up_at")) if t]
    seconds = max(0.0, time.time() - max(complete_at)) if complete_at else None
    last_commit = (datetime.fromtimestamp(state.last_commit_time, UTC)
                   if state is not None and state.last_commit_time else None)
    return Lag(slot=slot, slot_active=bool(active), current_lsn=current,
               confirmed_flush_lsn=confirmed, bytes_behind=behind, seconds_behind=seconds,
               last_landed_commit=last_commit,
               landed_changes=state.landed_changes if state else 0)


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cdc_ready(settings: Settings, config: StreamConfig | None = None) -> None:
    """Return when the CDC service is streaming (fresh heartbeat from a live process);
    raise `ServiceUnavailable` saying why otherwise. Reads one small file: no database call."""
    config = config or load_stream_config()
    layer = RawLayer(config.raw_dir(settings), config.name)
    beat = layer.read_heartbeat()
    if beat is None:
        raise ServiceUnavailable(
            f"CDC has not started ({layer.heartbeat_path} missing): start it with "
            "`python -m pulse_local.cdc serve` (or `pulse-local up`)")
    phase, age = beat.get("phase"), time.time() - float(beat.get("at", 0))
    if phase in ("failed", "reconnecting"):
        raise ServiceUnavailable(f"CDC {phase}: {beat.get('error', '')}")
    if not _pid_alive(beat.get("pid")):
        raise ServiceUnavailable(f"CDC process {beat.get('pid')} is not running "
                                 f"(last phase {phase!r}): `pulse-local up` restarts it")
    if phase != "streaming":
        raise ServiceUnavailable(f"CDC is {phase!r}, not streaming yet")
    if age > HEARTBEAT_MAX_AGE:
        raise ServiceUnavailable(f"CDC heartbeat is {age:.0f} s old (pid {beat.get('pid')} "
                                 "stuck?): see `pulse-local logs cdc`")
