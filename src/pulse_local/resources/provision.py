"""Provision every declared resource for a profile: the entry point of ``pulse-local``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pulse_local.config import Profile, Settings
from pulse_local.resources.bigtable import apply_bigtable, plan_bigtable
from pulse_local.resources.clients import (
    bigtable_admin_client,
    bigtable_endpoint,
    close_bigtable_client,
    close_pubsub_clients,
    pubsub_clients,
    pubsub_endpoint,
)
from pulse_local.resources.gcp import apply_gcp, gcp_clients, plan_gcp
from pulse_local.resources.loader import load_bigtable, load_pubsub
from pulse_local.resources.pubsub import apply_pubsub, plan_pubsub
from pulse_local.resources.report import ApplyReport


def _describe(endpoint: str | None) -> str:
    return f"emulator {endpoint}" if endpoint else "GCP"


def provision(
    settings: Settings,
    profile: Profile | None = None,
    *,
    dry_run: bool = False,
    pubsub_file: Path | None = None,
    bigtable_file: Path | None = None,
    echo: Callable[[str], None] = print,
) -> list[ApplyReport]:
    """Apply the GCP prerequisites (gcp profile: datasets, the BigQuery subscription's table and
    its writer, the raw bucket; `pulse_local.resources.gcp`), then the Pub/Sub and the Bigtable
    declarations; returns one report per service.

    ``profile`` defaults to ``settings.profile``; it selects the declarations (their
    ``profiles:``) and, when no emulator variable is set, the endpoint (local -> the stack's
    emulators on ``settings.host``, gcp -> Google). With ``dry_run`` nothing is called: the
    plan is printed through ``echo`` and returned as reports whose actions are ``planned``.
    Both files are validated before any API call.
    """
    profile = profile or settings.profile
    pubsub_decl = load_pubsub(pubsub_file)
    bigtable_decl = load_bigtable(bigtable_file)
    ps_endpoint = pubsub_endpoint(settings, profile)
    bt_endpoint = bigtable_endpoint(settings, profile)

    if dry_run:
        reports = [
            *([plan_gcp(settings, pubsub_decl)] if profile == "gcp" else []),
            plan_pubsub(pubsub_decl, settings.project, profile),
            plan_bigtable(bigtable_decl, settings.project, settings.bigtable_instance),
        ]
        echo(
            f"dry run (profile {profile}): would apply Pub/Sub on {_describe(ps_endpoint)} "
            f"and Bigtable on {_describe(bt_endpoint)}; nothing was called"
        )
        for report in reports:
            echo(report.summary())
        return reports

    prerequisites = []
    if profile == "gcp":  # the subscription's table must exist before the subscription
        prerequisites.append(apply_gcp(settings, pubsub_decl, gcp_clients(settings)))
    publisher, subscriber = pubsub_clients(ps_endpoint)
    try:
        pubsub_report = apply_pubsub(pubsub_decl, publisher, subscriber, settings.project, profile)
    finally:
        close_pubsub_clients(publisher, subscriber)

    admin = bigtable_admin_client(settings.project, bt_endpoint)
    try:
        bigtable_report = apply_bigtable(bigtable_decl, admin, settings.bigtable_instance)
    finally:
        close_bigtable_client(admin)
    return [*prerequisites, pubsub_report, bigtable_report]
