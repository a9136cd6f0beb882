"""The local raw layer on disk: one directory per source table holding Parquet files in
Datastream's shape, plus the stream's state file (the landed-LSN watermark).

Durability protocol of one flush (`RawLayer.land`, then `RawLayer.write_state`):

1. each table's rows go to ``<table>/<first>-<last>.parquet.tmp`` (first/last: commit LSNs of the
   batch as 16 hex digits), fsync'ed, renamed to ``.parquet``, directory fsync'ed;
2. the state file is replaced atomically (write tmp, fsync, rename, fsync dir) with the new
   watermark = commit LSN of the last landed transaction. This rename is the commit point;
3. only then does the caller confirm the position to PostgreSQL (the slot's confirmed_flush_lsn).

After a crash, files whose first LSN is above the watermark belong to an uncommitted flush:
`remove_orphans` deletes them at start-up and the views never show them (they filter on the
watermark), and transactions at or below the watermark that PostgreSQL re-sends are skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import pulse_local.cdc.datastream as datastream  # noqa: PLR0402 (no package import: circle)
from pulse_local.cdc.bulk import decode_frames
from pulse_local.cdc.errors import RESYNC_HINT, CdcError, RawLayerVersionError
from pulse_local.cdc.lsn import format_lsn, lsn_hex, parse_lsn
from pulse_local.cdc.pgoutput import UNCHANGED, DecodeError, decode_tuple_data
from pulse_local.cdc.schema import TableSchema

STATE_FILE = "_cdc_state.json"
HEARTBEAT_FILE = "_cdc_heartbeat.json"
SCHEMA_FILE = "_schema.json"
#: ``<first>-<last>[-<chunk>].parquet``
FILE_NAME = re.compile(r"^([0-9A-F]{16})-([0-9A-F]{16})(?:-(\d+))?\.parquet$")
#: 2: ``datastream_metadata`` exactly as Datastream's append-only mode (no ``is_deleted``),
#: views named ``<schema>_<table>``. A layer of another version needs a resync.
STATE_VERSION = 2
#: Where the TupleData of an Insert/Update('N')/Delete starts in its XLogData frame:
#: 'w' + 24 header bytes, message type, relation id (4), tuple marker.
FRAME_TUPLE_OFFSET = 31

#: Change types (Datastream's, plus TRUNCATE which only the merged views use).
CHANGE_TYPES = (*datastream.CHANGE_TYPES, "TRUNCATE")
INSERT, UPDATE_INSERT, UPDATE_DELETE, DELETE, TRUNCATE = CHANGE_TYPES
_TYPE_CODE = {name: i for i, name in enumerate(CHANGE_TYPES)}


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: Path, data: dict[str, Any], durable: bool = True) -> None:
    """Replace `path` with `data` as JSON so readers see the old or the new file, never half."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        if durable:
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


@dataclass
class StreamState:
    """What has been landed, persisted with the files (`_cdc_state.json`)."""

    stream: str
    slot: str
    publication: str
    backfill_complete: bool = False
    consistent_point: int = 0
    #: Commit LSN of the last landed transaction (the consistent point after the backfill).
    watermark: int = 0
    #: Where streaming resumes: end LSN of the last landed transaction.
    resume_lsn: int = 0
    last_commit_time: float | None = None
    landed_changes: int = 0
    backfilled_rows: int = 0
    updated_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(version=STATE_VERSION, consistent_point=format_lsn(self.consistent_point),
                    watermark=format_lsn(self.watermark), resume_lsn=format_lsn(self.resume_lsn),
                    # what the views compare file names against (NULL hides everything)
                    watermark_hex=lsn_hex(self.watermark) if self.backfill_complete else None)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StreamState:
        return cls(
            stream=data["stream"], slot=data["slot"], publication=data["publication"],
            backfill_complete=data["backfill_complete"],
            consistent_point=parse_lsn(data["consistent_point"]),
            watermark=parse_lsn(data["watermark"]), resume_lsn=parse_lsn(data["resume_lsn"]),
            last_commit_time=data.get("last_commit_time"),
            landed_changes=data.get("landed_changes", 0),
            backfilled_rows=data.get("backfilled_rows", 0),
            updated_at=data.get("updated_at", 0.0),
        )


