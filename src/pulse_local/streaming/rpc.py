"""Bigtable data calls with raw protobuf messages, through the official GAPIC client.

The consumer writes thousands of cells per batch; building them as proto-plus objects (what
the `google.cloud.bigtable.data` surface does) costs more CPU than the writes themselves on a
small machine. Here requests are built directly as protobuf messages and handed to the same
generated client (`google.cloud.bigtable_v2.BigtableClient`), which adds routing headers,
credentials and deadlines as usual.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud.bigtable.data import BigtableDataClient
    from google.cloud.bigtable_v2 import BigtableClient

#: Deadline of one call (seconds).
RPC_TIMEOUT = 30.0
#: Deadline of one whole-table scan (seconds): a maintenance pass, not a request.
SCAN_TIMEOUT = 600.0
#: The channel options of the generated client's own GCP channel (no message size limits: a
#: Bigtable row may hold up to 256 MB). gRPC's default 4 MB receive limit would otherwise fail
#: reads of a wide row (a hot aggregate row's pending entries) on an emulator that, unlike
#: Bigtable, sends a row in one message.
CHANNEL_OPTIONS = (("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1))
#: gRPC Python's channel option (``grpc.experimental.ChannelOptions.SingleThreadedUnaryStream``)
#: that reads a server stream (ReadRows, MutateRows) on the calling thread. By default every
#: such call starts a channel-spin thread and each response message crosses threads: a serving
#: read of 20 rows took p95 7.5 ms that way and 4.5 ms with the option (500 reads, one run).
SINGLE_THREADED_STREAMS = (("SingleThreadedUnaryStream", 1),)


class BigtableWriteError(RuntimeError):
    """Some entries of a MutateRows call failed (the batch is retried as a whole)."""


class PendingWrite:
    """A `ReadModifyWriteRow` in flight (`BigtableRpc.start_read_modify_write`)."""

    def __init__(self, future: Any, response_type: Any) -> None:
        self._future = future
        self._response_type = response_type

    def values(self) -> dict[bytes, bytes]:
        """Wait for the call; the new value of every modified column (qualifier -> value).
        Raises the `google.api_core.exceptions` error the generated client would raise."""
        import grpc
        from google.api_core import exceptions

        try:
            response = self._future.result()
        except grpc.RpcError as exc:
            raise exceptions.from_grpc_error(exc) from exc
        row = self._response_type.pb(response).row
        columns = [column for family in row.families for column in family.columns
                   if column.cells]
        return {column.qualifier: column.cells[0].value for column in columns}


def _pb_types() -> dict[str, Any]:
    from google.cloud.bigtable_v2.types import bigtable as bt
    from google.cloud.bigtable_v2.types import data as bd

    return {
        "MutateRowsRequest": (bt.MutateRowsRequest, bt.MutateRowsRequest.pb()),
        "ReadModifyWriteRowRequest": (bt.ReadModifyWriteRowRequest,
                                      bt.ReadModifyWriteRowRequest.pb()),
        "ReadRowsRequest": (bt.ReadRowsRequest, bt.ReadRowsRequest.pb()),
        "CheckAndMutateRowRequest": (bt.CheckAndMutateRowRequest,
                                     bt.CheckAndMutateRowRequest.pb()),
        "ReadModifyWriteRowResponse": bt.ReadModifyWriteRowResponse,
        "RowFilter": bd.RowFilter.pb(),
    }


class BigtableRpc:
    """The data calls the consumer needs, on one instance."""

    def __init__(self, gapic: BigtableClient, project: str, instance: str) -> None:
        self.gapic = gapic
        self.instance_path = f"projects/{project}/instances/{instance}"
        self._t = _pb_types()

    def table_name(self, table: str) -> str:
        return f"{self.instance_path}/tables/{table}"

    def new_mutate_request(self, table: str) -> Any:
        """An empty MutateRowsRequest protobuf; add entries with ``.entries.add(row_key=...)``."""
        return self._t["MutateRowsRequest"][1](table_name=self.table_name(table))

    def mutate_rows(self, request: Any, *, timeout: float = RPC_TIMEOUT,
                    retry: bool = True) -> None:
        """Send a MutateRowsRequest protobuf; raise `BigtableWriteError` if any entry failed.
        With ``retry=False`` the call is made once and never outlives ``timeout`` (for writes
        that must land before a deadline or not at all)."""
        if not request.entries:
            return
        wrapper = self._t["MutateRowsRequest"][0]
        failed = []
        options: dict[str, Any] = {"timeout": timeout}
        if not retry:
            options["retry"] = None
        for response in self.gapic.mutate_rows(request=wrapper.wrap(request), **options):
            failed += [(e.index, e.status.message)
                       for e in type(response).pb(response).entries if e.status.code]
        if failed:
            raise BigtableWriteError(
                f"{len(failed)} of {len(request.entries)} rows of {request.table_name} failed, "
                f"first: row {failed[0][0]}: {failed[0][1]}")

    def read_modify_write(self, table: str, row_key: bytes,
                          rules: Iterable[tuple[str, bytes, int | bytes]], *,
                          timeout: float = RPC_TIMEOUT) -> dict[bytes, bytes]:
        """Atomically increment (int) / append (bytes) cells of one row; returns the new value
        of every modified column (qualifier -> value)."""
        return self.start_read_modify_write(table, row_key, rules, timeout=timeout).values()

    def start_read_modify_write(self, table: str, row_key: bytes,
                                rules: Iterable[tuple[str, bytes, int | bytes]], *,
                                timeout: float = RPC_TIMEOUT) -> PendingWrite:
        """`read_modify_write` without waiting: the call is in flight when this returns, and
        `PendingWrite.values` waits for it. Many calls in flight cost no thread each (the gRPC
        stub's own future, with the routing header the generated client would add; increments
        are not idempotent, so the generated client would not retry them either)."""
        wrapper, cls = self._t["ReadModifyWriteRowRequest"]
        request = cls(table_name=self.table_name(table), row_key=row_key)
        for family, qualifier, change in rules:
            rule = request.rules.add(family_name=family, column_qualifier=qualifier)
            if isinstance(change, int):
                rule.increment_amount = change
            else:
                rule.append_value = change
        import grpc

        stub = self.gapic.transport.read_modify_write_row
        if not isinstance(stub, grpc.UnaryUnaryMultiCallable):
            raise TypeError(f"the Bigtable client's transport is {type(self.gapic.transport).__name__}; "
                            "BigtableRpc needs the gRPC transport (its calls have .future)")
        future = stub.future(wrapper.wrap(request), timeout=timeout,
                             metadata=self._routing(request.table_name))
        return PendingWrite(future, self._t["ReadModifyWriteRowResponse"])

    def new_check_and_mutate(self, table: str, row_key: bytes) -> Any:
        """An empty CheckAndMutateRowRequest protobuf for one row: fill ``predicate_filter``,
        ``true_mutations`` and ``false_mutations``, then `check_and_mutate`."""
        cls = self._t["CheckAndMutateRowRequest"][1]
        return cls(table_name=self.table_name(table), row_key=row_key)

    def check_and_mutate(self, request: Any) -> bool:
        """Apply a CheckAndMutateRowRequest protobuf atomically; whether the predicate
        matched (the true mutations were applied) or not (the false ones were)."""
        wrapper = self._t["CheckAndMutateRowRequest"][0]
        response = self.gapic.check_and_mutate_row(request=wrapper.wrap(request),
                                                   timeout=RPC_TIMEOUT, retry=None)
        return bool(response.predicate_matched)

    def read_cells(self, table: str, row_filter: Any, row_keys: Sequence[bytes] | None = None,
                   *, timeout: float = RPC_TIMEOUT
                   ) -> Iterator[tuple[bytes, list[tuple[str, bytes, int, bytes]]]]:
        """Rows of ``table`` (the given keys, or every row) with a cell passing
        ``row_filter``, one at a time as (row key, [(family, qualifier, timestamp µs,
        value)]), in Bigtable's order; split cells are joined."""
        wrapper, cls = self._t["ReadRowsRequest"]
        request = cls(table_name=self.table_name(table), filter=row_filter)
        if row_keys is not None:
            if not row_keys:
                return
            request.rows.row_keys.extend(row_keys)
        row_key, family, qualifier, stamp = b"", "", b"", 0
        cells: list[tuple[str, bytes, int, bytes]] = []
        parts: list[bytes] = []
        for response in self.gapic.read_rows(request=wrapper.wrap(request), timeout=timeout):
            for chunk in type(response).pb(response).chunks:
                if chunk.reset_row:
                    cells, parts = [], []
                    continue
                if chunk.row_key:
                    row_key = chunk.row_key
                if chunk.HasField("family_name"):
                    family = chunk.family_name.value
                if chunk.HasField("qualifier"):
                    qualifier = chunk.qualifier.value
                if not parts:  # the first chunk of a cell carries its timestamp
                    stamp = chunk.timestamp_micros
                parts.append(chunk.value)
                if chunk.value_size == 0:  # the cell is complete
                    cells.append((family, qualifier, stamp, b"".join(parts)))
                    parts = []
                if chunk.commit_row:
                    yield row_key, cells
                    cells = []

    def _routing(self, table_name: str) -> tuple[tuple[str, str], ...]:
        from google.api_core.gapic_v1 import routing_header

        return (routing_header.to_grpc_metadata({"table_name": table_name,
                                                 "app_profile_id": ""}),)

    def existing_keys(self, table: str, row_keys: Sequence[bytes], row_filter: Any) -> set[bytes]:
        """The keys among ``row_keys`` with at least one cell passing ``row_filter``."""
        if not row_keys:
            return set()
        wrapper, cls = self._t["ReadRowsRequest"]
        request = cls(table_name=self.table_name(table), filter=row_filter)
        request.rows.row_keys.extend(row_keys)
        found: set[bytes] = set()
        current = b""
        for response in self.gapic.read_rows(request=wrapper.wrap(request), timeout=RPC_TIMEOUT):
            for chunk in type(response).pb(response).chunks:
                if chunk.row_key:
                    current = chunk.row_key
                if chunk.reset_row:
                    continue
                if chunk.commit_row:
                    found.add(current)
        return found

    def row_filter(self, **fields: Any) -> Any:
        """A RowFilter protobuf (e.g. ``chain={"filters": [...]}``)."""
        return self._t["RowFilter"](**fields)


