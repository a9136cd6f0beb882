"""`BigtableRpc.read_cells` reassembling rows from ReadRows chunks, against a fake generated
client that replays given responses (a unit test: no emulator; the fold's integration tests
read the real emulator's stream)."""

from __future__ import annotations

from typing import Any

from google.cloud.bigtable_v2.types import ReadRowsResponse

from pulse_local.streaming.rpc import BigtableRpc


class FakeGapic:
    """Stands in for `google.cloud.bigtable_v2.BigtableClient`: ``read_rows`` yields the
    responses it was given."""

    def __init__(self, responses: list[ReadRowsResponse]) -> None:
        self.responses = responses

    def read_rows(self, request: Any, timeout: float) -> Any:
        return iter(self.responses)


def _chunk(**fields: Any) -> dict[str, Any]:
    """A ReadRows ``CellChunk`` given by its fields."""
    return fields


def _scan(responses: list[list[dict[str, Any]]]
          ) -> list[tuple[bytes, list[tuple[str, bytes, int, bytes]]]]:
    gapic = FakeGapic([ReadRowsResponse(chunks=chunks) for chunks in responses])
    rpc = BigtableRpc(gapic, "p", "i")  # type: ignore[arg-type]
    return list(rpc.read_cells("t", rpc.row_filter(strip_value_transformer=True)))


def test_rows_spread_over_responses_come_back_whole_and_in_order() -> None:
    rows = _scan([
        [_chunk(row_key=b"r1", family_name="counts", qualifier=b"a", timestamp_micros=1),
         _chunk(qualifier=b"b", timestamp_micros=1)],
        [_chunk(qualifier=b"c", timestamp_micros=1, commit_row=True),
         _chunk(row_key=b"r2", family_name="counts", qualifier=b"a", timestamp_micros=1,
                commit_row=True)],
    ])
    assert rows == [(b"r1", [("counts", b"a", 1, b""), ("counts", b"b", 1, b""),
                             ("counts", b"c", 1, b"")]),
                    (b"r2", [("counts", b"a", 1, b"")])]


def test_a_split_cell_is_one_cell_and_a_reset_row_drops_what_came_before() -> None:
    rows = _scan([[
        _chunk(row_key=b"r1", family_name="counts", qualifier=b"x", timestamp_micros=1),
        _chunk(reset_row=True),
        _chunk(row_key=b"r1", family_name="counts", qualifier=b"a", timestamp_micros=1,
               value=b"12", value_size=4),
        _chunk(value=b"34"),
        _chunk(qualifier=b"b", timestamp_micros=1, commit_row=True),
    ]])
    assert rows == [(b"r1", [("counts", b"a", 1, b"1234"), ("counts", b"b", 1, b"")])]


def test_a_column_with_two_versions_is_listed_twice() -> None:
    """Versions of one column come as cells without a new qualifier, each with its timestamp."""
    rows = _scan([[
        _chunk(row_key=b"r1", family_name="counts", qualifier=b"a", timestamp_micros=2),
        _chunk(timestamp_micros=1, commit_row=True),
    ]])
    assert rows == [(b"r1", [("counts", b"a", 2, b""), ("counts", b"a", 1, b"")])]