@dataclass
class TableRows:
    """Rows of one table in a batch: source values as text (None = NULL), one tuple per change,
    and the change's metadata (commit LSN and position give the change sequence number)."""

    schema: TableSchema
    rows: list[Sequence[str | None]] = field(default_factory=list)
    lsn: list[int] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    change_type: list[str] = field(default_factory=list)
    source_ts: list[int] = field(default_factory=list)
    unchanged: list[list[str] | None] = field(default_factory=list)
    #: Undecoded XLogData frames (Insert, Update without old tuple, Delete): their TupleData
    #: starts at byte `FRAME_TUPLE_OFFSET` and is decoded in bulk when the batch is written.
    frames: list[bytes] = field(default_factory=list)
    frame_lsn: array = field(default_factory=lambda: array("Q"))
    frame_seq: array = field(default_factory=lambda: array("I"))
    frame_type: array = field(default_factory=lambda: array("B"))  # index in CHANGE_TYPES
    frame_ts: array = field(default_factory=lambda: array("q"))

    def __len__(self) -> int:
        return len(self.rows) + len(self.frames)

    def add_frame(self, frame: bytes, lsn: int, seq: int, change_type: str,
                  source_ts: int) -> None:
        """Record a change whose values are decoded later, in bulk (`bulk.decode_frames`)."""
        self.frames.append(frame)
        self.frame_lsn.append(lsn)
        self.frame_seq.append(seq)
        self.frame_type.append(_TYPE_CODE[change_type])
        self.frame_ts.append(source_ts)

    def materialize(self) -> None:
        """Decode the recorded frames one by one into `rows` (the slow path, for reshaping)."""
        for frame, lsn, seq, code, ts in zip(self.frames, self.frame_lsn, self.frame_seq,
                                             self.frame_type, self.frame_ts):
            change_type = CHANGE_TYPES[code]
            values = decode_tuple_data(frame, FRAME_TUPLE_OFFSET)[0]
            unchanged = [c.name for c, v in zip(self.schema.columns, values) if v is UNCHANGED]
            self.append([None if v is UNCHANGED else v for v in values],  # type: ignore[misc]
                        lsn, seq, change_type, ts, unchanged or None)
        self.frames = []
        self.frame_lsn, self.frame_seq = array("Q"), array("I")
        self.frame_type, self.frame_ts = array("B"), array("q")

    def append(self, row: Sequence[str | None], lsn: int, seq: int, change_type: str,
               source_ts: int, unchanged: list[str] | None = None) -> None:
        self.rows.append(row)
        self.lsn.append(lsn)
        self.seq.append(seq)
        self.change_type.append(change_type)
        self.source_ts.append(source_ts)
        self.unchanged.append(unchanged)

    def extend(self, other: TableRows) -> None:
        """Append `other` (same shape) to these rows."""
        self.rows.extend(other.rows)
        self.lsn.extend(other.lsn)
        self.seq.extend(other.seq)
        self.change_type.extend(other.change_type)
        self.source_ts.extend(other.source_ts)
        self.unchanged.extend(other.unchanged)
        self.frames.extend(other.frames)
        self.frame_lsn.extend(other.frame_lsn)
        self.frame_seq.extend(other.frame_seq)
        self.frame_type.extend(other.frame_type)
        self.frame_ts.extend(other.frame_ts)

    def columns(self) -> list[Sequence[str | None]]:
        """The values column by column."""
        width = len(self.schema.columns)
        if not self.rows:
            return [[] for _ in range(width)]
        return list(zip(*self.rows, strict=True)) if width else []

    def reshaped(self, schema: TableSchema) -> TableRows:
        """These rows under another shape of the table (new columns NULL, dropped ones gone)."""
        self.materialize()
        names = self.schema.column_names
        index = [names.index(c) if c in names else None for c in schema.column_names]
        out = TableRows(schema, [tuple(None if i is None else r[i] for i in index)
                                 for r in self.rows])
        out.lsn, out.seq, out.change_type = self.lsn, self.seq, self.change_type
        out.source_ts, out.unchanged = self.source_ts, self.unchanged
        return out


def change_sequence_number(commit_lsn: int, seq: int) -> str:
    """Sortable change sequence number: commit LSN then position in the transaction."""
    return f"{commit_lsn:016X}-{seq:08X}"


