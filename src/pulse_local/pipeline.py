"""`pulse-local run`: the pipeline once, stage by stage, with a summary table.

Stages are added as the pipeline's parts land; each is a function `(settings) -> str` that
raises on failure. A failing stage stops the run and the exit code is non-zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from pulse_local.backends import use_profile
from pulse_local.config import Settings


@dataclass
class StageResult:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class RunSummary:
    stages: list[StageResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stages)


def stage_check_stack(settings: Settings) -> str:
    """Round trips through every service as the `check_stack` Prefect flow."""
    from pulse_local.orchestration import load_flow

    results = load_flow("check_stack")()
    return ", ".join(f"{r.service} {r.seconds * 1000:.0f} ms" for r in results)


def stage_replay_fixtures(settings: Settings) -> str:
    """Reference data into Postgres, then every fixture webhook through the processor."""
    from pulse_local.orchestration import load_flow

    outcome = load_flow("replay_fixtures")()
    return f"{outcome['accepted']} webhooks accepted"


STAGES: list[tuple[str, Callable[[Settings], str]]] = [
    ("check_stack", stage_check_stack),
    ("replay_fixtures", stage_replay_fixtures),
]


def run_pipeline(settings: Settings, console: Console) -> RunSummary:
    """Run every stage in order; stop at the first failure; print a summary table."""
    use_profile(settings)
    summary = RunSummary()
    for name, stage in STAGES:
        started = time.perf_counter()
        try:
            detail = stage(settings)
            summary.stages.append(StageResult(name, True, time.perf_counter() - started, detail))
        except Exception as exc:  # the stage's cause goes into the summary, not a traceback
            summary.stages.append(
                StageResult(name, False, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
            )
            break
    table = Table("stage", "result", "seconds", "detail", title="pulse-local run")
    for s in summary.stages:
        table.add_row(s.name, "[green]ok[/]" if s.ok else "[red]FAILED[/]", f"{s.seconds:.1f}", s.detail)
    console.print(table)
    return summary
