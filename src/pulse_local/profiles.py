"""The profiles, each declared once: what a profile is made of, in one registry entry.

`PROFILES` maps each `Profile` to a `ProfileSpec` naming its backends (the implementation of
each capability `pulse_local.backends.for_profile` builds), where its Google clients go by
default, the environment its processes get, its dbt target and adapter, how its raw tables
are named, and where its deployments run. The config validator, endpoint resolution, the
backend factory's naming, resource declarations and `pulse-local deployments list` read this
table; `tests/unit/test_wiring.py` checks dbt/profiles.yml, dbt_project.yml, the factory and
`pulse-local dbt check` against it. A leaf module: it imports nothing of the project.

Adding a profile: an entry here and its value in `Profile`; the wiring test then names each
other place that lacks it (a factory branch, a dbt output, a dbt check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

#: The profiles (``PULSE_PROFILE``).
Profile = Literal["local", "gcp"]


@dataclass(frozen=True)
class BackendChoice:
    """The implementation class of each capability of `pulse_local.capabilities.Backends`."""

    archive: str
    bus: str
    warehouse: str
    raw_events: str
    change_streams: str


@dataclass(frozen=True)
class ProfileSpec:
    """Everything that differs between profiles, by name."""

    name: Profile
    #: Where it runs, for messages (``PULSE_PROFILE=local (laptop/CI)``).
    summary: str
    backends: BackendChoice
    #: Google's clients go to the stack's emulators unless an emulator variable says otherwise
    #: (True), or to Google itself (False).
    stack_emulators: bool
    #: Processes started for this profile get the stack's addresses (`endpoints.service_env`)
    #: as their client environment; False: nothing (Application Default Credentials).
    stack_client_environment: bool
    #: The output of dbt/profiles.yml this profile runs (dbt's target is ``PULSE_PROFILE``).
    dbt_target: str
    #: That output's ``type`` (the dbt adapter; the key of dbt_project.yml's
    #: ``raw_table_prefixes``).
    dbt_adapter: str
    #: Raw tables are ``raw.<prefix><table>`` (Datastream's ``<schema>_<table>``).
    raw_table_prefix: str
    #: Whether the stack's run files (consumer status, dbt's run_results.json) are on the
    #: machine that runs the flows.
    run_files_here: bool
    #: Deployments run on the Prefect work pool of flows/deployments.yaml (else the stack's
    #: `deployments` service serves them).
    deploys_to_work_pool: bool


PROFILES: dict[str, ProfileSpec] = {spec.name: spec for spec in (
    ProfileSpec(
        name="local",
        summary="laptop/CI",
        backends=BackendChoice(archive="LocalDirArchive", bus="PubSubBus",
                               warehouse="DuckDBWarehouse", raw_events="LocalParquetSink",
                               change_streams="LocalCdcService"),
        stack_emulators=True,
        stack_client_environment=True,
        dbt_target="local",
        dbt_adapter="duckdb",
        raw_table_prefix="public_",
        run_files_here=True,
        deploys_to_work_pool=False,
    ),
    ProfileSpec(
        name="gcp",
        summary="",
        backends=BackendChoice(archive="GcsArchive", bus="PubSubBus",
                               warehouse="BigQueryWarehouse", raw_events="NullRawEventSink",
                               change_streams="DatastreamStreams"),
        stack_emulators=False,
        stack_client_environment=False,
        dbt_target="gcp",
        dbt_adapter="bigquery",
        raw_table_prefix="public_",
        run_files_here=False,
        deploys_to_work_pool=True,
    ),
)}

#: Every profile, in declaration order.
ALL_PROFILES: tuple[Profile, ...] = get_args(Profile)


def profile_spec(name: str) -> ProfileSpec:
    """The registry entry of profile ``name``; `KeyError` names the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; profiles: {', '.join(PROFILES)}") from None


def profile_choices() -> str:
    """``PULSE_PROFILE=local (laptop/CI) or PULSE_PROFILE=gcp``: what to set, for messages."""
    return " or ".join(f"PULSE_PROFILE={s.name}" + (f" ({s.summary})" if s.summary else "")
                       for s in PROFILES.values())
