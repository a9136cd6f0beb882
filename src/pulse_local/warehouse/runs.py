"""dbt runs kept on disk: each invocation's ``run_results.json`` and a summary, per run.

::

    result = run_dbt(settings, ["build"], check=False)
    run_dir = keep_run(settings, result)     # <state_dir>/dbt/runs/20261122T073605.123456Z-build/
    summarize(result)                        # {"models": 14, "tests_passed": 87, ...}
    latest_run(settings)                     # the newest run directory, or None

A run directory holds ``run_results.json`` (dbt's artifact, written from the invocation's own
result, so it is never a stale file of an earlier run) and ``summary.json`` (`summarize`, plus
the failing nodes' first message lines). The newest `RUNS_KEPT` runs are kept.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

from pulse_local.config import Settings
from pulse_local.warehouse.dbt import DbtResult, _first_lines, dbt_work_dir

#: Run directories kept per state directory (older ones are deleted by `keep_run`).
RUNS_KEPT = 100

_TEST_TYPES = ("test", "unit_test")


def runs_dir(settings: Settings) -> Path:
    """``<state_dir>/dbt/runs``: one sub-directory per kept dbt run, named by its UTC start."""
    return dbt_work_dir(settings) / "runs"


def summarize(result: DbtResult) -> dict[str, Any]:
    """Counts of a dbt invocation: what the flow returns and what ``summary.json`` holds."""
    tests = [n for n in result.nodes if n.resource_type in _TEST_TYPES]
    return {
        "command": result.command,
        "target": result.target,
        "success": result.success,
        "seconds": round(result.seconds, 2),
        "nodes": len(result.nodes),
        "models": result.count("model"),
        "models_failed": sum(1 for n in result.nodes if n.resource_type == "model" and not n.ok),
        "tests": len(tests),
        "tests_passed": sum(1 for n in tests if n.status == "pass"),
        "tests_failed": sum(1 for n in tests if not n.ok),
        "tests_warned": sum(1 for n in tests if n.status == "warn"),
        "skipped": result.count(status="skipped"),
        "failed": [
            {"name": n.name, "resource_type": n.resource_type, "status": n.status,
             "message": _first_lines(n.message or "", 3)}
            for n in result.failed
        ],
        "error": _first_lines(result.error, 3) if result.error else None,
    }


def keep_run(settings: Settings, result: DbtResult, *, started: dt.datetime | None = None) -> Path:
    """Write `result`'s ``run_results.json`` and ``summary.json`` into a new run directory
    under `runs_dir`; delete the oldest runs beyond `RUNS_KEPT`. Returns the directory."""
    began = started or (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=result.seconds))
    root = runs_dir(settings)
    name = f"{began.astimezone(dt.UTC):%Y%m%dT%H%M%S.%fZ}-{result.command.replace(' ', '-')}"
    run_dir = root / name
    run_dir.mkdir(parents=True, exist_ok=False)
    write = getattr(result.raw, "write", None)
    if callable(write):  # dbt's own artifact writer (RunExecutionResult.write)
        write(str(run_dir / "run_results.json"))
    (run_dir / "summary.json").write_text(json.dumps(summarize(result), indent=2) + "\n")
    for old in sorted(p for p in root.iterdir() if p.is_dir())[:-RUNS_KEPT]:
        shutil.rmtree(old)
    return run_dir


def latest_run(settings: Settings) -> Path | None:
    """The newest kept run directory (None when no run was kept yet)."""
    root = runs_dir(settings)
    if not root.is_dir():
        return None
    runs = sorted(p for p in root.iterdir() if p.is_dir())
    return runs[-1] if runs else None
