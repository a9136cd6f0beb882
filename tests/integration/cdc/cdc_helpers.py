"""Helpers of the CDC integration tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import yaml

from pulse_local.cdc import DrainReport, StreamConfig, drain, refresh_views
from pulse_local.config import Settings
from pulse_local.stack.services import service_env


@dataclass
class CdcCase:
    """One test's stream: names, config, and helpers to drive and compare it."""

    settings: Settings
    admin: psycopg.Connection[Any]
    root: Path
    mode: str = "merge"
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def publication(self) -> str:
        return f"pub_{self.name}"

    @property
    def slot(self) -> str:
        return f"slot_{self.name}"

    def t(self, base: str = "items") -> str:
        """A table name unique to this test."""
        return f"{base}_{self.name}"

    @property
    def config(self) -> StreamConfig:
        return StreamConfig.model_validate({
            "name": f"test-{self.name}",
            "source": {"publication": self.publication, "replication_slot": self.slot},
            "destination": {"path": str(self.root / "raw"), "mode": self.mode,
                            "flush_interval_ms": 100},
        })

    @property
    def config_path(self) -> Path:
        path = self.root / "stream.yaml"
        path.write_text(yaml.safe_dump(self.config.model_dump(by_alias=True)))
        return path

    def publish(self, *tables: str) -> None:
        self.admin.execute(f"create publication {self.publication} for table {', '.join(tables)}")

    def drain(self, **kwargs: Any) -> DrainReport:
        return drain(self.settings, self.config, **kwargs)

    def duck(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        refresh_views(con, self.settings, self.config)
        return con

    def raw(self, table: str, columns: str = "*", view: str | None = None) -> list[tuple[Any, ...]]:
        """Rows of ``raw.public_<table>`` (Datastream's name; the merged view in merge mode), or
        of ``raw.public_<view>``, ordered by the first column."""
        con = self.duck()
        try:
            return con.execute(
                f'SELECT {columns} FROM raw."public_{view or table}" ORDER BY 1').fetchall()
        finally:
            con.close()

    def source(self, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
        return self.admin.execute(f"SELECT {columns} FROM {table} ORDER BY 1").fetchall()

    # The service as a real process --------------------------------------------------------
    def start_service(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, **service_env(self.settings)}
        log = open(self.root / "cdc.log", "ab")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "pulse_local.cdc", "serve", "--config", str(self.config_path)],
            env=env, stdout=log, stderr=log)
        self.procs.append(proc)
        return proc

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        from pulse_local.cdc import cdc_ready

        deadline = time.monotonic() + timeout
        while True:
            try:
                cdc_ready(self.settings, self.config)
                beat = json.loads((self.root / "raw" / "_cdc_heartbeat.json").read_text())
                if beat["pid"] == proc.pid:
                    return
            except Exception as exc:  # not ready yet; the last error is reported on timeout
                if time.monotonic() > deadline:
                    raise AssertionError(f"CDC not ready: {exc}\n{self.log()}") from exc
            if proc.poll() is not None:
                raise AssertionError(f"CDC exited with {proc.returncode}:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        path = self.root / "cdc.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_service(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.admin.execute(
            "select pg_drop_replication_slot(slot_name) from pg_replication_slots "
            "where slot_name = %s and not active", (self.slot,))
        self.admin.execute(f"drop publication if exists {self.publication}")


def normalise(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Comparable values: JSON text parsed, Decimal kept, everything else as is."""
    out = []
    for row in rows:
        values = []
        for value in row:
            if isinstance(value, str) and value[:1] in ("{", "["):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass  # a text value that merely starts with a brace
            elif isinstance(value, float):
                value = Decimal(str(value))
            values.append(value)
        out.append(tuple(values))
    return out


