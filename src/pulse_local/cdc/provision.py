"""The real Datastream stream on GCP, described from the same `stream.yaml` as the local CDC.

`describe_stream` returns the Datastream API (v1) ``Stream`` resource body (proto field names).
Datastream sets the BigQuery write mode per stream, so tables whose mode differs from the
default are described as a second stream (`describe_streams`), with its own replication slot
(``<slot>_<mode>``). Nothing runs locally on the gcp profile: `print_or_create` prints the
bodies and the equivalent ``gcloud datastream streams create`` commands, or creates the streams
when google-cloud-datastream is installed.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from pulse_local.cdc.config import Mode, StreamConfig, load_stream_config
from pulse_local.cdc.errors import CdcError
from pulse_local.config import Settings


def _profile(settings: Settings, profile_id: str) -> str:
    return (f"projects/{settings.project}/locations/{settings.location}/"
            f"connectionProfiles/{profile_id}")


def _tables_with_mode(config: StreamConfig, mode: Mode) -> list[str]:
    return [t for t in config.tables if config.mode_of(t) == mode]


def stream_id(config: StreamConfig, mode: Mode) -> str:
    """The default mode keeps the stream's name; the other one gets a suffix."""
    return config.name if mode == config.destination.mode else f"{config.name}-{mode}"


def slot_for(config: StreamConfig, mode: Mode) -> str:
    slot = config.source.replication_slot
    return slot if mode == config.destination.mode else f"{slot}_{mode.replace('-', '_')}"


def describe_stream(config: StreamConfig | None, settings: Settings,
                    mode: Mode | None = None) -> dict[str, Any]:
    """The ``Stream`` body for the tables in `mode` (default: the stream's default mode).

    With no tables listed in the config, the whole schema is included."""
    config = config or load_stream_config()
    mode = mode or config.destination.mode
    source = config.source
    tables = _tables_with_mode(config, mode)
    schema: dict[str, Any] = {"schema": source.schema_name}
    if tables:
        schema["postgresql_tables"] = [{"table": t} for t in tables]
    elif config.tables:
        raise CdcError(f"no table of stream {config.name!r} uses mode {mode!r}")
    destination: dict[str, Any] = {
        "single_target_dataset": {"dataset_id": f"{settings.project}:{config.destination.dataset}"},
        "data_freshness": f"{config.destination.data_freshness_seconds}s",
    }
    destination["merge" if mode == "merge" else "append_only"] = {}
    body: dict[str, Any] = {
        "display_name": config.display_name + ("" if mode == config.destination.mode
                                               else f" ({mode})"),
        "source_config": {
            "source_connection_profile": _profile(settings, source.connection_profile),
            "postgresql_source_config": {
                "include_objects": {"postgresql_schemas": [schema]},
                "replication_slot": slot_for(config, mode),
                "publication": source.publication,
                "max_concurrent_backfill_tasks": source.max_concurrent_backfill_tasks,
            },
        },
        "destination_config": {
            "destination_connection_profile": _profile(settings,
                                                       config.destination.connection_profile),
            "bigquery_destination_config": destination,
        },
    }
    body["backfill_all" if source.backfill else "backfill_none"] = {}
    return body


def describe_streams(config: StreamConfig | None, settings: Settings) -> dict[str, dict[str, Any]]:
    """Every stream the declaration needs: stream id -> body (one per write mode in use)."""
    config = config or load_stream_config()
    modes: list[Mode] = [config.destination.mode]
    other: Mode = "merge" if config.destination.mode == "append-only" else "append-only"
    if _tables_with_mode(config, other):
        modes.append(other)
    if config.tables and not _tables_with_mode(config, config.destination.mode):
        modes.remove(config.destination.mode)
    return {stream_id(config, m): describe_stream(config, settings, m) for m in modes}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p.title() for p in rest)


def _camelize(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camelize(v) for v in value]
    return value


def gcloud_command(sid: str, body: dict[str, Any], settings: Settings) -> str:
    """The ``gcloud datastream streams create`` command equivalent to `body`."""
    source = body["source_config"]
    destination = body["destination_config"]
    parts = [
        "gcloud", "datastream", "streams", "create", sid,
        f"--location={settings.location}", f"--project={settings.project}",
        f"--display-name={body['display_name']}",
        f"--source={source['source_connection_profile'].rsplit('/', 1)[1]}",
        "--postgresql-source-config="
        + json.dumps(_camelize(source["postgresql_source_config"]), separators=(",", ":")),
        f"--destination={destination['destination_connection_profile'].rsplit('/', 1)[1]}",
        "--bigquery-destination-config="
        + json.dumps(_camelize(destination["bigquery_destination_config"]),
                     separators=(",", ":")),
        "--backfill-all" if "backfill_all" in body else "--backfill-none",
    ]
    return " ".join(shlex.quote(p) for p in parts)


def print_or_create(settings: Settings, dry_run: bool = True,
                    config: StreamConfig | None = None) -> str:
    """Print the stream bodies and gcloud commands (and return the text). With
    ``dry_run=False`` on the gcp profile, create the streams through the Datastream API."""
    config = config or load_stream_config()
    streams = describe_streams(config, settings)
    lines = []
    for sid, body in streams.items():
        lines.append(f"# Datastream stream {sid} (projects/{settings.project}/locations/"
                     f"{settings.location}/streams/{sid})")
        lines.append(json.dumps(body, indent=2))
        lines.append(gcloud_command(sid, body, settings))
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if not dry_run:
        from pulse_local.backends import for_profile

        done = for_profile(settings).change_streams.create(settings, streams)
        print(done)
        text += "\n" + done
    return text


def create_streams(settings: Settings, streams: dict[str, dict[str, Any]]) -> None:
    """Create the streams through the Datastream API (GCP)."""
    try:
        from google.cloud import datastream_v1  # type: ignore[attr-defined]
    except ImportError:
        raise CdcError(
            "creating Datastream streams needs google-cloud-datastream, which is not installed: "
            "run the gcloud commands printed above, or `pip install google-cloud-datastream`"
        ) from None
    client = datastream_v1.DatastreamClient()
    parent = f"projects/{settings.project}/locations/{settings.location}"
    for sid, body in streams.items():
        stream = datastream_v1.Stream(body)
        client.create_stream(parent=parent, stream=stream, stream_id=sid).result()
