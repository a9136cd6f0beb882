"""dbt build of the Pulse project on DuckDB (target local): wall time, peak memory, translation.

Data sets:

* ``fixtures``: the default fixture set (``fixtures/default``, ~2,000 responses) through the real
  pipeline: a private PostgreSQL + Pub/Sub emulator + typeform-processor (free ports, temporary
  state directory), reference data seeded, webhooks replayed, changes landed by the CDC;
* ``N`` (e.g. 1000000): N responses generated with DuckDB SQL in Datastream's raw shape
  (`pulse_local.warehouse.raw.generate_raw`).

Each build runs in a new Python process (imports included; peak RSS is that build's own),
first in a fresh ``target/`` (full parse, full refresh), then, for sizes up to 100k, once more
in another new process with ``target/`` kept (partial parsing, incremental fact): the daily
case, as `etl_pipeline` runs it. Translation: the time `pulse_local.translate` spent (share of the build)
and the median cost per distinct statement. Targets: <= 15 s on the default fixtures,
<= 60 s at 1M. Figures, never pass/fail.

    python -m bench dbt                      # fixtures + 1M
    python bench/dbt_bench.py fixtures 2000  # chosen data sets
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pulse_local.errors import PulseError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SETS = ("fixtures", "1000000")
TARGETS_S = {"fixtures": 15.0, "1000000": 60.0}
FIXTURES = ROOT / "fixtures" / "default"

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import duckdb
from pulse_local.config import Settings
from pulse_local.translate import core
from pulse_local.warehouse import run_dbt
from pulse_local.warehouse.raw import generate_raw

state, responses, work = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
settings = Settings(profile="local", state_dir=state)
rows, generate_s = None, None
if responses:  # synthetic raw tables; else the raw layer the CDC landed in `state`
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    con = duckdb.connect(str(settings.duckdb_path))
    rows = sum(generate_raw(con, responses).values())
    con.close()
    generate_s = time.perf_counter() - t

# time every translation dbt asks for (cache hits included: they are part of the build)
cached = core._translate_cached
spent, first = [0.0], {}
def timed(sql, dbt_relations):
    t0 = time.perf_counter()
    try:
        return cached(sql, dbt_relations)
    finally:
        dt = time.perf_counter() - t0
        spent[0] += dt
        first.setdefault((sql, dbt_relations), dt)
timed.cache_clear = cached.cache_clear
core._translate_cached = timed

cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
t = time.perf_counter()
result = run_dbt(settings, ["build"], target_path=work, quiet=True, check=False)
build_s = time.perf_counter() - t
cpu_s = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
translate_s, per_statement = spent[0], sorted(first.values())
facts = duckdb.connect(str(settings.duckdb_path), read_only=True)
responses_built = facts.execute("select count(*) from dw.fact_response").fetchone()[0] if result.success else None
facts.close()
print(json.dumps({
    "responses": responses_built, "raw_rows": rows, "generate_s": generate_s,
    "build_s": build_s, "cpu_s": cpu_s, "peak_mb": peak_mb, "success": result.success,
    "nodes": len(result.nodes), "failed": [n.name for n in result.failed],
    "translate_s": translate_s, "statements": len(per_statement),
    "statement_ms": [round(s * 1000, 3) for s in per_statement],
    "slowest": [(n.name, round(n.time, 2)) for n in sorted(result.nodes, key=lambda n: -n.time)[:5]],
}))
"""


