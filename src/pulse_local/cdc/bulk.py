"""Vectorised decoding of many pgoutput TupleData at once (numpy), straight into Arrow string
columns: the throughput path for Insert, Update (without old tuple) and Delete messages.

Per message Python only records the frame; at flush time the TupleData of all frames of a table
are walked column by column with array operations: column k of every message is decoded by the
same few numpy calls, and values are gathered into one Arrow buffer without creating Python
strings. `pgoutput.decode_tuple_data` is the reference implementation (and the slow path).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from pulse_local.cdc.pgoutput import DecodeError

_T, _N, _U, _B = ord("t"), ord("n"), ord("u"), ord("b")


def _be32(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Big-endian signed int32 at each position."""
    b = buf[pos[:, None] + np.arange(4)].astype(np.int64)
    value = (b[:, 0] << 24) | (b[:, 1] << 16) | (b[:, 2] << 8) | b[:, 3]
    return np.where(value >= 1 << 31, value - (1 << 32), value)


def decode_frames(frames: Sequence[bytes], offset: int, ncols: int
                  ) -> tuple[list[pa.Array], np.ndarray]:
    """Decode the TupleData starting at `offset` in each frame. Returns one Arrow string
    array per column (NULL for 'n' and 'u') and a (ncols, n) boolean matrix of 'u' columns.
    Raises `DecodeError` if a frame is malformed or has another column count."""
    n = len(frames)
    if n == 0:
        return [pa.array([], pa.large_string()) for _ in range(ncols)], np.zeros((ncols, 0), bool)
    sizes = np.fromiter((len(f) for f in frames), dtype=np.int64, count=n)
    ends = np.cumsum(sizes)
    buf = np.frombuffer(b"".join(frames) + b"\x00" * 8, dtype=np.uint8)
    pos = ends - sizes + offset
    if np.any(pos + 2 > ends):
        raise DecodeError("TupleData truncated (frame shorter than its header)")
    counts = (buf[pos].astype(np.int64) << 8) | buf[pos + 1]
    if np.any(counts != ncols):
        raise DecodeError(f"TupleData with {set(counts.tolist())} columns, expected {ncols}")
    pos = pos + 2
    columns: list[pa.Array] = []
    unchanged = np.zeros((ncols, n), dtype=bool)
    for k in range(ncols):
        if np.any(pos >= ends):
            raise DecodeError(f"TupleData truncated before column {k}")
        kinds = buf[pos]
        is_text = kinds == _T
        if not np.all(is_text | (kinds == _N) | (kinds == _U)):
            bad = kinds[~(is_text | (kinds == _N) | (kinds == _U))][0]
            if bad == _B:
                raise DecodeError("binary tuple data received: start replication without the "
                                  "'binary' option")
            raise DecodeError(f"unknown TupleData column kind {chr(bad)!r}")
        unchanged[k] = kinds == _U
        lengths = np.zeros(n, dtype=np.int64)
        if is_text.any():
            lengths[is_text] = _be32(buf, pos[is_text] + 1)
        starts = pos + 5
        pos = pos + 1 + np.where(is_text, 4 + lengths, 0)
        if np.any(pos > ends) or np.any(lengths < 0):
            raise DecodeError(f"TupleData value truncated in column {k}")
        columns.append(_string_array(buf, starts, lengths, is_text))
    return columns, unchanged


def _string_array(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                  valid: np.ndarray) -> pa.Array:
    """An Arrow large_string array of the byte ranges [start, start+length) (NULL if not valid)."""
    n = len(starts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    if total:
        index = np.repeat(starts - offsets[:-1], lengths) + np.arange(total, dtype=np.int64)
        data = buf[index]
    else:
        data = np.zeros(0, dtype=np.uint8)
    bitmap = np.packbits(valid, bitorder="little")
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(data.tobytes()), pa.py_buffer(bitmap.tobytes()),
        null_count=int(n - valid.sum()))
