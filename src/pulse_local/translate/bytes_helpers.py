"""Python helpers for BigQuery's BYTES overloads of string functions (registered on the
DuckDB connection by `functions.register`).

DuckDB's string functions take VARCHAR only (`substring(BLOB, ..)` does not bind). A BYTES
value is carried through them as Latin-1 text: byte b becomes code point b, so one byte is
one character and positions, lengths, character classes and `.` of RE2 count bytes, as
BigQuery's BYTES functions do (RE2 in Latin-1 mode). `bq_latin1_bytes` turns the result
back into bytes. LOWER/UPPER/ASCII of BYTES act on ASCII bytes only, which Latin-1 text
would not, so they have helpers of their own.
"""

from __future__ import annotations


def bytes_to_latin1(value: bytes) -> str:
    """Each byte as the code point of the same number."""
    return value.decode("latin-1")


def latin1_to_bytes(value: str) -> bytes:
    """The inverse of `bytes_to_latin1` (every code point is below 256)."""
    return value.encode("latin-1")


def bytes_lower(value: bytes) -> bytes:
    """LOWER(BYTES): ASCII letters only."""
    return value.lower()


def bytes_upper(value: bytes) -> bytes:
    """UPPER(BYTES): ASCII letters only."""
    return value.upper()


def bytes_ascii(value: bytes) -> int:
    """ASCII(BYTES): the first byte, 0 for empty bytes."""
    return value[0] if value else 0