def _with_stream_option(create: Any) -> Any:
    """A channel factory like ``create`` whose channels also get `SINGLE_THREADED_STREAMS`."""

    def channel(*args: Any, **kwargs: Any) -> Any:
        kwargs["options"] = [*kwargs.get("options", ()), *SINGLE_THREADED_STREAMS]
        return create(*args, **kwargs)

    return channel


def gapic_client(emulator_host: str | None) -> BigtableClient:
    """The generated data client for an emulator (plaintext channel) or GCP (ADC), its server
    streams read on the calling thread (`SINGLE_THREADED_STREAMS`)."""
    import grpc
    from google.cloud.bigtable_v2 import BigtableClient
    from google.cloud.bigtable_v2.services.bigtable.transports import BigtableGrpcTransport

    if emulator_host is None:
        from google.auth.exceptions import DefaultCredentialsError

        from pulse_local.errors import missing_credentials

        try:
            return BigtableClient(transport=BigtableGrpcTransport(
                channel=_with_stream_option(BigtableGrpcTransport.create_channel)))
        except DefaultCredentialsError as exc:
            raise missing_credentials("Bigtable") from exc
    return BigtableClient(transport=BigtableGrpcTransport(
        channel=_with_stream_option(grpc.insecure_channel)(emulator_host,
                                                          options=CHANNEL_OPTIONS)))


@functools.cache
def data_client_class() -> type[BigtableDataClient]:
    """``google.cloud.bigtable.data.BigtableDataClient`` with `SINGLE_THREADED_STREAMS` on its
    channel, on the emulator (with `CHANNEL_OPTIONS`, as the generated transport sets them for
    GCP) and on GCP alike. The library offers no parameter for channel options, so this
    overrides the method that builds its channel; `tests/unit/streaming/test_channels.py`
    fails if that method changes shape."""
    import grpc
    from google.cloud.bigtable.data import BigtableDataClient
    from google.cloud.bigtable.data._sync_autogen._swappable_channel import SwappableChannel

    class DataClient(BigtableDataClient):
        """The official data client; server streams read on the calling thread."""

        def _build_grpc_channel(self, *args: Any, **kwargs: Any) -> Any:
            if self._emulator_host is not None:
                return SwappableChannel(functools.partial(
                    _with_stream_option(grpc.insecure_channel), self._emulator_host,
                    options=CHANNEL_OPTIONS))
            return _with_stream_option(super()._build_grpc_channel)(*args, **kwargs)

    return DataClient