def _child(state: Path, responses: int, work: Path, timeout: float) -> dict[str, object]:
    """One `dbt build` in a new Python process; `responses` > 0 generates raw data first."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(state), str(responses), str(work)],
        check=False, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-3:]}
    return json.loads(lines[-1])


def land_fixtures(state_dir: Path) -> dict[str, object]:
    """The default fixture set through the real pipeline into `state_dir`'s raw layer:
    PostgreSQL, the Pub/Sub emulator and the processor on free ports, stopped afterwards."""
    from pulse_local.cdc import drain
    from pulse_local.source.replay import replay
    from pulse_local.source.seed import seed_reference_data
    from pulse_local.stack.native import NativeStack
    from pulse_local.stack.services import native_services
    from pulse_local.testing.plugin import make_test_settings

    settings = make_test_settings().model_copy(update={
        "state_dir": state_dir, "admin_database_url": None, "database_url": None})
    stack = NativeStack(settings, [s for s in native_services(settings)
                                   if s.name in ("postgres", "pubsub", "processor")])
    started = time.perf_counter()
    try:
        stack.up()
        drain(settings)  # the slot exists before the data: updates are captured as changes
        seed_reference_data(settings, FIXTURES)
        statuses = replay(settings, FIXTURES, 16, progress=False)
        report = drain(settings)
    finally:
        stack.down()
    return {"seconds": time.perf_counter() - started, "statuses": statuses,
            "changes": report.changes}


def measure(data_set: str, timeout: float = 900.0) -> dict[str, object]:
    """Build `data_set` ("fixtures" or a number of responses) in a child process."""
    tmp = Path(tempfile.mkdtemp(prefix="pulse-dbt-bench-"))
    tmp.chmod(0o711)  # PostgreSQL runs as `postgres` when we are root: it must traverse it
    try:
        prepared: dict[str, object] = {}
        responses = 0
        if data_set == "fixtures":
            prepared = land_fixtures(tmp / "state")
        else:
            responses = int(data_set.replace("_", ""))
        result = _child(tmp / "state", responses, tmp / "work", timeout)
        if "error" not in result and (responses or 0) <= 100_000:
            # the daily case: a new process, dbt's target/ kept (partial parsing), same data
            again = _child(tmp / "state", 0, tmp / "work", timeout)
            result["again"] = again
        return {**result, "prepared": prepared}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _print(data_set: str, r: dict[str, object]) -> None:
    target = TARGETS_S.get(data_set)
    verdict = "ok" if r["success"] else f"FAILED {r['failed']}"
    if target is not None:
        verdict += f", {'within' if r['build_s'] <= target else 'OVER'} {target:.0f} s"  # type: ignore[operator]
    label = "fixtures" if data_set == "fixtures" else f"{int(data_set):,}"
    prepared = r.get("prepared") or {}
    if prepared:
        source = (f"seed + replay {sum(prepared['statuses'].values()):,} webhooks + CDC "  # type: ignore[union-attr]
                  f"({prepared['changes']:,} changes) in {prepared['seconds']:.1f} s")
    else:
        source = f"generated {r['raw_rows']:,} raw rows in {r['generate_s']:.1f} s"
    print(f"{label:>10} {r['responses'] or 0:>10,} {r['build_s']:>9.1f}s {r['peak_mb']:>7.0f}MB "
          f"{r['cpu_s']:>6.1f}s {target or '-'!s:>7}  {verdict}")
    statements = r["statement_ms"] or [0.0]
    print(f"{'':>10} translation: {r['translate_s']:.2f} s = {100 * r['translate_s'] / r['build_s']:.0f}% "  # type: ignore[operator]
          f"of the build; {r['statements']} statements, median {statistics.median(statements):.1f} ms, "  # type: ignore[arg-type]
          f"max {max(statements):.1f} ms (first translation of each)")  # type: ignore[type-var]
    print(f"{'':>10} data: {source}")
    again = r.get("again") or {}
    if "build_s" in again:
        within = "within" if target is None or again["build_s"] <= target else "OVER"  # type: ignore[operator]
        print(f"{'':>10} next build, new process, target/ kept (partial parse, incremental fact): "
              f"{again['build_s']:.1f} s, peak {again['peak_mb']:.0f} MB, "
              f"{'ok' if again['success'] else 'FAILED'}{f', {within} {target:.0f} s' if target else ''}")
    elif again:
        print(f"{'':>10} next build failed: {' | '.join(again['error'])}")  # type: ignore[arg-type]
    print(f"{'':>10} slowest nodes: {', '.join(f'{a} {b}s' for a, b in r['slowest'])}")  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    # `python -m bench dbt` passes its own arguments: keep data set names and numbers only
    sets = [a for a in args if a == "fixtures" or a.replace("_", "").isdigit()] or list(DEFAULT_SETS)
    print("dbt build = first build in a fresh target/ (full parse, full refresh), own process")
    print(f"{'data set':>10} {'responses':>10} {'dbt build':>10} {'peak RSS':>9} {'CPU':>7} {'target':>7}  result")
    for data_set in sets:
        started = time.perf_counter()
        try:
            r = measure(data_set)
        except subprocess.TimeoutExpired:
            print(f"{data_set:>10} timed out after {time.perf_counter() - started:.0f} s")
            continue
        except PulseError as exc:  # e.g. a service of the fixture pipeline did not start
            print(f"{data_set:>10} could not be prepared: {str(exc).splitlines()[0]}")
            continue
        if "error" in r:
            print(f"{data_set:>10} failed: {' | '.join(r['error'])}")  # type: ignore[arg-type]
            continue
        _print(data_set, r)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(1 dbt thread; {os.cpu_count()} CPUs, load average {load:.1f}: wall time grows with other "
          "load, CPU = user+system time of the build process; data in a temporary directory)")


if __name__ == "__main__":
    main()
