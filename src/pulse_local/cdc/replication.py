"""The streaming replication connection: create the slot (exporting its snapshot), start
streaming pgoutput, read CopyData with a timeout, and confirm positions.

psycopg 3 has no replication API, but a ``replication=database`` connection runs the replication
commands as simple queries; START_REPLICATION switches it to COPY_BOTH, read and written here
through the libpq wrapper (`conn.pgconn`).
"""

from __future__ import annotations

import select
import time
from typing import Any

import psycopg
from psycopg import pq, sql

from pulse_local.cdc.lsn import format_lsn, parse_lsn
from pulse_local.cdc.pgoutput import PG_EPOCH, standby_status_update
from pulse_local.cdc.typemap import libpq_options


def _now_micros() -> int:
    return int((time.time() - PG_EPOCH.timestamp()) * 1_000_000)


class ReplicationStream:
    """One replication connection to `dsn`."""

    def __init__(self, dsn: str, connect_timeout: int = 10) -> None:
        self.conn = psycopg.connect(dsn, replication="database", autocommit=True,
                                    connect_timeout=connect_timeout, options=libpq_options(),
                                    application_name="pulse_cdc")
        self.pgconn: Any = self.conn.pgconn
        self.streaming = False

    def close(self) -> None:
        self.conn.close()

    def create_slot(self, slot: str, temporary: bool = False) -> tuple[int, str]:
        """Create a pgoutput slot exporting its snapshot; return (consistent point, snapshot).

        The snapshot stays usable (``SET TRANSACTION SNAPSHOT``) until the next command on this
        connection: backfill inside it, then call `start`. Rows in the snapshot are exactly
        the changes committed before the consistent point; streaming returns the rest."""
        query = sql.SQL("CREATE_REPLICATION_SLOT {} {}LOGICAL pgoutput (SNAPSHOT 'export')").format(
            sql.Identifier(slot), sql.SQL("TEMPORARY " if temporary else ""))
        row = self.conn.execute(query).fetchone()
        assert row is not None
        return parse_lsn(row[1]), row[2]

    def start(self, slot: str, publication: str, start_lsn: int) -> None:
        """START_REPLICATION from `start_lsn` (the server resumes at the slot's confirmed
        position if that is later), protocol 1, with logical messages (drain markers)."""
        command = (f"START_REPLICATION SLOT \"{slot}\" LOGICAL {format_lsn(start_lsn)} "
                   f"(proto_version '1', publication_names '{publication}', messages 'true')")
        self.pgconn.send_query(command.encode())
        result = self.pgconn.get_result()
        if result.status != pq.ExecStatus.COPY_BOTH:
            message = result.error_message.decode(errors="replace").strip()
            raise psycopg.OperationalError(f"START_REPLICATION failed: {message}")
        self.streaming = True

    def read(self, timeout: float) -> bytes | None:
        """The next CopyData message, or None after `timeout` seconds without one."""
        deadline = time.monotonic() + timeout
        while True:
            nbytes, data = self.pgconn.get_copy_data(1)
            if nbytes > 0:
                return bytes(data)
            if nbytes == -1:  # COPY ended: the server closed the stream
                result = self.pgconn.get_result()
                message = (result.error_message.decode(errors="replace").strip()
                           if result is not None else "stream ended")
                raise psycopg.OperationalError(f"replication stream ended: {message}")
            if nbytes == -2:
                raise psycopg.OperationalError(
                    "replication stream failed: "
                    + self.pgconn.error_message.decode(errors="replace").strip())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.pgconn.socket], [], [], remaining)
            if ready:
                self.pgconn.consume_input()

    def send_status(self, flushed: int, reply: bool = False) -> None:
        """Confirm that everything up to `flushed` is durable downstream."""
        message = standby_status_update(flushed, flushed, flushed, _now_micros(), reply)
        if self.pgconn.put_copy_data(message) != 1:
            raise psycopg.OperationalError("cannot send a standby status update: "
                                           + self.pgconn.error_message.decode(errors="replace"))
        self.pgconn.flush()