class RawLayer:
    """The landing directory of one stream."""

    def __init__(self, root: Path, stream: str) -> None:
        self.root = root
        self.stream = stream
        self._duck: Any = None

    # Paths and small files -----------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    @property
    def heartbeat_path(self) -> Path:
        return self.root / HEARTBEAT_FILE

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def tables(self) -> list[str]:
        """Tables with a schema file (landed at least once, possibly with zero rows)."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob(f"*/{SCHEMA_FILE}"))

    def read_state(self) -> StreamState | None:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CdcError(f"{self.state_path} is unreadable ({exc}): re-synchronise with "
                           "`python -m pulse_local.cdc resync`") from None
        if data.get("version") != STATE_VERSION:
            raise RawLayerVersionError(
                f"{self.root} was landed by another version of the CDC (raw layer version "
                f"{data.get('version', 1)}, this one writes {STATE_VERSION}: "
                "datastream_metadata without is_deleted, as Datastream's append-only mode, and "
                "views named <schema>_<table>); its files cannot be read as they are. "
                f"Rebuild it from the source with `{RESYNC_HINT}` (stop the CDC service first: "
                "`pulse-local down`, then `pulse-local up` after the resync)")
        return StreamState.from_json(data)

    def write_state(self, state: StreamState) -> None:
        state.updated_at = time.time()
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.state_path, state.to_json())

    def write_heartbeat(self, data: dict[str, Any]) -> None:
        """Liveness for `cdc_ready`/`lag` (not needed for correctness: no fsync)."""
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.heartbeat_path, {**data, "at": time.time(), "pid": os.getpid()},
                          durable=False)

    def read_heartbeat(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.heartbeat_path.read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError):
            return None

    def read_schema(self, table: str) -> tuple[TableSchema, str] | None:
        path = self.table_dir(table) / SCHEMA_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return TableSchema.from_json(data["schema"]), data["mode"]

    def write_schema(self, table: str, schema: TableSchema, mode: str,
                     history: list[dict[str, Any]] | None = None) -> None:
        """Record the table's current shape (and every column ever landed, for the views)."""
        folder = self.table_dir(table)
        folder.mkdir(parents=True, exist_ok=True)
        previous = self._read_schema_json(table)
        known = {c["name"]: c for c in (previous or {}).get("all_columns", [])}
        for column in schema.columns:
            known[column.name] = column.to_json()
        atomic_write_json(folder / SCHEMA_FILE, {
            "schema": schema.to_json(), "mode": mode, "all_columns": list(known.values()),
        })

    def _read_schema_json(self, table: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.table_dir(table) / SCHEMA_FILE).read_text("utf-8")))
        except FileNotFoundError:
            return None

    def all_columns(self, table: str) -> list[dict[str, Any]]:
        """Every column ever landed for `table` (dropped ones included), in first-seen order."""
        data = self._read_schema_json(table)
        return list(data["all_columns"]) if data else []

    # Recovery ----------------------------------------------------------------------------
    def remove_orphans(self, state: StreamState | None) -> int:
        """Delete temp files and files of a flush that never committed (first LSN > watermark,
        or any data file while the backfill is incomplete). Returns how many were removed."""
        removed = 0
        for path in (p for folder in self._table_dirs() for p in folder.iterdir()):
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
                removed += 1
                continue
            match = FILE_NAME.match(path.name)
            if match is None:
                continue
            committed = (state is not None and state.backfill_complete
                         and int(match[1], 16) <= state.watermark)
            if not committed:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def wipe(self) -> None:
        """Delete every landed file and the state (re-synchronisation)."""
        for folder in self._table_dirs():
            shutil.rmtree(folder)
        if self.root.is_dir():
            for child in self.root.glob("_cdc_*"):  # the state and heartbeat files, their temps
                child.unlink()

    def _table_dirs(self) -> list[Path]:
        """The directories this layer lands tables in: those holding its schema file, or the
        temp file of the first one. The root is shared (the streaming sink lands
        ``pubsub_response_events`` beside the tables, with its own temp files), so nothing
        else under it is this layer's to delete."""
        if not self.root.is_dir():
            return []
        return [folder for folder in self.root.iterdir() if folder.is_dir() and (
            (folder / SCHEMA_FILE).exists() or any(folder.glob(f"{SCHEMA_FILE}.*.tmp")))]

    # Writing -----------------------------------------------------------------------------
    def _duckdb(self) -> Any:
        if self._duck is None:
            import duckdb

            # An in-memory database of this process: converts text to typed Parquet. The
            # warehouse file is never opened here (DuckDB allows one writer per file).
            self._duck = duckdb.connect(":memory:", config={"threads": 2})
            self._duck.execute("SET TimeZone = 'UTC'")
        return self._duck

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()
            self._duck = None

    def write_file(self, table: str, rows: TableRows, first: int, last: int,
                   chunk: int | None = None) -> Path:
        """Write `rows` durably as ``<table>/<first>-<last>[-chunk].parquet``; return its path."""
        folder = self.table_dir(table)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{lsn_hex(first)}-{lsn_hex(last)}" + (f"-{chunk:05d}" if chunk is not None else "")
        final = folder / f"{name}.parquet"
        tmp = folder / f"{name}.parquet.tmp"
        arrow = self._arrow_batch(rows)
        select = self._select_sql(table, rows.schema)
        con = self._duckdb()
        con.register("batch", arrow)
        try:
            con.execute(f"COPY ({select}) TO '{_sql_path(tmp)}' "
                        "(FORMAT parquet, COMPRESSION snappy)")
        except Exception as exc:  # a value DuckDB cannot convert: name the table
            raise CdcError(
                f"cannot land a batch of {table}: {exc}. The value does not convert to the "
                "mapped type (see the type table in docs/cdc.md); fix the row or the mapping "
                "in pulse_local/cdc/typemap.py, then restart the CDC service"
            ) from exc
        finally:
            con.unregister("batch")
        fsync_file(tmp)
        os.replace(tmp, final)
        fsync_dir(folder)
        return final

    @staticmethod
    def _arrow_batch(rows: TableRows) -> pa.Table:
        """All rows as an Arrow table of text columns plus metadata columns."""
        if rows.frames:
            try:
                bulk = _frames_table(rows)
            except DecodeError:  # another column count: a shape change inside the batch
                rows.materialize()
            else:
                return pa.concat_tables([_rows_table(rows), bulk]) if rows.rows else bulk
        return _rows_table(rows)

    @staticmethod
    def _select_sql(table: str, schema: TableSchema) -> str:
        casts = [f"{spec.type.cast_sql(_ident(spec.name))} AS {_ident(spec.name)}"
                 for spec in schema.columns]
        # Deterministic and unique per event: table hash, commit LSN, position in transaction
        # (formatted once, in a sub-query: string formatting dominates the cost of a batch).
        uuid = (f"'{zlib.crc32(table.encode()):08x}-' || lower(substr(__csn, 1, 4) || '-' || "
                "substr(__csn, 5, 4) || '-' || substr(__csn, 9, 4) || '-' || "
                "substr(__csn, 13, 4) || substr(__csn, 18, 8))")
        metadata = (f"{{'uuid': {uuid}, 'source_timestamp': __ts, "
                    "'change_sequence_number': __csn, 'change_type': __ct, "
                    "'sort_keys': [__csn]} AS datastream_metadata")
        source = ("(SELECT *, format('{:016X}-{:08X}', __lsn, __seq) AS __csn FROM batch)")
        return (f"SELECT {', '.join([*casts, metadata])}, __unch AS _pulse_unchanged "
                f"FROM {source}")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _metadata_arrays(lsn: Sequence[int], seq: Sequence[int], change_type: Sequence[str],
                     source_ts: Sequence[int],
                     unchanged: Sequence[list[str] | None]) -> dict[str, pa.Array]:
    return {
        "__lsn": pa.array(lsn, type=pa.uint64()),
        "__seq": pa.array(seq, type=pa.uint32()),
        "__ct": pa.array(change_type, type=pa.large_string()),
        "__ts": pa.array(source_ts, type=pa.int64()),
        "__unch": pa.array(unchanged, type=pa.list_(pa.large_string())),
    }


