"""`check_stack`: real round trips through every service, as a Prefect flow (`pulse-local doctor`)."""

from __future__ import annotations

from prefect import flow, task

from pulse_local.config import load_settings
from pulse_local.doctor import CHECKS, CheckResult, _timed


@task(name="round-trip", task_run_name="{service}")
def round_trip(service: str) -> CheckResult:
    """One service's round trip (a task each, so the Prefect UI shows them separately)."""
    settings = load_settings()
    for name, operation, fn in CHECKS:
        if name == service:
            return _timed(name, operation, lambda check=fn: check(settings))
    raise ValueError(f"no check for {service}")


@flow(name="check_stack", log_prints=True)
def check_stack() -> list[CheckResult]:
    """Run every service's round trip; fail the flow run when any fails."""
    results = [round_trip(service) for service, _, _ in CHECKS]
    failed = [r for r in results if not r.ok]
    for r in results:
        print(f"{r.service:10} {'ok' if r.ok else 'FAILED':6} {r.seconds * 1000:8.1f} ms  {r.detail}")
    if failed:
        raise RuntimeError("; ".join(f"{r.service}: {r.detail}" for r in failed))
    return results
