"""Unit: the stream declaration (emulators/datastream/stream.yaml) and the Datastream API body
described from it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from pulse_local.backends import for_profile
from pulse_local.cdc.config import STREAM_FILE, StreamConfig, load_stream_config
from pulse_local.cdc.errors import CdcConfigError
from pulse_local.cdc.provision import describe_stream, describe_streams, print_or_create
from pulse_local.config import Settings


def test_repository_stream_file_loads() -> None:
    config = load_stream_config()
    assert config.source.publication == "pulse_pipeline"
    assert config.source.replication_slot == "pulse_datastream"
    assert config.destination.dataset == "raw"
    assert config.destination.flush_interval_ms == 200
    assert {"organizations", "users", "answers"} <= set(config.tables)
    assert config.raw_dir(Settings(state_dir=Path("/s"))) == Path("/s/warehouse/raw")


def test_mode_defaults_to_the_destination_mode() -> None:
    config = StreamConfig.model_validate({"destination": {"mode": "merge"},
                                          "tables": {"a": {"mode": "append-only"}, "b": {}}})
    assert config.mode_of("a") == "append-only"
    assert config.mode_of("b") == "merge" and config.mode_of("unlisted") == "merge"


@pytest.mark.parametrize("text, problem", [
    ("source: [1", "invalid YAML"),
    ("- a list", "expected a mapping"),
    ("source: {publication: Bad-Name}", "source.publication"),
    ("destination: {mode: upsert}", "destination.mode"),
    ("destination: {data_freshness: soon}", "duration"),
    ("unknown_key: 1", "unknown_key"),
])
def test_invalid_files_name_the_field(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "stream.yaml"
    path.write_text(text)
    with pytest.raises(CdcConfigError, match=problem) as err:
        load_stream_config(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CdcConfigError, match="file not found"):
        load_stream_config(tmp_path / "nope.yaml")


def test_describe_stream_is_a_datastream_stream_body() -> None:
    settings = Settings(project="pulse-prod", location="europe-west1")
    body = describe_stream(load_stream_config(STREAM_FILE), settings)
    source = body["source_config"]
    assert source["source_connection_profile"] == (
        "projects/pulse-prod/locations/europe-west1/connectionProfiles/pulse-postgres")
    pg = source["postgresql_source_config"]
    assert pg["publication"] == "pulse_pipeline" and pg["replication_slot"] == "pulse_datastream"
    schemas = pg["include_objects"]["postgresql_schemas"]
    assert schemas[0]["schema"] == "public"
    assert {"table": "answers"} in schemas[0]["postgresql_tables"]
    bq = body["destination_config"]["bigquery_destination_config"]
    assert bq["single_target_dataset"] == {"dataset_id": "pulse-prod:raw"}
    assert bq["data_freshness"] == "900s" and bq["append_only"] == {}
    assert "backfill_all" in body


def test_mixed_modes_need_two_streams() -> None:
    config = StreamConfig.model_validate({
        "source": {"replication_slot": "s"},
        "destination": {"mode": "merge"},
        "tables": {"a": {}, "b": {"mode": "append-only"}}})
    streams = describe_streams(config, Settings())
    assert set(streams) == {config.name, f"{config.name}-append-only"}
    merge = streams[config.name]
    other = streams[f"{config.name}-append-only"]
    assert "merge" in merge["destination_config"]["bigquery_destination_config"]
    assert other["source_config"]["postgresql_source_config"]["replication_slot"] == "s_append_only"
    assert other["source_config"]["postgresql_source_config"]["include_objects"][
        "postgresql_schemas"][0]["postgresql_tables"] == [{"table": "b"}]


def test_print_or_create_prints_the_gcloud_command(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    """gcloud's --postgresql-source-config / --bigquery-destination-config take file paths:
    the command names files holding the configs (camelCase JSON), never inline JSON."""
    settings = Settings(profile="local", state_dir=tmp_path)
    text = print_or_create(settings, dry_run=True)
    command = next(line for line in text.splitlines()
                   if line.startswith("gcloud datastream streams create pulse-postgres-raw"))
    flags = dict(part.split("=", 1) for part in shlex.split(command) if "=" in part)
    source = Path(flags["--postgresql-source-config"])
    destination = Path(flags["--bigquery-destination-config"])
    assert source.parent == tmp_path / "datastream" and destination.is_file()
    assert json.loads(source.read_text())["replicationSlot"] == "pulse_datastream"
    assert json.loads(destination.read_text())["singleTargetDataset"] == {
        "datasetId": "pulse-local:raw"}
    assert "{" not in command  # no inline JSON
    assert "--backfill-all" in text and "nothing to create" not in text
    assert capsys.readouterr().out.strip() == text.strip()


def test_provisioning_on_local_creates_nothing_and_says_so(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    """The local backend's change streams are the stack's cdc service: nothing to create."""
    settings = Settings(profile="local", state_dir=tmp_path)
    text = print_or_create(settings, dry_run=False,
                           change_streams=for_profile(settings).change_streams)
    assert "nothing to create" in text and "cdc service" in text
    assert capsys.readouterr().out.strip() == text.strip()


def test_command_line_describe_and_config_errors(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pulse_local.cdc.__main__ import main

    monkeypatch.setenv("PULSE_STATE_DIR", str(tmp_path / "state"))
    assert main(["describe"]) == 0
    assert "gcloud datastream streams create" in capsys.readouterr().out
    bad = tmp_path / "stream.yaml"
    bad.write_text("destination: {mode: upsert}")
    assert main(["drain", "--config", str(bad)]) == 1
    assert "destination.mode" in capsys.readouterr().err
