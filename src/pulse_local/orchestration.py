"""The project's Prefect flows (thin modules in `flows/`) and their deployments.

Deployments are defined once, here, for both profiles: ``<flow>-<profile>``. Locally the
`deployments` service of the stack serves them (a process running `prefect.serve`), so they
appear in the Prefect UI after `make up` and run from it.
"""

from __future__ import annotations

import importlib
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from pulse_local.config import PROJECT_ROOT, Settings
from pulse_local.errors import PulseError

FLOWS_DIR = PROJECT_ROOT / "flows"


@dataclass(frozen=True)
class DeploymentSpec:
    """One flow's deployment: its schedule (cron, UTC) or None for on-demand only."""

    flow: str
    cron: str | None
    description: str


DEPLOYMENTS: list[DeploymentSpec] = [
    DeploymentSpec("check_stack", None, "Round trips through every service of the stack."),
    DeploymentSpec("replay_fixtures", None, "Seed fixture reference data and replay its webhooks."),
]


def deployment_name(flow: str, profile: str) -> str:
    return f"{flow}-{profile}"


def load_flow(name: str) -> Any:
    """Import `flows/<name>.py` and return its flow object of the same name."""
    if not (FLOWS_DIR / f"{name}.py").is_file():
        raise PulseError(f"no flow {name!r} in {FLOWS_DIR}: run pulse-local from its repository")
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    module = importlib.import_module(f"flows.{name}")
    return getattr(module, name)


def registered_deployments(api_url: str, timeout: float = 2.0) -> set[str]:
    """Names (``flow/deployment``) of the deployments the Prefect API knows."""
    response = httpx.post(f"{api_url}/deployments/filter", json={"limit": 200}, timeout=timeout)
    response.raise_for_status()
    flows = httpx.post(f"{api_url}/flows/filter", json={"limit": 200}, timeout=timeout).json()
    flow_names = {f["id"]: f["name"] for f in flows}
    return {f"{flow_names.get(d['flow_id'], '?')}/{d['name']}" for d in response.json()}


def deployments_ready(settings: Settings, timeout: float = 2.0) -> None:
    """Probe: every deployment of this profile is registered (raises otherwise)."""
    from pulse_local.stack.services import prefect_api_url

    have = registered_deployments(prefect_api_url(settings), timeout)
    want = {f"{d.flow}/{deployment_name(d.flow, settings.profile)}" for d in DEPLOYMENTS}
    missing = want - have
    if missing:
        raise PulseError(f"deployments not registered yet: {', '.join(sorted(missing))}")


def serve_deployments(settings: Settings, api_wait: float = 120.0) -> None:
    """Register this profile's deployments and run their flows when triggered (blocks)."""
    from prefect import serve

    from pulse_local.stack.services import prefect_api_url

    deadline = time.monotonic() + api_wait
    while True:  # the stack starts us beside Prefect, not after it: wait for its API
        try:
            if httpx.get(f"{prefect_api_url(settings)}/health", timeout=2).json() is True:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise PulseError(f"Prefect API at {prefect_api_url(settings)} did not answer")
        time.sleep(0.2)
    deployments = [
        load_flow(d.flow).to_deployment(
            name=deployment_name(d.flow, settings.profile),
            cron=d.cron,
            description=d.description,
            tags=[settings.profile],
        )
        for d in DEPLOYMENTS
    ]
    serve(*deployments, print_starting_message=False)


if __name__ == "__main__":
    from pulse_local.config import load_settings

    serve_deployments(load_settings())
