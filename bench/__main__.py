"""Run every benchmark in turn (`make bench`), or the ones named: `python -m bench stack`."""

from __future__ import annotations

import importlib
import sys
import time

BENCHES = ["stack", "translate", "ingest"]


def main(argv: list[str]) -> int:
    names = argv or BENCHES
    for name in names:
        print(f"\n=== bench: {name} ===", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}_bench").main()
        print(f"(bench {name} took {time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
