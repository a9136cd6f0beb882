"""`replay --pending` without a processor (unit: the local archive's files only; the apply is
proven in tests/integration/ingest/test_ingest_degraded.py against the stack, on gcp in
tests/integration/ingest/test_pending_gcs.py against the Cloud Storage emulator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse_local.backends import LocalDirArchive
from pulse_local.source.pending import PendingReport, pending_names


def test_pending_names_include_an_interrupted_replay(tmp_path: Path) -> None:
    archive = LocalDirArchive(tmp_path)
    assert pending_names(archive, "typeform/pending") == []
    day = tmp_path / "typeform" / "pending" / "dt=2026-12-07"
    day.mkdir(parents=True)
    for name in ("part-local.jsonl", "part-local.replaying-1-2", "notes.txt"):
        (day / name).write_text("{}\n")
    (tmp_path / "typeform" / "pending-applied" / "dt=2026-12-07").mkdir(parents=True)
    (tmp_path / "typeform" / "pending-applied" / "dt=2026-12-07" / "part-1.jsonl").write_text("")
    assert pending_names(archive, "typeform/pending") == [
        "typeform/pending/dt=2026-12-07/part-local.jsonl",
        "typeform/pending/dt=2026-12-07/part-local.replaying-1-2"]


def test_local_archive_reads_moves_writes_and_deletes(tmp_path: Path) -> None:
    archive = LocalDirArchive(tmp_path)
    archive.append("p", "2026-12-07", [{"a": 1}])
    [name] = archive.names("p")
    assert archive.read_text(name) == '{"a": 1}\n'
    archive.move(name, "p/dt=2026-12-07/taken")
    with pytest.raises(FileNotFoundError):
        archive.read_text(name)
    with pytest.raises(FileExistsError):  # a new object, never an overwrite
        archive.write("p/dt=2026-12-07/taken", "x")
    archive.write("q/new.jsonl", "x\n")
    archive.delete("p/dt=2026-12-07/taken")
    assert archive.names("p") == [] and archive.names("q") == ["q/new.jsonl"]


def test_report_summary() -> None:
    report = PendingReport(files=2, applied={"created": 3, "duplicate": 1}, rejected=1, left=2,
                           stopped="HTTP 202: database down")
    assert report.applied_total == 4
    assert report.summary() == ("4 applied (created 3, duplicate 1), 1 rejected, 2 left "
                                "pending, from 2 file(s); stopped: HTTP 202: database down")
