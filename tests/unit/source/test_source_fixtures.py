"""Unit tests (no sockets): fixture determinism, shape, speed; migration files."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from pulse_local.ingest.models import validate_payload
from pulse_local.source.fixtures import generate
from pulse_local.source.migrations import MigrationError, discover


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    generate(2, 42, tmp_path / "a")
    generate(2, 42, tmp_path / "b")
    generate(2, 43, tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_bytes_do_not_depend_on_the_processes(tmp_path: Path) -> None:
    one = generate(3, 7, tmp_path / "one", processes=1)
    three = generate(3, 7, tmp_path / "three", processes=3)  # two child processes
    assert one == three
    assert _digest(tmp_path / "one") == _digest(tmp_path / "three")
    assert len(list((tmp_path / "three" / "webhooks").glob("*.jsonl"))) == 3


def test_tenants_differ_from_each_other(tmp_path: Path) -> None:
    generate(2, 7, tmp_path)
    first, second = (tmp_path / "webhooks" / f"tenant-000{i}.jsonl" for i in (1, 2))
    assert first.read_bytes() != second.read_bytes()
    orgs = json.loads((tmp_path / "organizations.json").read_text())
    assert len({o["id"] for o in orgs}) == 2 and len({o["webhook_secret"] for o in orgs}) == 2


def test_shape_and_distributions(tmp_path: Path) -> None:
    counts = generate(2, 1, tmp_path)
    assert 1800 <= counts["responses"] <= 2200
    assert counts["duplicates"] > 0 and counts["revisions"] > 0 and counts["partial"] > 0
    assert counts["user_changes"] > 0
    assessments = json.loads((tmp_path / "assessments.json").read_text())
    assert any(q["reverse_keyed"] for a in assessments for q in a["questions"])
    lines = (tmp_path / "webhooks" / "tenant-0001.jsonl").read_text().splitlines()
    payloads = [validate_payload(json.loads(line)) for line in lines[:300]]
    days = {p.form_response.submitted_at.date() for p in payloads}
    assert len(days) > 7  # spread over weeks
    tokens = [p.form_response.token for p in (validate_payload(json.loads(x)) for x in lines)]
    assert len(set(tokens)) < len(tokens)  # re-deliveries and revisions share tokens


def test_generation_is_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    counts = generate(10, 3, tmp_path)
    rate = counts["responses"] / (time.perf_counter() - started)
    assert rate > 10_000, f"{rate:,.0f} responses/s"  # the bench reports the real figure


def test_migration_files_are_ordered_and_named() -> None:
    versions = [m.version for m in discover()]
    assert versions == sorted(versions) and versions[:3] == ["0001", "0002", "0003"]
    assert all("{{app_role}}" not in m.render("pulse_app") for m in discover())


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_init.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="does not match NNNN_name.sql"):
        discover(tmp_path)


def test_a_failed_child_leaves_no_half_written_data_set(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Fakes the child process (one that dies with exit code 3) to reach the error path."""
    import subprocess
    import sys

    from pulse_local.source import fixtures

    generate(2, 1, tmp_path)  # a previous, complete data set
    monkeypatch.setattr(fixtures, "_run_part", lambda *_: subprocess.Popen(
        [sys.executable, "-c", "raise SystemExit(3)"], stdout=subprocess.PIPE))
    with pytest.raises(fixtures.FixtureGenerationError, match="exited with code 3"):
        generate(4, 1, tmp_path, processes=2)
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob("*.jsonl"))


def test_the_file_of_webhook_secrets_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    (tmp_path / "organizations.json").write_text("[]\n")
    (tmp_path / "organizations.json").chmod(0o644)  # left by an older version
    generate(1, 3, tmp_path)
    assert (tmp_path / "organizations.json").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "users.json").stat().st_mode & 0o077 != 0  # only the secrets are private
