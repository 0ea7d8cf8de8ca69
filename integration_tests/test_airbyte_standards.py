"""Airbyte's standard connector tests (the in-process successor of CAT), run against the emulator on 127.0.0.1.

`SourceTestSuiteBase` reads acceptance-test-config.yml at the connector root and runs, in-process: spec (and its
lint), config-matches-spec, check (succeed and failed), discover, basic read with schema validation, and a read
with a bad catalog. Its Docker image tests carry the `image_tests` marker, which the default run deselects; the
image is checked by `make image-check` instead.

The configs those tests read name the emulator's URL, which changes per run, so `standard_configs` below
writes them under build/standard-tests/ before the first test of this module runs, from the templates
integration_tests/sample_config.json and invalid_config.json. The extra tests at the end read the remaining
sample files (configured_catalog.json, sample_state.json, abnormal_state.json) so they cannot rot.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.models import (
    AirbyteStateMessage,
    AirbyteStateMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteCatalogSerializer,
)
from airbyte_cdk.test import standard_tests
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, discover, read
from airbyte_cdk.test.models import ExpectedOutcome

from integration_tests.emulator import DixaEmulator, EmulatorConfig
from source_dixa import SourceDixa
from source_dixa.config import parse_start_date
from source_dixa.http_common import wall_clock_ms
from source_dixa.timestamps import iso_to_ms

# Registers the suite's `scenario` parametrization (pytest_generate_tests) and its command-line options.
pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "integration_tests"
GENERATED = ROOT / "build" / "standard-tests"
# Files the acceptance-test-config.yml names under build/standard-tests/, and the template each comes from.
TEMPLATES = {"config.json": "sample_config.json", "invalid_config.json": "invalid_config.json"}
CURSORS = {"conversation_export": "updated_at", "message_export": "created_at", "activity_logs": "activityTimestamp"}


class TestSourceDixaStandards(standard_tests.SourceTestSuiteBase):
    connector = SourceDixa
    # The suite names the connector after its root directory, which is whatever the clone is called.
    connector_name = "source-dixa"


@pytest.fixture(scope="module")
def emulator() -> Iterator[DixaEmulator]:
    # The emulator's default year of data (2024) starts on the templates' start_date.
    with DixaEmulator(EmulatorConfig(conversations=150, messages_per_conversation=2.0)) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def standard_configs(emulator: DixaEmulator) -> Iterator[dict[str, dict[str, Any]]]:
    """Write build/standard-tests/*.json for this emulator; hold a lock so that concurrent runs take turns."""
    GENERATED.mkdir(parents=True, exist_ok=True)
    with open(GENERATED / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        configs = {}
        for name, template in TEMPLATES.items():
            template_config = json.loads((SAMPLES / template).read_text())
            config = render_config(template_config, emulator, keep_token=name != "config.json")
            (GENERATED / name).write_text(json.dumps(config, indent=2) + "\n")
            configs[name] = config
        yield configs


def render_config(template: dict[str, Any], emulator: DixaEmulator, *, keep_token: bool) -> dict[str, Any]:
    """The template pointed at the emulator; `keep_token` keeps a token the emulator refuses."""
    config = {
        **template,
        "api_url": emulator.url,
        "dixa_api_url": emulator.url,
        "requests_per_minute": 6000,
        "dixa_api_requests_per_second": 1000,
    }
    if not keep_token:
        config["api_token"] = emulator.config.token
    return config


def load_catalog() -> ConfiguredAirbyteCatalog:
    return ConfiguredAirbyteCatalogSerializer.load(json.loads((SAMPLES / "configured_catalog.json").read_text()))


def load_state(name: str) -> list[AirbyteStateMessage]:
    return [AirbyteStateMessageSerializer.load(message) for message in json.loads((SAMPLES / name).read_text())]


def saved_cursor_ms(name: str, stream: str) -> int:
    for message in json.loads((SAMPLES / name).read_text()):
        if message["stream"]["stream_descriptor"]["name"] == stream:
            value = message["stream"]["stream_state"][CURSORS[stream]]
            return iso_to_ms(value) if isinstance(value, str) else int(value)  # type: ignore[return-value]
    raise AssertionError(f"{name} has no state for {stream}")


def ids_by_stream(output: EntrypointOutput) -> dict[str, set[Any]]:
    ids: dict[str, set[Any]] = {name: set() for name in CURSORS}
    for message in output.records:
        assert message.record is not None
        ids[message.record.stream].add(message.record.data["id"])
    return ids


def test_configured_catalog_matches_discover(standard_configs: dict[str, dict[str, Any]]) -> None:
    discovered = discover(SourceDixa(), standard_configs["config.json"]).catalog.catalog
    assert discovered is not None
    by_name = {stream.name: stream for stream in discovered.streams}
    for configured in load_catalog().streams:
        stream = by_name[configured.stream.name]
        assert configured.cursor_field == stream.default_cursor_field == [CURSORS[stream.name]]
        assert configured.primary_key == stream.source_defined_primary_key == [["id"]]
        assert configured.sync_mode.value in {mode.value for mode in stream.supported_sync_modes}


def test_sample_state_reads_only_records_at_or_after_its_cursors(
    emulator: DixaEmulator, standard_configs: dict[str, dict[str, Any]]
) -> None:
    before_ms = wall_clock_ms()
    output = read(SourceDixa(), standard_configs["config.json"], load_catalog(), load_state("sample_state.json"))
    assert not output.errors
    ids = ids_by_stream(output)
    conversations_ms = saved_cursor_ms("sample_state.json", "conversation_export")
    messages_ms = saved_cursor_ms("sample_state.json", "message_export")
    assert ids["conversation_export"] == emulator.expected_conversation_ids(conversations_ms, before_ms)
    assert ids["message_export"] == emulator.expected_message_ids(messages_ms, before_ms)
    activity_ms = saved_cursor_ms("sample_state.json", "activity_logs")
    assert ids["activity_logs"] == emulator.expected_activity_ids(activity_ms, before_ms)
    # The saved cursors lie inside the emulator's data, so the state must have cut something off.
    start_ms = parse_start_date(standard_configs["config.json"]["start_date"])
    assert emulator.expected_conversation_ids(start_ms, before_ms) - ids["conversation_export"]
    assert emulator.expected_message_ids(start_ms, before_ms) - ids["message_export"]
    assert emulator.expected_activity_ids(start_ms, before_ms) - ids["activity_logs"]


def test_abnormal_state_in_the_future_reads_nothing_and_fails_nothing(
    standard_configs: dict[str, dict[str, Any]],
) -> None:
    output = read(
        SourceDixa(),
        standard_configs["config.json"],
        load_catalog(),
        load_state("abnormal_state.json"),
        expected_outcome=ExpectedOutcome.EXPECT_SUCCESS,
    )
    assert not output.errors
    assert output.records == []
