"""Run every benchmark in turn (`make bench`), or the ones named: `python -m bench stack`.

Arguments that are not bench names go to the named benches: `python -m bench dbt 2000`."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

BENCHES = ["stack", "snapshot", "translate", "ingest", "cdc", "streaming", "serving", "dbt", "pipeline",
           "rehearse"]


def main(argv: list[str]) -> int:
    known = set(BENCHES) | {p.stem.removesuffix("_bench")
                            for p in Path(__file__).parent.glob("*_bench.py")}
    names = [a for a in argv if a in known] or BENCHES
    extra = [a for a in argv if a not in known]
    for name in names:
        print(f"\n=== bench: {name} ===", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}_bench")
        # each bench reads its own options from sys.argv (argparse) or takes none
        sys.argv = [f"bench/{name}_bench.py", *extra]
        module.main()
        print(f"(bench {name} took {time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
