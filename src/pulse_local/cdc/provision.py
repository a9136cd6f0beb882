"""The real Datastream stream on GCP, described from the same `stream.yaml` as the local CDC.

`describe_stream` returns the Datastream API (v1) ``Stream`` resource body (proto field names).
Datastream sets the BigQuery write mode per stream, so tables whose mode differs from the
default are described as a second stream (`describe_streams`), with its own replication slot
(``<slot>_<mode>``). `print_or_create` prints the bodies and the equivalent
``gcloud datastream streams create`` commands (their configs written to files, as gcloud takes
them); on gcp `create_streams` makes the replication slots, the connection profiles and the
streams exist through google-cloud-datastream's request objects, get before create, and starts
them.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulse_local.capabilities import ChangeStreams
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


def config_files(sid: str, body: dict[str, Any], directory: Path) -> dict[str, Path]:
    """Write the source and destination configs of stream `sid` as the JSON files gcloud's
    ``--postgresql-source-config`` / ``--bigquery-destination-config`` take (they are file
    paths, not inline JSON); return flag -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "--postgresql-source-config": (directory / f"{sid}.postgresql-source-config.json",
                                       body["source_config"]["postgresql_source_config"]),
        "--bigquery-destination-config": (
            directory / f"{sid}.bigquery-destination-config.json",
            body["destination_config"]["bigquery_destination_config"]),
    }
    for path, content in files.values():
        path.write_text(json.dumps(_camelize(content), indent=2) + "\n", encoding="utf-8")
    return {flag: path for flag, (path, _) in files.items()}


def gcloud_command(sid: str, body: dict[str, Any], settings: Settings,
                   files: dict[str, Path]) -> str:
    """The ``gcloud datastream streams create`` command equivalent to `body`, reading its
    source and destination configs from `files` (`config_files`)."""
    source = body["source_config"]
    destination = body["destination_config"]
    parts = [
        "gcloud", "datastream", "streams", "create", sid,
        f"--location={settings.location}", f"--project={settings.project}",
        f"--display-name={body['display_name']}",
        f"--source={source['source_connection_profile'].rsplit('/', 1)[1]}",
        f"--postgresql-source-config={files['--postgresql-source-config']}",
        f"--destination={destination['destination_connection_profile'].rsplit('/', 1)[1]}",
        f"--bigquery-destination-config={files['--bigquery-destination-config']}",
        "--backfill-all" if "backfill_all" in body else "--backfill-none",
    ]
    return " ".join(shlex.quote(p) for p in parts)


def config_dir(settings: Settings) -> Path:
    """Where the gcloud config files of the streams are written."""
    return settings.state_dir / "datastream"


def print_or_create(settings: Settings, dry_run: bool = True,
                    config: StreamConfig | None = None,
                    change_streams: ChangeStreams | None = None) -> str:
    """Print the stream bodies and gcloud commands (and return the text). With
    ``dry_run=False``, make the streams exist through `change_streams`, the profile's
    change-stream backend (``backends.for_profile(settings).change_streams``; on gcp:
    connection profiles, slots, streams, started; see `apply_streams`)."""
    if not dry_run and change_streams is None:
        raise TypeError("print_or_create(dry_run=False) needs change_streams: pass "
                        "backends.for_profile(settings).change_streams")
    config = config or load_stream_config()
    streams = describe_streams(config, settings)
    lines = []
    for sid, body in streams.items():
        lines.append(f"# Datastream stream {sid} (projects/{settings.project}/locations/"
                     f"{settings.location}/streams/{sid})")
        lines.append(json.dumps(body, indent=2))
        lines.append(gcloud_command(sid, body, settings,
                                    config_files(sid, body, config_dir(settings))))
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if change_streams is not None and not dry_run:
        done = change_streams.create(settings, streams)
        print(done)
        text += "\n" + done
    return text


# --------------------------------------------------------------------------------------
# GCP: the Datastream API (google-cloud-datastream request objects)
# --------------------------------------------------------------------------------------

def _datastream() -> Any:
    try:
        from google.cloud import datastream_v1  # type: ignore[attr-defined]
    except ImportError:
        raise CdcError(
            "provisioning Datastream needs google-cloud-datastream, which is not installed: "
            "`make install` (it is a dependency in pyproject.toml)") from None
    return datastream_v1


def postgres_login(settings: Settings) -> dict[str, Any]:
    """Host, port, database and user of the Datastream login: those of
    ``PULSE_ADMIN_DATABASE_URL`` (the password stays in Secret Manager)."""
    from urllib.parse import urlsplit

    parsed = urlsplit(settings.admin_dsn())
    if not parsed.hostname or not parsed.username:
        raise CdcError("PULSE_ADMIN_DATABASE_URL must name a host and a user "
                       "(postgresql://user@host:5432/db) for the Datastream connection profile")
    return {"hostname": parsed.hostname, "port": parsed.port or 5432,
            "username": parsed.username, "database": parsed.path.lstrip("/") or "postgres"}


