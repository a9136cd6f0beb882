"""`end_child_group` on real child processes (a shell and the sleeps it started)."""

from __future__ import annotations

import os
import subprocess

import psutil

from pulse_local.stack.process import end_child_group


def test_the_child_and_every_process_of_its_group_are_gone() -> None:
    # the shell ignores SIGTERM, so the SIGKILL path runs too; its background sleep is a
    # grandchild that stays in the group (as a browser's helpers do)
    proc = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 300 & echo started; wait"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    group = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == proc.pid]
    assert len(group) >= 2
    end_child_group(proc, timeout=0.5)
    assert proc.returncode is not None
    assert not [p for p in group if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
