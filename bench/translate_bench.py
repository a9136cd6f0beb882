"""Golden pass rate per function family and translation cost per statement.

Run with `python bench/translate_bench.py` (called by `make bench`).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from pulse_local.translate.core import _translate_cached
from pulse_local.translate.errors import UntranslatableSQL
from pulse_local.translate.golden import load_cases, run_all

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "tests" / "unit" / "translate" / "golden"


def translation_cost_ms(sqls: list[str], repeat: int = 3) -> tuple[float, float]:
    """Median and p95 of uncached translation time per statement, in ms."""
    times: list[float] = []
    for _ in range(repeat):
        for sql in sqls:
            _translate_cached.cache_clear()
            start = time.perf_counter()
            try:
                _translate_cached(sql, False)
            except UntranslatableSQL:
                failed = True  # untranslatable cases still cost a parse
            else:
                failed = False
            times.append((time.perf_counter() - start) * 1000)
            del failed
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> int:
    """Print the golden pass rate by family and overall, then the translation cost."""
    report = run_all(GOLDEN_DIR)
    print(f"{'family':<22}{'passed':>8}{'total':>8}{'rate':>9}")
    for family, (ok, total) in report.by_family().items():
        print(f"{family:<22}{ok:>8}{total:>8}{ok / total:>9.1%}")
    ok = sum(r.passed for r in report.results)
    print(f"{'overall':<22}{ok:>8}{len(report.results):>8}{report.pass_rate:>9.1%}")
    median, p95 = translation_cost_ms([c.sql for c in load_cases(GOLDEN_DIR)])
    print(f"translation cost per statement: median {median:.2f} ms, p95 {p95:.2f} ms (uncached)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
