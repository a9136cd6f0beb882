"""The project's deployments as declared in flows/deployments.yaml (read once, at import).

Below `orchestration` (which serves and registers them) and `gcp_jobs` (which builds the gcp
jobs' variables from the work pool's declared ones), so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulse_local.config import PROJECT_ROOT
from pulse_local.errors import ConfigError

FLOWS_DIR = PROJECT_ROOT / "flows"


DEPLOYMENTS_FILE = FLOWS_DIR / "deployments.yaml"


@dataclass(frozen=True)
class DeploymentSpec:
    """One flow's deployment: its schedule (cron, UTC) or None for on-demand only."""

    flow: str
    cron: str | None
    description: str


@dataclass(frozen=True)
class WorkPoolSpec:
    """The Prefect work pool the gcp deployments run on."""

    name: str
    type: str
    job_variables: dict[str, Any]


def _load_declarations(path: Path = DEPLOYMENTS_FILE) -> tuple[list[DeploymentSpec], WorkPoolSpec]:
    """Read flows/deployments.yaml; a malformed file is a `ConfigError` naming the problem."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
        specs = [DeploymentSpec(d["flow"], d.get("cron"), d["description"])
                 for d in data["deployments"]]
        pool = data["gcp_work_pool"]
        work_pool = WorkPoolSpec(pool["name"], pool["type"], dict(pool.get("job_variables") or {}))
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a valid deployments file ({type(exc).__name__}: {exc}); "
                          "see the comments at its top for the expected keys") from None
    for spec in specs:
        if not (FLOWS_DIR / f"{spec.flow}.py").is_file():
            raise ConfigError(f"{path}: deployment of unknown flow {spec.flow!r} (no "
                              f"flows/{spec.flow}.py)")
    return specs, work_pool


DEPLOYMENTS, GCP_WORK_POOL = _load_declarations()
