"""Log sequence numbers (LSN): PostgreSQL's ``X/Y`` text form, integers, and the fixed-width hex
used in file names (so that sorting names sorts positions)."""

from __future__ import annotations


def parse_lsn(text: str) -> int:
    """``'0/1D45A40'`` -> integer position."""
    try:
        high, low = text.strip().split("/")
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise ValueError(f"not an LSN: {text!r} (expected the form 16/B374D848)") from None


def format_lsn(value: int) -> str:
    """Integer position -> ``'0/1D45A40'`` (PostgreSQL's text form)."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def lsn_hex(value: int) -> str:
    """Integer position -> 16 upper-case hex digits; lexical order equals numeric order."""
    return f"{value:016X}"
