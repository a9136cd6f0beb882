"""GCP prerequisites the other declarations assume, applied with the real clients: the
BigQuery datasets (``raw`` must exist before Datastream writes into it; dbt builds ``staging``
and ``dw``), the BigQuery subscription's table with the columns such a subscription writes, the
Pub/Sub service agent's ``roles/bigquery.dataEditor`` on that dataset, and the raw bucket.

`plan_gcp` says what `apply_gcp` would do without calling anything; `apply_gcp` gets before it
creates, so a second apply changes nothing. Clients come in through `GcpClients` (tests pass
fakes; `gcp_clients` builds the real ones).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pulse_local.config import Settings
from pulse_local.resources.models import PubSubDeclarations
from pulse_local.resources.report import ApplyReport

#: Datasets of the warehouse: Datastream's target, dbt's staging views and marts.
DATASETS = ("raw", "staging", "dw")
#: Columns a BigQuery subscription with ``write_metadata`` writes (payload as STRING).
SUBSCRIPTION_TABLE_SCHEMA: tuple[tuple[str, str], ...] = (
    ("subscription_name", "STRING"),
    ("message_id", "STRING"),
    ("publish_time", "TIMESTAMP"),
    ("data", "STRING"),
    ("attributes", "STRING"),
)
#: What the Pub/Sub service agent needs on the subscription's dataset to write rows.
WRITER_ROLE = "roles/bigquery.dataEditor"
#: BigQuery reports the predefined dataEditor role on a dataset as the basic role WRITER.
_WRITER_ROLES = (WRITER_ROLE, "WRITER")


def pubsub_service_agent(project_number: str) -> str:
    """The Pub/Sub service agent of a project (it writes a BigQuery subscription's rows)."""
    return f"service-{project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"


@dataclass
class GcpClients:
    """The clients `apply_gcp` uses: google-cloud-bigquery's and google-cloud-storage's
    ``Client``, and the project number (looked up once, when the access entry is needed)."""

    bigquery: Any
    storage: Any
    project_number: Callable[[], str]


def subscription_tables(declarations: PubSubDeclarations) -> list[str]:
    """``dataset.table`` of every BigQuery subscription declared for the gcp profile."""
    tables = set()
    for sub in declarations.for_profile("gcp").subscriptions:
        if sub.bigquery_config:
            table = sub.bigquery_config.table
            tables.add(table.split(".", 1)[1] if table.count(".") == 2 else table)
    return sorted(tables)


def plan_gcp(settings: Settings, declarations: PubSubDeclarations) -> ApplyReport:
    """What `apply_gcp` would make exist (nothing is called)."""
    settings.require_gcp("project", "raw_bucket")
    report = ApplyReport("gcp", settings.project)
    for dataset in DATASETS:
        report.add("dataset", f"{settings.project}.{dataset}", "planned",
                   f"location {settings.location}")
    for table in subscription_tables(declarations):
        columns = ", ".join(f"{n} {t}" for n, t in SUBSCRIPTION_TABLE_SCHEMA)
        report.add("table", f"{settings.project}.{table}", "planned", columns)
        report.add("access", f"{settings.project}.{table.split('.')[0]}", "planned",
                   f"{WRITER_ROLE} for the Pub/Sub service agent "
                   "(service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com)")
    report.add("bucket", f"gs://{settings.raw_bucket}", "planned",
               f"location {settings.location}")
    return report


def _missing(fetch: Callable[[], Any]) -> bool:
    from google.api_core import exceptions as gexc

    try:
        fetch()
    except gexc.NotFound:
        return True
    return False


def apply_gcp(settings: Settings, declarations: PubSubDeclarations,
              clients: GcpClients) -> ApplyReport:
    """Make the datasets, the subscription tables, the service agent's access and the raw
    bucket exist (get before create)."""
    from google.cloud import bigquery

    settings.require_gcp("project", "raw_bucket")
    bq, project = clients.bigquery, settings.project
    report = ApplyReport("gcp", project)
    for name in DATASETS:
        ref = f"{project}.{name}"
        if _missing(functools.partial(bq.get_dataset, ref)):
            dataset = bigquery.Dataset(ref)
            dataset.location = settings.location
            bq.create_dataset(dataset)
            report.add("dataset", ref, "created")
        else:
            report.add("dataset", ref, "exists")
    for table in subscription_tables(declarations):
        ref = f"{project}.{table}"
        if _missing(functools.partial(bq.get_table, ref)):
            spec = bigquery.Table(ref, schema=[bigquery.SchemaField(n, t)
                                               for n, t in SUBSCRIPTION_TABLE_SCHEMA])
            spec.time_partitioning = bigquery.TimePartitioning(field="publish_time")
            bq.create_table(spec)
            report.add("table", ref, "created")
        else:
            have = {(f.name, f.field_type) for f in bq.get_table(ref).schema}
            lacking = [f"{n} {t}" for n, t in SUBSCRIPTION_TABLE_SCHEMA if (n, t) not in have]
            report.add("table", ref, "drift" if lacking else "exists",
                       f"missing columns {', '.join(lacking)}: a BigQuery subscription "
                       "cannot write into it; drop it and provision again" if lacking else "")
        _grant_writer(bq, f"{project}.{table.split('.')[0]}",
                      pubsub_service_agent(clients.project_number()), report)
    settings.require_gcp("raw_bucket")
    if clients.storage.lookup_bucket(settings.raw_bucket) is None:
        clients.storage.create_bucket(settings.raw_bucket, location=settings.location)
        report.add("bucket", f"gs://{settings.raw_bucket}", "created")
    else:
        report.add("bucket", f"gs://{settings.raw_bucket}", "exists")
    return report


def _grant_writer(bq: Any, dataset_ref: str, email: str, report: ApplyReport) -> None:
    from google.cloud import bigquery

    dataset = bq.get_dataset(dataset_ref)
    entries = list(dataset.access_entries)
    if any(e.entity_id == email and e.role in _WRITER_ROLES for e in entries):
        report.add("access", dataset_ref, "exists", f"{WRITER_ROLE} for {email}")
        return
    entries.append(bigquery.AccessEntry(role=WRITER_ROLE, entity_type="userByEmail",
                                        entity_id=email))
    dataset.access_entries = entries
    bq.update_dataset(dataset, ["access_entries"])
    report.add("access", dataset_ref, "updated", f"granted {WRITER_ROLE} to {email}")


def gcp_clients(settings: Settings) -> GcpClients:
    """The real clients (Application Default Credentials), or the emulators named by
    Settings' ``BIGQUERY_EMULATOR_HOST`` / ``STORAGE_EMULATOR_HOST`` (the rehearsal)."""

    def project_number() -> str:
        if settings.project_number:
            return settings.project_number
        from google.cloud import resourcemanager_v3

        project = resourcemanager_v3.ProjectsClient().get_project(
            name=f"projects/{settings.project}")
        return str(project.name).rsplit("/", 1)[1]

    from pulse_local.resources.clients import bigquery_client, storage_client

    return GcpClients(bigquery_client(settings.project, settings.location,
                                      settings.bigquery_emulator_host),
                      storage_client(settings), project_number)
