"""`replay --pending` without a processor (unit: files only; the apply itself is proven in
tests/integration/ingest/test_ingest_degraded.py against the stack)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse_local.config import Settings
from pulse_local.errors import NotAvailableOnProfile
from pulse_local.source.pending import PendingReport, pending_files, replay_pending


def test_gcp_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(NotAvailableOnProfile, match="typeform/pending"):
        replay_pending(Settings(profile="gcp", state_dir=tmp_path))


def test_pending_files_include_an_interrupted_replay(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert pending_files(settings) == []
    day = settings.raw_bucket_dir / "typeform" / "pending" / "dt=2026-12-07"
    day.mkdir(parents=True)
    for name in ("part-local.jsonl", "part-local.replaying-1-2", "notes.txt"):
        (day / name).write_text("{}\n")
    assert [p.name for p in pending_files(settings)] == ["part-local.jsonl",
                                                         "part-local.replaying-1-2"]


def test_report_summary() -> None:
    report = PendingReport(files=2, applied={"created": 3, "duplicate": 1}, rejected=1, left=2,
                           stopped="HTTP 202: database down")
    assert report.applied_total == 4
    assert report.summary() == ("4 applied (created 3, duplicate 1), 1 rejected, 2 left "
                                "pending, from 2 file(s); stopped: HTTP 202: database down")