def connection_profile_requests(settings: Settings, config: StreamConfig) -> list[Any]:
    """``CreateConnectionProfileRequest`` objects: the PostgreSQL source (password by Secret
    Manager reference, static service IPs) and the BigQuery destination."""
    ds = _datastream()
    parent = f"projects/{settings.project}/locations/{settings.location}"
    secret = (f"projects/{settings.project}/secrets/{config.source.password_secret}"
              "/versions/latest")
    source = ds.ConnectionProfile(
        display_name=f"{config.display_name}: source",
        postgresql_profile=ds.PostgresqlProfile(**postgres_login(settings),
                                                secret_manager_stored_password=secret),
        static_service_ip_connectivity=ds.StaticServiceIpConnectivity(),
    )
    destination = ds.ConnectionProfile(display_name=f"{config.display_name}: BigQuery",
                                       bigquery_profile=ds.BigQueryProfile())
    return [
        ds.CreateConnectionProfileRequest(parent=parent, connection_profile=source,
                                          connection_profile_id=config.source.connection_profile),
        ds.CreateConnectionProfileRequest(
            parent=parent, connection_profile=destination,
            connection_profile_id=config.destination.connection_profile),
    ]


def stream_requests(settings: Settings, streams: dict[str, dict[str, Any]]) -> list[Any]:
    """``CreateStreamRequest`` objects for the described streams (proto-plus validates every
    field name of the bodies)."""
    ds = _datastream()
    parent = f"projects/{settings.project}/locations/{settings.location}"
    return [ds.CreateStreamRequest(parent=parent, stream_id=sid, stream=ds.Stream(body))
            for sid, body in streams.items()]


def start_request(stream_name: str) -> Any:
    """The ``UpdateStreamRequest`` that starts a stream (state RUNNING, mask ``state``)."""
    from google.protobuf import field_mask_pb2

    ds = _datastream()
    return ds.UpdateStreamRequest(
        stream=ds.Stream(name=stream_name, state=ds.Stream.State.RUNNING),
        update_mask=field_mask_pb2.FieldMask(paths=["state"]))


def _get(fetch: Any) -> Any:
    from google.api_core import exceptions as gexc

    try:
        return fetch()
    except gexc.NotFound:
        return None


def apply_streams(settings: Settings, config: StreamConfig, streams: dict[str, dict[str, Any]],
                  client: Any) -> list[str]:
    """Make the connection profiles and streams exist and run, through `client` (a
    ``DatastreamClient``): get before create (a second apply creates nothing), start every
    stream that is not running. Returns what was done, one line each."""
    ds = _datastream()
    done: list[str] = []
    for request in connection_profile_requests(settings, config):
        name = f"{request.parent}/connectionProfiles/{request.connection_profile_id}"
        if _get(lambda n=name: client.get_connection_profile(name=n)) is None:
            client.create_connection_profile(request=request).result()
            done.append(f"created connection profile {request.connection_profile_id}")
        else:
            done.append(f"connection profile {request.connection_profile_id} exists")
    for request in stream_requests(settings, streams):
        name = f"{request.parent}/streams/{request.stream_id}"
        existing = _get(lambda n=name: client.get_stream(name=n))
        if existing is None:
            client.create_stream(request=request).result()
            done.append(f"created stream {request.stream_id}")
            state = ds.Stream.State.NOT_STARTED
        else:
            done.append(f"stream {request.stream_id} exists")
            state = existing.state
        if state not in (ds.Stream.State.RUNNING, ds.Stream.State.STARTING):
            client.update_stream(request=start_request(name)).result()
            done.append(f"started stream {request.stream_id}")
    return done