def _rows_table(rows: TableRows) -> pa.Table:
    """Materialised rows (backfill, updates with an old tuple) as an Arrow table."""
    arrays: dict[str, pa.Array] = {}
    for spec, values in zip(rows.schema.columns, rows.columns()):
        if spec.type.needs_prepare:
            values = [spec.type.prepare(v) for v in values]
        arrays[spec.name] = pa.array(values, type=pa.large_string())
    arrays.update(_metadata_arrays(rows.lsn, rows.seq, rows.change_type, rows.source_ts,
                                   rows.unchanged))
    return pa.table(arrays)


def _frames_table(rows: TableRows) -> pa.Table:
    """Recorded frames decoded in bulk (numpy) into an Arrow table."""
    columns = rows.schema.columns
    values, unchanged_mask = decode_frames(rows.frames, FRAME_TUPLE_OFFSET, len(columns))
    arrays: dict[str, pa.Array] = {}
    for spec, column in zip(columns, values):
        if spec.type.needs_prepare:
            column = pa.array([spec.type.prepare(v) for v in column.to_pylist()],
                              type=pa.large_string())
        arrays[spec.name] = column
    unchanged: list[list[str] | None] = [None] * len(rows.frames)
    for i in np.nonzero(unchanged_mask.any(axis=0))[0]:
        unchanged[i] = [c.name for c, flag in zip(columns, unchanged_mask[:, i]) if flag]
    codes = np.frombuffer(rows.frame_type, dtype=np.uint8)
    arrays.update({
        "__lsn": pa.array(np.frombuffer(rows.frame_lsn, dtype=np.uint64)),
        "__seq": pa.array(np.frombuffer(rows.frame_seq, dtype=np.uint32)),
        "__ct": pa.array(np.array(CHANGE_TYPES, dtype=object)[codes], type=pa.large_string()),
        "__ts": pa.array(np.frombuffer(rows.frame_ts, dtype=np.int64)),
        "__unch": pa.array(unchanged, type=pa.list_(pa.large_string())),
    })
    return pa.table(arrays)
