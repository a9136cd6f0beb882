"""Declarative Pub/Sub and Bigtable resources, applied identically to emulators and GCP.

The declarations live in ``emulators/pubsub/resources.yaml`` and
``emulators/bigtable/resources.yaml``. Typical use::

    from pulse_local.config import load_settings
    from pulse_local.resources import provision

    for report in provision(load_settings()):
        print(report.summary())

Importing this package is cheap: Google clients are imported only when a function needs them.
"""

from __future__ import annotations

from pulse_local.resources.bigtable import apply_bigtable, plan_bigtable
from pulse_local.resources.clients import (
    bigtable_admin_client,
    bigtable_endpoint,
    close_bigtable_client,
    close_pubsub_clients,
    pubsub_clients,
    pubsub_endpoint,
)
from pulse_local.resources.errors import ResourceApplyError, ResourceFileError
from pulse_local.resources.loader import (
    BIGTABLE_FILE,
    PUBSUB_FILE,
    load_bigtable,
    load_declarations,
    load_pubsub,
)
from pulse_local.resources.models import BigtableDeclarations, PubSubDeclarations
from pulse_local.resources.probe import bigtable_ready, pubsub_ready
from pulse_local.resources.provision import provision
from pulse_local.resources.pubsub import apply_pubsub, plan_pubsub
from pulse_local.resources.report import ApplyReport, ResourceResult

__all__ = [
    "BIGTABLE_FILE",
    "PUBSUB_FILE",
    "ApplyReport",
    "BigtableDeclarations",
    "PubSubDeclarations",
    "ResourceApplyError",
    "ResourceFileError",
    "ResourceResult",
    "apply_bigtable",
    "apply_pubsub",
    "bigtable_admin_client",
    "bigtable_endpoint",
    "bigtable_ready",
    "close_bigtable_client",
    "close_pubsub_clients",
    "load_bigtable",
    "load_declarations",
    "load_pubsub",
    "plan_bigtable",
    "plan_pubsub",
    "provision",
    "pubsub_clients",
    "pubsub_endpoint",
    "pubsub_ready",
]
