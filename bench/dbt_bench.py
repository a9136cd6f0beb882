"""dbt build of the Pulse project on DuckDB (target local): wall time and peak memory.

Sizes: the default data set (~2,000 responses) and 1,000,000 responses, generated with DuckDB
SQL in Datastream's raw shape (`pulse_local.warehouse.raw.generate_raw`). Each size runs in a
fresh subprocess (so peak RSS is that build's own) against a private state directory.
Targets: <= 15 s at the default size, <= 60 s at 1M. Figures, never pass/fail.

    python bench/dbt_bench.py                 # default + 1M
    python bench/dbt_bench.py 2000 200000     # chosen sizes
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (2_000, 1_000_000)
TARGETS_S = {2_000: 15.0, 1_000_000: 60.0}

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import duckdb
from pulse_local.config import Settings
from pulse_local.warehouse import run_dbt
from pulse_local.warehouse.raw import generate_raw

state, responses, work, warm = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "1"
settings = Settings(profile="local", state_dir=state)
settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
t = time.perf_counter()
con = duckdb.connect(str(settings.duckdb_path))
rows = generate_raw(con, responses)
con.close()
generate_s = time.perf_counter() - t

translate_s = None
try:  # a timing counter, if the translator exposes one
    from pulse_local.translate import core as _core
    _orig = _core._translate_cached
    _spent = [0.0]
    def _timed(sql, dbt_relations):
        t0 = time.perf_counter()
        try:
            return _orig(sql, dbt_relations)
        finally:
            _spent[0] += time.perf_counter() - t0
    _timed.cache_clear = _orig.cache_clear
    _core._translate_cached = _timed
except Exception:
    _spent = None

cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
t = time.perf_counter()
result = run_dbt(settings, ["build"], target_path=work, quiet=True, check=False)
build_s = time.perf_counter() - t
cpu_s = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
slowest = sorted(result.nodes, key=lambda n: -n.time)[:5]
warm_s = None
if warm:  # a second build: partial parsing warm, fact_response on its incremental path
    t = time.perf_counter()
    run_dbt(settings, ["build"], target_path=work, quiet=True, check=False)
    warm_s = time.perf_counter() - t
print(json.dumps({
    "responses": responses, "raw_rows": sum(rows.values()), "generate_s": generate_s,
    "build_s": build_s, "warm_s": warm_s, "cpu_s": cpu_s, "peak_mb": peak_mb, "success": result.success,
    "nodes": len(result.nodes), "failed": [n.name for n in result.failed],
    "translate_s": _spent[0] if _spent else None,
    "slowest": [(n.name, round(n.time, 2)) for n in slowest],
}))
"""


def measure(responses: int, timeout: float = 900.0, warm: bool = False) -> dict[str, object]:
    """Generate `responses` responses of raw data and `dbt build` them in a child process."""
    with tempfile.TemporaryDirectory(prefix="pulse-dbt-bench-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(Path(tmp) / "state"), str(responses), str(Path(tmp) / "work"),
             "1" if warm else "0"],
            check=False, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"responses": responses, "error": (proc.stderr or proc.stdout).strip().splitlines()[-3:]}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    # `python -m bench dbt` passes its own arguments through sys.argv: keep the numbers only
    sizes = [int(a.replace("_", "")) for a in args if a.replace("_", "").isdigit()] or list(DEFAULT_SIZES)
    print("dbt build = first build in a fresh target/ (full parse, full refresh)")
    print(f"{'responses':>10} {'raw rows':>10} {'generate':>9} {'dbt build':>10} {'peak RSS':>9} "
          f"{'CPU':>7} {'translate':>10} {'target':>7}  result")
    for n in sizes:
        started = time.perf_counter()
        try:
            r = measure(n, warm=n <= 100_000)
        except subprocess.TimeoutExpired:
            print(f"{n:>10,} timed out after {time.perf_counter() - started:.0f} s")
            continue
        if "error" in r:
            print(f"{n:>10,} failed: {' | '.join(r['error'])}")  # type: ignore[arg-type]
            continue
        target = TARGETS_S.get(n)
        share = (f"{r['translate_s']:.2f} s {100 * r['translate_s'] / r['build_s']:.0f}%"  # type: ignore[operator]
                 if r.get("translate_s") is not None else "n/a")
        verdict = "ok" if r["success"] else f"FAILED {r['failed']}"
        if target is not None:
            verdict += f", {'within' if r['build_s'] <= target else 'OVER'} {target:.0f} s"  # type: ignore[operator]
        print(f"{n:>10,} {r['raw_rows']:>10,} {r['generate_s']:>8.1f}s {r['build_s']:>9.1f}s "
              f"{r['peak_mb']:>7.0f}MB {r['cpu_s']:>6.1f}s {share:>10} {target or '-'!s:>7}  {verdict}")
        if r.get("warm_s") is not None:
            print(f"{'':>10} second build (partial parse warm, incremental fact): {r['warm_s']:.1f} s")
        print(f"{'':>10} slowest nodes: {', '.join(f'{a} {b}s' for a, b in r['slowest'])}")  # type: ignore[union-attr]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(1 dbt thread; {os.cpu_count()} CPUs, load average {load:.1f}: wall time grows with other "
          "load, CPU = user+system time of the build process; data in a temporary directory)")


if __name__ == "__main__":
    main()