def ensure_replication(admin_dsn: str, publication: str, slots: list[str]) -> list[str]:
    """Check the publication exists and create the logical replication slots (pgoutput) the
    streams read, if missing, as the owner role; return what was done."""
    import psycopg

    done: list[str] = []
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        if conn.execute("select 1 from pg_publication where pubname = %s",
                        (publication,)).fetchone() is None:
            raise CdcError(f"publication {publication!r} does not exist in the source database: "
                           "run the source migrations (`pulse-local migrate --profile gcp`), which create it")
        for slot in slots:
            if conn.execute("select 1 from pg_replication_slots where slot_name = %s",
                            (slot,)).fetchone() is None:
                conn.execute("select pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
                done.append(f"created replication slot {slot}")
            else:
                done.append(f"replication slot {slot} exists")
    return done


def create_streams(settings: Settings, streams: dict[str, dict[str, Any]],
                   config: StreamConfig | None = None) -> list[str]:
    """GCP: the slots, connection profiles and streams, started (the ``raw`` dataset comes
    first, from `pulse_local.resources.gcp`)."""
    config = config or load_stream_config()
    settings.require_gcp("project", "admin_database_url")
    refuse_in_rehearsal(settings)
    slots = [body["source_config"]["postgresql_source_config"]["replication_slot"]
             for body in streams.values()]
    done = ensure_replication(settings.admin_dsn(), config.source.publication, slots)
    return done + apply_streams(settings, config, streams, datastream_client())


# --------------------------------------------------------------------------------------
# GCP: is Datastream keeping up? (the ETL flow's CDC step and monitoring's cdc:lag)
# --------------------------------------------------------------------------------------

def refuse_in_rehearsal(settings: Settings) -> None:
    """In an offline rehearsal (`Settings.rehearsal`) raise `NoEmulator`: Datastream has no
    emulator, and a rehearsal never calls Google."""
    if settings.rehearsal:
        from pulse_local.rehearsal.endpoints import NoEmulator

        raise NoEmulator("Datastream's API has no emulator: an offline rehearsal cannot ask it "
                         "for stream states or slot lag (the stack's cdc service plays Datastream)")


def datastream_client() -> Any:
    """The Datastream API client (Application Default Credentials)."""
    return _datastream().DatastreamClient()


@dataclass(frozen=True)
class DatastreamLag:
    """Datastream's side of the CDC on GCP: each stream's state and, from the source, how many
    WAL bytes each stream's replication slot is behind (None: slot missing, or never
    confirmed by Datastream)."""

    states: dict[str, str]
    bytes_behind: dict[str, int | None]

    def summary(self) -> str:
        streams = ", ".join(f"{sid} {state}" for sid, state in self.states.items())
        slots = ", ".join(f"{slot} {'missing or never confirmed' if b is None else f'{b} WAL bytes behind'}"
                          for slot, b in self.bytes_behind.items())
        return f"Datastream streams: {streams}; slots: {slots}"


def stream_states(settings: Settings, config: StreamConfig | None = None,
                  client: Any = None) -> dict[str, str]:
    """State of every declared stream (``RUNNING``, ``PAUSED``, ...; ``MISSING`` when the
    stream does not exist), from the Datastream API."""
    config = config or load_stream_config()
    if client is None:
        refuse_in_rehearsal(settings)
    client = client or datastream_client()
    parent = f"projects/{settings.project}/locations/{settings.location}"
    states = {}
    for sid in describe_streams(config, settings):
        stream = _get(lambda n=f"{parent}/streams/{sid}": client.get_stream(name=n))
        states[sid] = "MISSING" if stream is None else stream.state.name
    return states


def _slots(settings: Settings, config: StreamConfig) -> list[str]:
    return [body["source_config"]["postgresql_source_config"]["replication_slot"]
            for body in describe_streams(config, settings).values()]


def _not_running(states: dict[str, str]) -> str | None:
    bad = {sid: state for sid, state in states.items() if state != "RUNNING"}
    if not bad:
        return None
    listed = ", ".join(f"{sid} is {state}" for sid, state in bad.items())
    return (f"Datastream stream(s) not running: {listed}. Create and start them with "
            "`pulse-local provision --profile gcp`; a FAILED stream's errors are in "
            "`gcloud datastream streams describe <id> --location <location>`")


def datastream_lag(settings: Settings, config: StreamConfig | None = None,
                   client: Any = None) -> DatastreamLag:
    """Stream states (Datastream API) and slot lag in WAL bytes (source database)."""
    import psycopg

    config = config or load_stream_config()
    states = stream_states(settings, config, client)
    behind: dict[str, int | None] = {}
    with psycopg.connect(settings.admin_dsn(), autocommit=True, connect_timeout=10) as conn:
        for slot in _slots(settings, config):
            row = conn.execute(
                "select pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
                "from pg_replication_slots where slot_name = %s", (slot,)).fetchone()
            behind[slot] = None if row is None or row[0] is None else int(row[0])
    return DatastreamLag(states, behind)


def wait_for_datastream(settings: Settings, timeout: float = 300.0,
                        config: StreamConfig | None = None, client: Any = None
                        ) -> dict[str, object]:
    """Return once Datastream has read every change committed before the call: every stream
    RUNNING (else `CdcError` at once, before touching the source), then each stream's slot
    confirmed past the source's WAL flush position taken after a marker message (append-only
    tables show rows as soon as Datastream wrote them)."""
    import time

    import psycopg

    config = config or load_stream_config()
    started = time.monotonic()
    states = stream_states(settings, config, client)
    problem = _not_running(states)
    if problem:
        raise CdcError(problem)
    slots = _slots(settings, config)
    with psycopg.connect(settings.admin_dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("select pg_logical_emit_message(true, 'pulse_cdc.catch_up', 'etl')")
        row = conn.execute("select pg_current_wal_flush_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        waiting = list(slots)
        while waiting:
            waiting = [slot for slot in waiting if not (conn.execute(
                "select confirmed_flush_lsn >= %s::pg_lsn from pg_replication_slots "
                "where slot_name = %s", (target, slot)).fetchone() or (False,))[0]]
            if waiting and time.monotonic() - started > timeout:
                raise CdcError(
                    f"Datastream did not read the source up to {target} within {timeout:.0f} s "
                    f"(slots {', '.join(waiting)}): see the stream's state and errors "
                    "(`gcloud datastream streams describe`) and `python -m pulse_local.cdc lag`")
            if waiting:
                time.sleep(1.0)
    return {"streams": states, "slots": slots, "caught_up_to": target,
            "seconds": round(time.monotonic() - started, 3)}
