"""`dbt_build`: the warehouse's models and tests (one `dbt build`), each dbt node a Prefect task.

dbt runs once, in-process (`pulse_local.warehouse.run_dbt`, target = ``PULSE_PROFILE``), so the
build costs what dbt costs. Then every node it ran becomes a task run named
``dbt:<resource_type>:<name>`` (``dbt:model:fact_response``, ``dbt:test:unique_...``) whose state
is the node's: Completed, Failed (with dbt's message) or Completed named "Skipped". The run's
``run_results.json`` and a summary are kept in ``<state_dir>/dbt/runs/<UTC start>-build/``.

Retries: a failing model or test is never retried (it fails the same way again); only a
warehouse file locked by another process (DuckDB allows one writer) is retried, with back-off.

From another flow (e.g. `etl_pipeline`)::

    from flows.dbt_build import dbt_build
    summary = dbt_build()   # raises DbtError naming the failing nodes; else the summary dict
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from pulse_local.config import load_settings

#: Back-off (seconds) between attempts while another process holds the DuckDB file.
LOCK_RETRY_DELAYS = [2, 5, 15, 30]


def _only_when_warehouse_locked(task: Any, task_run: Any, state: State) -> bool:
    """Retry condition: the warehouse file was locked; anything else fails at once."""
    from pulse_local.warehouse import WarehouseLocked

    return isinstance(state.data, WarehouseLocked)


@task(name="dbt-invoke", task_run_name="dbt {command}", cache_policy=NO_CACHE,
      retries=len(LOCK_RETRY_DELAYS), retry_delay_seconds=LOCK_RETRY_DELAYS,
      retry_jitter_factor=0.2, retry_condition_fn=_only_when_warehouse_locked)
def invoke(command: str, args: list[str], project_dir: str | None) -> dict[str, Any]:
    """One dbt invocation; its results are kept on disk whether it passed or not."""
    from pathlib import Path

    from pulse_local.warehouse import keep_run, run_dbt, summarize

    settings = load_settings()
    result = run_dbt(settings, [command, *args], check=False, quiet=True,
                     project_dir=Path(project_dir) if project_dir else None)
    run_dir = keep_run(settings, result)
    nodes = [{"name": n.name, "resource_type": n.resource_type, "status": n.status,
              "seconds": round(n.time, 3), "ok": n.ok, "message": n.message}
             for n in result.nodes]
    return {"summary": {**summarize(result), "run_dir": str(run_dir)}, "nodes": nodes}


@task(name="dbt-node", task_run_name="dbt:{resource_type}:{name}", cache_policy=NO_CACHE)
def node_result(resource_type: str, name: str, status: str, seconds: float,
                message: str | None) -> State:
    """A node of the build, as dbt reported it (dbt already ran it: this only records it)."""
    detail = f"{status} in {seconds:.2f} s" + (f": {message}" if message else "")
    if status in ("error", "fail", "runtime error"):
        return Failed(message=detail)
    if status == "skipped":
        return Completed(name="Skipped", message=detail)
    return Completed(message=detail, data={"status": status, "seconds": seconds})


def _first_lines(text: str | None, n: int = 3) -> str | None:
    if not text:
        return None
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[:n]) + (" | ..." if len(lines) > n else "")


@flow(name="dbt_build", log_prints=True)
def dbt_build(select: str | None = None, exclude: str | None = None, full_refresh: bool = False,
              command: str = "build", project_dir: str | None = None) -> dict[str, Any]:
    """Run dbt (`command`: build, test or run) on the profile's warehouse; each node becomes a
    task run. Returns the summary (models, tests_passed, tests_failed, seconds, run_dir, ...);
    raises `DbtError` naming each failing node with the first lines of its message."""
    from pulse_local.warehouse import DbtError

    if command not in ("build", "test", "run"):
        raise ValueError(f"command must be build, test or run, not {command!r}")
    args = (["--select", select] if select else []) + (["--exclude", exclude] if exclude else [])
    args += ["--full-refresh"] if full_refresh and command != "test" else []
    outcome = invoke(command, args, project_dir)
    summary, nodes = outcome["summary"], outcome["nodes"]
    logger = get_run_logger()
    # one task run per node, recorded concurrently: the UI shows each node, the build does
    # not wait for ~100 sequential API round trips
    futures = node_result.map(
        [n["resource_type"] for n in nodes], [n["name"] for n in nodes],
        [n["status"] for n in nodes], [n["seconds"] for n in nodes],
        [_first_lines(n["message"]) if not n["ok"] or n["status"] == "skipped" else None
         for n in nodes])
    futures.wait()
    print(f"dbt {summary['command']} (target {summary['target']}): {summary['models']} models, "
          f"{summary['tests_passed']} tests passed, {summary['tests_failed']} failed, "
          f"{summary['skipped']} skipped in {summary['seconds']:.1f} s; results in {summary['run_dir']}")
    failed = [n for n in nodes if not n["ok"]]
    for n in failed:
        logger.error("dbt %s %s %s: %s", n["resource_type"], n["name"], n["status"],
                     _first_lines(n["message"]))
    if failed or not summary["success"]:
        lines = [(f"dbt {summary['command']} failed (target {summary['target']}): "
                  f"{len(failed)} of {summary['nodes']} nodes failed")]
        lines += [f"  - {n['resource_type']} {n['name']} ({n['status']}): {_first_lines(n['message'])}"
                  for n in failed[:20]]
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more")
        if summary["error"]:
            lines.append(f"  dbt: {summary['error']}")
        lines.append(f"  run results: {summary['run_dir']}/run_results.json")
        raise DbtError("\n".join(lines))
    return summary
