"""The BigQuery subscription, played by the rehearsal.

On GCP, Pub/Sub writes every message of ``response-events`` into ``raw.pubsub_response_events``
through the subscription ``response-events-bigquery`` (``bigquery_config`` with
``write_metadata``: columns subscription_name, message_id, publish_time, data, attributes). The
Pub/Sub emulator keeps that subscription as a pull subscription and writes nothing to BigQuery;
the rehearsal pulls it and appends the rows a BigQuery subscription writes, through the official
clients, so the gcp monitoring reads what it will read in the cloud.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from pulse_local.config import Settings
from pulse_local.resources.loader import load_pubsub


def bigquery_subscriptions(settings: Settings) -> dict[str, str]:
    """Subscription name -> ``dataset.table`` of every BigQuery subscription declared for gcp."""
    return {s.name: s.bigquery_config.table
            for s in load_pubsub().for_profile("gcp").subscriptions if s.bigquery_config}


def subscription_row(subscription_path: str, message: Any) -> dict[str, Any]:
    """The row a BigQuery subscription with ``write_metadata`` writes for one message (payload
    and attributes as STRING, as the table of `resources.gcp` declares them)."""
    return {
        "subscription_name": subscription_path,
        "message_id": message.message_id,
        "publish_time": message.publish_time.isoformat(),
        "data": bytes(message.data).decode("utf-8"),
        "attributes": json.dumps(dict(message.attributes), sort_keys=True),
    }


def play_bigquery_subscriptions(settings: Settings, bigquery: Any, max_batches: int = 200) -> int:
    """Pull every BigQuery subscription until it is empty, append its rows to its table, ack
    them; return how many rows were written."""
    from google.cloud import pubsub_v1

    written = 0
    subscriber = pubsub_v1.SubscriberClient()  # PUBSUB_EMULATOR_HOST: the rehearsal's emulator
    try:
        for name, table in bigquery_subscriptions(settings).items():
            path = subscriber.subscription_path(settings.project, name)
            for _ in range(max_batches):
                with warnings.catch_warnings():
                    # deprecated for the service, honoured by the emulator (the only server a
                    # rehearsal talks to): an empty pull returns at once instead of waiting
                    warnings.simplefilter("ignore", DeprecationWarning)
                    response = subscriber.pull(subscription=path, max_messages=1000, timeout=30,
                                               return_immediately=True)
                received = list(response.received_messages)
                if not received:
                    break
                rows = [subscription_row(path, r.message) for r in received]
                errors = bigquery.insert_rows_json(f"{settings.project}.{table}", rows, timeout=60)
                if errors:
                    raise RuntimeError(f"BigQuery refused {len(errors)} row(s) of {table}: "
                                       f"{errors[:3]}")
                subscriber.acknowledge(subscription=path, ack_ids=[r.ack_id for r in received])
                written += len(rows)
    finally:
        subscriber.close()
    return written
