"""The offline gcp rehearsal (`make rehearse`): wall time to start its stack and of its stages
after the stack is up, each stage's time, in an isolated state directory on free ports.
Target from issue 19: the stages after the stack is up <= 3 min. Figures, never pass/fail."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pulse_local.stack.process import free_port

#: Every port the rehearsal stack listens on, by its setting.
PORT_SETTINGS = ("POSTGRES", "PUBSUB", "BIGTABLE", "PREFECT", "PROCESSOR", "SERVING", "BIGQUERY",
                 "BIGQUERY_GRPC", "STORAGE")
TARGET_SECONDS = 180.0


def _environment(state_dir: Path) -> dict[str, str]:
    """The caller's environment with the rehearsal isolated: own state directory, free ports,
    no inherited emulator or API addresses."""
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_EMULATOR_HOST") and k != "PREFECT_API_URL"}
    env["PULSE_STATE_DIR"] = str(state_dir)
    env.update({f"PULSE_{name}_PORT": str(free_port()) for name in PORT_SETTINGS})
    return env


def main() -> None:
    """Run `pulse-local rehearse` once and print its figures."""
    state_dir = Path(tempfile.mkdtemp(prefix="pulse-bench-rehearse-"))
    state_dir.chmod(0o711)  # PostgreSQL runs as `postgres` when we are root
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pulse_local.cli", "rehearse"],
                              check=False, env=_environment(state_dir), capture_output=True,
                              text=True,
                              timeout=900)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    total = time.perf_counter() - started
    text = " ".join(done.stdout.split())
    found = re.search(r"rehearsal ok in ([\d.]+)s after the stack was up \(([\d.]+)s to start",
                      text)
    if done.returncode != 0 or found is None:
        print(f"rehearsal FAILED (exit {done.returncode}) after {total:.1f} s; end of its output:")
        print("\n".join((done.stdout + done.stderr).splitlines()[-25:]))
        return
    stages, stack = float(found.group(1)), float(found.group(2))
    print(f"rehearsal stages after the stack is up  {stages:6.1f} s  (target <= "
          f"{TARGET_SECONDS:.0f} s, ratio {stages / TARGET_SECONDS:.2f})")
    print(f"rehearsal stack start                   {stack:6.1f} s")
    print(f"whole command (start, stages, down)     {total:6.1f} s")
    for line in done.stdout.splitlines():
        if line.startswith("│") and ("ok" in line or "FAILED" in line):
            print("  " + line.strip())


if __name__ == "__main__":
    main()
