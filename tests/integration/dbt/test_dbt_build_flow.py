"""The `dbt_build` Prefect flow against the session stack's real Prefect API: one task run per
dbt node, results kept per run, failing nodes named (and not retried), a locked warehouse file
retried with back-off."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from cdc_pipeline import Landed

from pulse_local.orchestration import load_flow
from pulse_local.warehouse import DbtError

pytestmark = pytest.mark.integration

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _task_runs(client: Any, flow_run_id: Any, expected: int, timeout: float = 30.0) -> dict[str, Any]:
    """Task runs of a flow run by name, once `expected` of them reached a final state (task
    states reach the API through Prefect's event pipeline, shortly after the flow returns)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    while True:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200)
        done = {r.name: r for r in runs if r.state and r.state.type.value in TERMINAL}
        if len(done) >= expected or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


def test_flow_records_every_node_of_the_real_project(landed: Landed, prefect_client: Any) -> None:
    dbt_build = load_flow("dbt_build")
    started = time.perf_counter()
    state = dbt_build(return_state=True)
    wall = time.perf_counter() - started
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["success"] and summary["models"] == 14
    assert summary["tests_failed"] == 0 and summary["tests_passed"] == summary["tests"] >= 25
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == landed.settings.state_dir / "dbt" / "runs"
    results = json.loads((run_dir / "run_results.json").read_text())
    assert len(results["results"]) == summary["nodes"]
    assert {r["status"] for r in results["results"]} <= {"success", "pass"}
    # the second build of the session: fact_response took its incremental path
    fact = next(r for r in results["results"] if r["unique_id"] == "model.pulse.fact_response")
    assert "_changed_at >" in fact["compiled_code"]

    tasks = _task_runs(prefect_client, state.state_details.flow_run_id, summary["nodes"] + 1)
    node_tasks = {name for name in tasks if name.startswith("dbt:")}
    assert len(node_tasks) == summary["nodes"]
    assert {"dbt:model:fact_response", "dbt:model:dim_user_scd",
            "dbt:test:assert_one_current_row_per_user"} <= node_tasks
    assert any(name.startswith("dbt:unit_test:") for name in node_tasks)
    assert all(tasks[n].state.is_completed() for n in node_tasks)
    print(f"\ndbt_build flow {wall:.1f} s, of which dbt {summary['seconds']:.1f} s "
          "(the rest: recording each node as a task run)")


TINY_PROJECT = {
    "dbt_project.yml": """
        name: tiny
        version: "1.0.0"
        config-version: 2
        profile: tiny
        models:
          tiny:
            +materialized: table
    """,
    "profiles.yml": """
        tiny:
          target: local
          outputs:
            local:
              type: duckdb
              path: "{{ env_var('TINY_DUCKDB_PATH') }}"
              threads: 1
              plugins:
                - module: pulse_local.translate.dbt_plugin
    """,
    "models/numbers.sql": """
        select n, date_trunc(date '2024-02-15', month) as month_start
        from unnest([1, 2, 3]) as n
    """,
    "models/schema.yml": """
        version: 2
        models:
          - name: numbers
            columns:
              - name: n
                data_tests: [not_null, unique]
    """,
}


@pytest.fixture()
def tiny_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pulse_stack: Any) -> Path:
    """A two-test dbt project with its own DuckDB file and state directory (Prefect API: the
    session's)."""
    root = tmp_path / "tiny"
    for name, text in TINY_PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.setenv("TINY_DUCKDB_PATH", str(tmp_path / "tiny.duckdb"))
    monkeypatch.setenv("PULSE_STATE_DIR", str(tmp_path / "state"))
    return root


def test_a_failing_test_fails_the_flow_names_it_and_is_not_retried(
        tiny_project: Path, prefect_client: Any) -> None:
    (tiny_project / "tests").mkdir()
    (tiny_project / "tests" / "assert_small_numbers.sql").write_text(
        "-- n must stay below 3\nselect n from {{ ref('numbers') }} where n >= 3\n")
    dbt_build = load_flow("dbt_build")
    state = dbt_build(project_dir=str(tiny_project), return_state=True)
    assert state.is_failed()
    with pytest.raises(DbtError) as failure:
        state.result()
    message = str(failure.value)
    assert message.startswith("dbt build failed (target local): 1 of 4 nodes failed")
    assert "test assert_small_numbers (fail): Got 1 result, configured to fail if != 0" in message
    assert "Traceback" not in message and message.count("\n") <= 4
    run_dir = Path(message.rsplit("run results: ", 1)[1].split("/run_results.json")[0])
    statuses = {r["unique_id"].split(".")[-1]: r["status"]
                for r in json.loads((run_dir / "run_results.json").read_text())["results"]}
    assert statuses["assert_small_numbers"] == "fail" and statuses["numbers"] == "success"
    assert json.loads((run_dir / "summary.json").read_text())["tests_failed"] == 1

    tasks = _task_runs(prefect_client, state.state_details.flow_run_id, 5)
    assert tasks["dbt:test:assert_small_numbers"].state.is_failed()
    assert "Got 1 result" in (tasks["dbt:test:assert_small_numbers"].state.message or "")
    assert tasks["dbt:model:numbers"].state.is_completed()
    invoke = tasks["dbt build"]
    assert invoke.state.is_completed() and invoke.run_count == 1   # a failing test: no retry


def test_a_locked_warehouse_file_is_retried_until_it_is_free(
        tiny_project: Path, prefect_client: Any, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                                "print('locked', flush=True); time.sleep(float(sys.argv[2]))"),
         str(tmp_path / "tiny.duckdb"), "6"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        dbt_build = load_flow("dbt_build")
        state = dbt_build(project_dir=str(tiny_project), return_state=True)
    finally:
        holder.kill()
        holder.wait()
    assert state.is_completed(), state.message
    assert state.result()["tests_passed"] == 2
    invoke = _task_runs(prefect_client, state.state_details.flow_run_id, 4)["dbt build"]
    assert invoke.run_count >= 2   # failed on the lock, retried with back-off, then ran
