"""PyAirbyte runs the installed `source-dixa` executable against the emulator and loads both streams into DuckDB.

PyAirbyte (PyPI `airbyte`) is a large install, so it lives in its own virtualenv: `make pyairbyte-test` creates
.venv-pyairbyte with PyAirbyte, this connector and pytest, and runs this file there. The `pyairbyte` marker keeps
it out of the default `make test` run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from integration_tests.emulator import DixaEmulator, EmulatorConfig

pytestmark = pytest.mark.pyairbyte

START_DATE = "2024-01-01"
START_MS = 1_704_067_200_000  # START_DATE, midnight UTC; the emulator's data starts there too


def test_pyairbyte_reads_both_streams_into_a_duckdb_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No registry look-ups and no telemetry: the test talks to 127.0.0.1 only.
    monkeypatch.setenv("AIRBYTE_OFFLINE_MODE", "1")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("AIRBYTE_LOGGING_ROOT", str(tmp_path / "logs"))
    ab = pytest.importorskip("airbyte", reason="PyAirbyte is installed in .venv-pyairbyte by `make pyairbyte-test`")
    executable = Path(sys.executable).with_name("source-dixa")
    assert executable.exists(), f"{executable} is missing: install this connector into {sys.prefix}"

    with DixaEmulator(EmulatorConfig(conversations=150, messages_per_conversation=2.0)) as emulator:
        config: dict[str, Any] = {
            "api_token": emulator.config.token,
            "start_date": START_DATE,
            "batch_size": 31,
            "api_url": emulator.url,
            "requests_per_minute": 6000,
        }
        # local_executable: without it, get_source would install Airbyte's own source-dixa from PyPI.
        source = ab.get_source("source-dixa", config=config, local_executable=executable)
        source.check()
        source.select_all_streams()
        cache = ab.new_local_cache(cache_name="dixa", cache_dir=tmp_path / "cache")
        before_ms = time.time_ns() // 1_000_000
        result = source.read(cache=cache)
        conversations = result["conversation_export"].to_pandas()
        messages = result["message_export"].to_pandas()
        expected_conversations = emulator.expected_conversation_ids(START_MS, before_ms)
        expected_messages = emulator.expected_message_ids(START_MS, before_ms)

    assert len(conversations) == len(expected_conversations) > 0
    assert len(messages) == len(expected_messages) > 0
    assert set(conversations["id"]) == expected_conversations
    assert set(messages["id"]) == expected_messages
    # The DuckDB file is in this test's tmp dir, not in PyAirbyte's default ./.cache.
    assert Path(cache.db_path).is_file()
    assert Path(cache.db_path).is_relative_to(tmp_path)
