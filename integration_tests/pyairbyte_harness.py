"""One PyAirbyte scenario against the emulator, and checks of what landed in the SQL cache.

The scenario, for any PyAirbyte cache: read every stream the connector discovers, snapshot the tables, change the
account in the emulator (replies to conversations, new activity events, a new, a changed and a removed record in the
full-refresh lists), read again (incremental where the stream supports it), snapshot again.
The checks compare the snapshots with the emulator's ground truth and return what differs, so each test decides what
a difference means. Used by test_pyairbyte.py (DuckDB) and test_pyairbyte_postgres.py (a real PostgreSQL).

PyAirbyte is imported inside functions only: `make test` imports every module here for doctests, without PyAirbyte.

Facts about PyAirbyte 0.71.3 the tests rely on (file:line in the installed `airbyte` package):
- airbyte/shared/sql_processor.py:900 `_write_files_to_new_table` loads each JSONL batch with
  `pd.read_json(file_path, lines=True)`: pandas' defaults (`convert_dates=True`, `keep_default_dates=True`,
  `dtype=True`) turn columns named `*_at`/`*_time` holding epoch-like numbers into datetimes, and numeric-looking
  strings ("+4512345678", "0045...") into numbers. PostgresCache uses this generic loader
  (airbyte/_processors/sql/postgres.py defines no loader of its own); DuckDB (airbyte/_processors/sql/duckdb.py:110),
  BigQuery and Snowflake override it.
- airbyte/shared/sql_processor.py:906-908 drops every column the stream's schema does not declare, and DuckDB's
  `read_json_auto(columns=...)` (duckdb.py:155) reads the declared columns only: undeclared fields are lost.
- PyAirbyte PR #1153 (and #1163, which carries it plus a test) passes `convert_dates=<declared date-time columns>,
  keep_default_dates=False`. It leaves `dtype=True`, so it does not stop the number guessing.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import pytest

from integration_tests.emulator import DixaEmulator, EmulatorConfig

if TYPE_CHECKING:
    from airbyte.caches.base import CacheBase

ROOT = Path(__file__).resolve().parent.parent
START_DATE = "2024-01-01"
START_MS = 1_704_067_200_000  # START_DATE, midnight UTC; the emulator's data starts there too
# Only used when the discovered catalog declares no primary key for a stream (it should declare one).
FALLBACK_KEYS: dict[str, tuple[str, ...]] = {
    "team_members": ("team_id", "id"),
    "queue_members": ("queue_id", "agentId"),
    "contact_endpoints": ("_type", "endpoint"),
    "agent_presence": ("userId", "requestTime"),
}
PHONE_LIKE = re.compile(r"^(\+|00)[0-9]{6,}$")
# The failures behind PyAirbyte PR #1153/#1163. Which one a read hits depends on the stream PyAirbyte loads first:
# PostgreSQL refusing a datetime for a BIGINT column, or pandas' date guessing itself crashing on a float column of
# epoch ms (`FloatingPointError: overflow encountered in multiply`, raised inside these pandas functions).
DATETIME_INTO_BIGINT = re.compile(r"is of type bigint but expression is of type timestamp")
PANDAS_DATE_GUESSING = frozenset({"_try_convert_dates", "_try_convert_to_date"})
PR_DATES = "PyAirbyte PR #1153/#1163"
WORKAROUND_MARKER = "# PostgresCache workaround for PyAirbyte 0.71"


class KnownPyAirbyteBug(AssertionError):
    """A check failed exactly the way a known PyAirbyte bug predicts; strict xfail marks expect this type only."""


# ---- the connector's streams, as PyAirbyte discovers them -------------------------------------------------------


@dataclass(frozen=True)
class StreamSpec:
    name: str
    key: tuple[str, ...]
    cursor: Optional[str]
    properties: dict[str, Any]

    def declared_types(self, column: str) -> set[str]:
        declared = self.properties[column].get("type", [])
        return ({declared} if isinstance(declared, str) else set(declared)) - {"null"}

    def is_plain_string(self, column: str) -> bool:
        return self.declared_types(column) == {"string"} and "format" not in self.properties[column]


def stream_specs(source: Any) -> dict[str, StreamSpec]:
    specs: dict[str, StreamSpec] = {}
    for stream in source.discovered_catalog.streams:
        key = tuple(path[0] for path in (stream.source_defined_primary_key or []))
        key = key or FALLBACK_KEYS.get(stream.name) or ("id",)
        cursor = stream.default_cursor_field[0] if stream.default_cursor_field else None
        specs[stream.name] = StreamSpec(stream.name, key, cursor, dict(stream.json_schema.get("properties", {})))
    return specs


# ---- ground truth ------------------------------------------------------------------------------------------------


def _as_emitted(stream: str, record: dict[str, Any]) -> dict[str, Any]:
    """A served record plus what the connector adds to it: contact endpoints have no id, so the connector makes
    `endpoint` from the first of `address`, `number` (source_dixa/dixa_api.py, ContactEndpoints.endpoint_from)."""
    if stream == "contact_endpoints" and "endpoint" not in record:
        endpoint = next((record[name] for name in ("address", "number") if record.get(name) is not None), None)
        return {**record, "endpoint": endpoint}
    return record


def emulator_records(emulator: DixaEmulator, stream: str) -> list[dict[str, Any]]:
    """What the connector should emit for `stream`, from the emulator's ground truth (KeyError: not served)."""
    return [_as_emitted(stream, record) for record in emulator.records(stream)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def as_us(value: Any) -> Optional[int]:
    """Epoch microseconds from epoch ms (int), an ISO-8601 string or a datetime (naive meaning UTC); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value * 1000
    if isinstance(value, str):
        try:  # Dixa also writes "...Z[GMT]" and zone-less times, both UTC
            value = datetime.fromisoformat(re.sub(r"\[[^\]]*\]$", "", value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return (aware - _EPOCH) // timedelta(microseconds=1)
    return None


def as_ms(value: Any) -> Optional[int]:
    us = as_us(value)
    return None if us is None else us // 1000


def bounded(records: list[dict[str, Any]], spec: StreamSpec, read_started_ms: int) -> list[dict[str, Any]]:
    """A read that started at `read_started_ms` sees cursor values in [START_MS, read_started_ms) only."""
    if spec.cursor is None:
        return records
    kept = []
    for record in records:
        cursor_ms = as_ms(record.get(spec.cursor))
        if cursor_ms is None or START_MS <= cursor_ms < read_started_ms:
            kept.append(record)
    return kept


# ---- the scenario ------------------------------------------------------------------------------------------------


@dataclass
class Table:
    rows: list[dict[str, Any]]
    column_types: dict[str, str]  # normalized column name -> information_schema data_type, lower case


@dataclass
class Phase:
    """One `source.read()`: how long it took, how it ended, what the cache then held, and the truth to compare."""

    started_ms: int
    seconds: float
    load_seconds: dict[str, float]  # per stream: PyAirbyte's write_stream_data, the SQL load after the read
    error: Optional[BaseException]
    tables: dict[str, Table] = field(default_factory=dict)
    truth: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class Changes:
    """What the scenario changed in the emulator between the reads."""

    at_ms: int
    replied_conversations: list[int]
    new_messages: list[str]
    new_activity_events: list[str]
    new_agents: list[str]
    renamed_agent: dict[str, Any]
    removed_tag: str


@dataclass
class Scenario:
    label: str
    specs: dict[str, StreamSpec]
    normalize: Callable[[str], str]
    first: Phase
    changes: Optional[Changes] = None
    second: Optional[Phase] = None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def connector_config(emulator: DixaEmulator) -> dict[str, Any]:
    return {
        "api_token": emulator.config.token,
        "start_date": START_DATE,
        "batch_size": 31,
        "api_url": emulator.url,
        "dixa_api_url": emulator.url,  # one emulator serves both Dixa services
        "requests_per_minute": 6000,
        "dixa_api_requests_per_second": 1000,
        # The scenario changes the account at "now" and reads it straight away.
        "safety_lag_minutes": 0,
    }


def _snapshot(cache: CacheBase, specs: dict[str, StreamSpec]) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    schema = cache.schema_name
    for name in specs:
        table = cache.processor.get_sql_table_name(name)
        types = cache.run_sql_query(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '{schema}' AND table_name = '{table}'"
        )
        if not types:
            continue  # no table: the read did not get that far
        rows = cache.run_sql_query(f'SELECT * FROM "{schema}"."{table}"')
        tables[name] = Table(rows, {str(t["column_name"]): str(t["data_type"]).lower() for t in types})
    return tables


def _read(source: Any, cache: CacheBase) -> Phase:
    """`source.read(cache=cache)`, timed as a whole and per stream for the SQL load that ends it."""
    from airbyte.shared.sql_processor import SqlProcessorBase

    load_seconds: dict[str, float] = {}
    write_stream_data = SqlProcessorBase.write_stream_data

    def timed(self: Any, stream_name: str, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return write_stream_data(self, stream_name, **kwargs)
        finally:
            load_seconds[stream_name] = load_seconds.get(stream_name, 0.0) + time.perf_counter() - began

    started_ms = _now_ms()
    began = time.perf_counter()
    error: Optional[BaseException] = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SqlProcessorBase, "write_stream_data", timed)
        try:
            source.read(cache=cache)
        except Exception as caught:  # the checks report it; a crash is one of the outcomes under test
            error = caught
    return Phase(started_ms, time.perf_counter() - began, load_seconds, error)


def run_scenario(
    label: str,
    cache: CacheBase,
    before_reads: Optional[Callable[[dict[str, StreamSpec]], None]] = None,
    emulator_config: Optional[EmulatorConfig] = None,
) -> Scenario:
    """First read, changes, incremental read, with a snapshot of the cache and the ground truth after each read.

    `before_reads` gets the discovered streams before the first read (to patch PyAirbyte for them, say).
    """
    import airbyte as ab

    executable = Path(sys.executable).with_name("source-dixa")
    assert executable.exists(), f"{executable} is missing: install this connector into {sys.prefix}"
    config = emulator_config or EmulatorConfig(conversations=150, messages_per_conversation=2.0)
    with DixaEmulator(config) as emulator:
        # local_executable: without it, get_source would install Airbyte's own source-dixa from PyPI.
        source = ab.get_source("source-dixa", config=connector_config(emulator), local_executable=executable)
        source.check()
        source.select_all_streams()
        specs = stream_specs(source)
        if before_reads is not None:
            before_reads(specs)

        def phase() -> Phase:
            result = _read(source, cache)
            result.tables = _snapshot(cache, specs)
            result.truth = {
                name: bounded(emulator_records(emulator, name), spec, result.started_ms) for name, spec in specs.items()
            }
            return result

        scenario = Scenario(label, specs, cache.processor.normalizer.normalize, phase())
        if scenario.first.error is None:
            # Change data the way a live account does, after the first read's end: a reply is a new message and
            # updates its conversation. (Not add_conversations: it back-dates the new conversations' messages,
            # which an incremental message_export rightly never sees.)
            at_ms = _now_ms() + 1
            replied = [record["id"] for record in emulator.conversations()[::25]]
            new_messages = emulator.reply_to_conversations(replied, at_ms)
            new_events = emulator.add_activity_events(5, at_ms)
            new_agents = emulator.add_agents(2)
            agent_id = emulator.records("agents")[0]["id"]
            renamed = emulator.update_record("agents", agent_id, displayName="Zoë Renamed", phoneNumber="004570707070")
            removed_tag = emulator.records("tags")[0]["id"]
            emulator.remove_record("tags", removed_tag)
            scenario.changes = Changes(at_ms, replied, new_messages, new_events, new_agents, renamed, removed_tag)
            time.sleep(0.01)  # the second read's "now" must be past at_ms
            scenario.second = phase()
            # PyAirbyte's default write strategy merges by primary key (airbyte/strategies.py, AUTO), full-refresh
            # streams included: rows the second read no longer sees (the removed tag) stay from the first.
            for name, spec in specs.items():
                merged = {_key_of(r, spec, list(spec.key)): r for r in scenario.first.truth[name]}
                merged.update((_key_of(r, spec, list(spec.key)), r) for r in scenario.second.truth[name])
                scenario.second.truth[name] = list(merged.values())
    record_timing(scenario)
    return scenario


# ---- checks: each returns the problems it found ------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def normalized_value(value: Any, prop: dict[str, Any]) -> Any:
    """A value from the truth or from SQL, in a form both sides share for the declared type."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    declared = prop.get("type", [])
    types = ({declared} if isinstance(declared, str) else set(declared)) - {"null"}
    try:
        if types == {"integer"} and not isinstance(value, (bool, datetime)):
            return int(value)
        if types == {"number"} and not isinstance(value, bool):
            return float(value)
    except (TypeError, ValueError):
        return value  # not a number: it will not equal the other side, and the mismatch shows it as it is
    if types == {"boolean"}:
        return value
    if types == {"string"}:
        if prop.get("format") == "date-time":
            return as_us(value)
        if prop.get("format") == "date":
            return value.isoformat() if isinstance(value, date) else str(value)[:10]
        return value  # strings compare exactly: no str() of whatever SQL returned
    return _canonical(value)


def _key_of(row: dict[str, Any], spec: StreamSpec, columns: list[str]) -> tuple[Any, ...]:
    return tuple(
        normalized_value(row.get(column), spec.properties.get(name, {}))
        for name, column in zip(spec.key, columns, strict=True)
    )


def check_rows(scenario: Scenario, phase: Phase) -> list[str]:
    """Every stream has a table; its keys are unique and equal the truth's, row for row."""
    problems: list[str] = []
    for name, spec in scenario.specs.items():
        table = phase.tables.get(name)
        if table is None:
            problems.append(f"{name}: no table in the cache")
            continue
        columns = [scenario.normalize(part) for part in spec.key]
        got = Counter(_key_of(row, spec, columns) for row in table.rows)
        expected = Counter(_key_of(record, spec, list(spec.key)) for record in phase.truth[name])
        duplicates = [key for key, count in got.items() if count > 1]
        if duplicates:
            problems.append(f"{name}: {len(duplicates)} duplicate keys, e.g. {duplicates[:3]}")
        if set(got) != set(expected):
            missing, extra = set(expected) - set(got), set(got) - set(expected)
            problems.append(f"{name}: {len(missing)} keys missing, e.g. {sorted(missing)[:3]}; {len(extra)} extra")
        if len(table.rows) != len(phase.truth[name]):
            problems.append(f"{name}: {len(table.rows)} rows, the emulator has {len(phase.truth[name])}")
    if not any(phase.truth.values()):
        problems.append("the emulator served no records at all: nothing was checked")
    return problems


# data_type as information_schema spells it, PostgreSQL and DuckDB, by declared JSON type.
EXPECTED_SQL_TYPES = {
    "integer": {"bigint"},
    "array": {"json"},
    "object": {"json"},
    "string": {"character varying", "varchar"},
    "boolean": {"boolean"},
    # PyAirbyte 0.71 makes these naive (PostgreSQL `timestamp without time zone`, DuckDB `TIMESTAMP`) holding UTC;
    # the value checks compare the instants.
    "date-time": {"timestamp with time zone", "timestamp without time zone", "timestamp"},
}


def check_column_types(scenario: Scenario, phase: Phase) -> list[str]:
    """Millisecond (integer) fields are BIGINT, arrays and objects JSON, strings VARCHAR, booleans BOOLEAN."""
    problems: list[str] = []
    for name, spec in scenario.specs.items():
        table = phase.tables.get(name)
        if table is None:
            problems.append(f"{name}: no table in the cache")
            continue
        for column in spec.properties:
            types = spec.declared_types(column)
            if len(types) != 1:
                continue  # unions: PyAirbyte's choice, not ours to pin
            kind = next(iter(types))
            if kind == "string" and "format" in spec.properties[column]:
                kind = spec.properties[column]["format"]
            expected = EXPECTED_SQL_TYPES.get(kind)
            got = table.column_types.get(scenario.normalize(column))
            if expected is not None and got not in expected:
                problems.append(
                    f"{name}.{column}: declared {sorted(types)}, SQL type {got}, expected {sorted(expected)}"
                )
    return problems


@dataclass
class Mismatch:
    stream: str
    key: tuple[Any, ...]
    column: str
    expected: Any
    got: Any

    def __str__(self) -> str:
        return f"{self.stream}{list(self.key)}.{self.column}: expected {self.expected!r}, got {self.got!r}"


def value_mismatches(scenario: Scenario, phase: Phase, strings: bool) -> list[Mismatch]:
    """Cell by cell against the truth: the plain string columns (strings=True) or every other declared column."""
    mismatches: list[Mismatch] = []
    for name, spec in scenario.specs.items():
        table = phase.tables.get(name)
        if table is None:
            continue
        key_columns = [scenario.normalize(part) for part in spec.key]
        by_key = {_key_of(row, spec, key_columns): row for row in table.rows}
        for record in phase.truth[name]:
            key = _key_of(record, spec, list(spec.key))
            row = by_key.get(key)
            if row is None:
                continue  # check_rows reports it
            for column, prop in spec.properties.items():
                if spec.is_plain_string(column) != strings:
                    continue
                expected = normalized_value(record.get(column), prop)
                got = normalized_value(row.get(scenario.normalize(column)), prop)
                if expected != got:
                    mismatches.append(Mismatch(name, key, column, expected, got))
    return mismatches


def is_pandas_number_guess(mismatch: Mismatch) -> bool:
    """The text became a number: "+4512345678" -> "4512345678.0", "0045..." -> "45..." (same value, other text)."""
    expected, got = mismatch.expected, mismatch.got
    if not isinstance(expected, str) or got is None:
        return False
    try:
        return float(expected) == float(str(got))
    except ValueError:
        return False


def phone_like_values(phase: Phase, scenario: Scenario) -> Counter[str]:
    """How many phone-like strings ("+45...", "00...") the truth holds, by prefix: the strings check needs some."""
    found: Counter[str] = Counter()
    for name, spec in scenario.specs.items():
        for record in phase.truth[name]:
            for column in spec.properties:
                value = record.get(column)
                if spec.is_plain_string(column) and isinstance(value, str) and PHONE_LIKE.match(value):
                    found[value[:1] if value.startswith("+") else value[:2]] += 1
    return found


def check_changes(scenario: Scenario, phase: Phase) -> list[str]:
    """What the emulator changed between the reads, by name: updated rows carry their new cursor and values, new
    rows are there, and a removed row stays (PyAirbyte merges). The truth comparison covers it too; this names it."""
    changes = scenario.changes
    if changes is None:
        return ["no changes were made: the first read failed"]
    problems: list[str] = []
    streams = ("conversation_export", "message_export", "activity_logs", "agents", "tags")
    if any(name not in phase.tables for name in streams):
        return [f"one of {streams} has no table in the cache"]
    conversations = {row["id"]: row for row in phase.tables["conversation_export"].rows}
    messages = {row["id"]: row for row in phase.tables["message_export"].rows}
    events = {row["id"] for row in phase.tables["activity_logs"].rows}
    agents = {row["id"]: row for row in phase.tables["agents"].rows}
    tags = {row["id"] for row in phase.tables["tags"].rows}
    if not set(changes.new_activity_events) <= events:
        problems.append(f"activity_logs: new events {sorted(set(changes.new_activity_events) - events)} missing")
    if not set(changes.new_agents) <= set(agents):
        problems.append(f"agents: new agents {sorted(set(changes.new_agents) - set(agents))} missing")
    renamed = agents.get(changes.renamed_agent["id"], {})
    # Its new phone number ("00...") is the strings check's business, where pandas' number guessing is expected.
    got = renamed.get(scenario.normalize("displayName"))
    if got != changes.renamed_agent["displayName"]:
        problems.append(
            f"agents: the changed agent's displayName is {got!r}, not {changes.renamed_agent['displayName']!r}"
        )
    if changes.removed_tag not in tags:
        problems.append(
            f"tags: the removed tag {changes.removed_tag} is gone: PyAirbyte's default no longer merges full-refresh "
            "streams with a primary key; update the harness and the README's note on deletions"
        )
    stale = [
        cid for cid in changes.replied_conversations if conversations.get(cid, {}).get("updated_at") != changes.at_ms
    ]
    if stale:
        problems.append(f"conversation_export: {len(stale)} replied conversations lack updated_at={changes.at_ms}")
    lost = [mid for mid in changes.new_messages if messages.get(mid, {}).get("created_at") != changes.at_ms]
    if lost:
        problems.append(f"message_export: {len(lost)} of {len(changes.new_messages)} new messages missing")
    if not changes.replied_conversations or not changes.new_messages:
        problems.append("the emulator changed nothing: the incremental read was not tested")
    return problems


# ---- verdicts: raise KnownPyAirbyteBug for a known bug's signature, AssertionError for anything else -------------


def _fail(problems: Iterable[str], what: str) -> None:
    problems = list(problems)
    if problems:
        raise AssertionError(f"{what}:\n  " + "\n  ".join(problems[:20]))


def require_read_ok(phase: Optional[Phase], what: str) -> Phase:
    if phase is None:
        raise AssertionError(f"{what}: not run, the first read failed")
    if phase.error is not None:
        text = str(phase.error)
        frames = {frame.name for frame in traceback.extract_tb(phase.error.__traceback__)}
        if DATETIME_INTO_BIGINT.search(text) or frames & PANDAS_DATE_GUESSING:
            first_line = text.splitlines()[0][:300] if text else ""
            raise KnownPyAirbyteBug(f"{what} crashed ({PR_DATES}): {type(phase.error).__name__}: {first_line}")
        raise AssertionError(f"{what} failed: {type(phase.error).__name__}: {text[:2000]}")
    return phase


def verify_sync(scenario: Scenario, second: bool) -> None:
    """Rows, ids, no duplicates, SQL types, and every non-string value equal to the truth (+ the changes, second)."""
    what = "incremental read" if second else "first read"
    phase = require_read_ok(scenario.first, "first read")
    if second:
        phase = require_read_ok(scenario.second, what)
    _fail(check_rows(scenario, phase), f"{scenario.label}, {what}: rows")
    _fail(check_column_types(scenario, phase), f"{scenario.label}, {what}: column types")
    _fail(map(str, value_mismatches(scenario, phase, strings=False)), f"{scenario.label}, {what}: values")
    if second:
        _fail(check_changes(scenario, phase), f"{scenario.label}, {what}: changes")


def verify_strings(scenario: Scenario) -> None:
    """Every plain string, phone-like ones included, arrives byte for byte, after both reads."""
    phase = require_read_ok(scenario.first, "first read")
    phase = require_read_ok(scenario.second, "incremental read")
    phones = phone_like_values(phase, scenario)
    assert phones["+"] > 0 and phones["00"] > 0, f"the emulator served too few phone numbers to test: {phones}"
    mismatches = value_mismatches(scenario, phase, strings=True)
    if mismatches and all(is_pandas_number_guess(m) for m in mismatches):
        columns = sorted({f"{m.stream}.{m.column}" for m in mismatches})
        REPORT.append(f"{scenario.label}: {len(mismatches)} strings lost their text in {', '.join(columns)}")
        REPORT.append(f"{scenario.label}: e.g. {mismatches[0]}")
        raise KnownPyAirbyteBug(
            f"{len(mismatches)} numeric-looking strings became numbers (pandas dtype guessing in PyAirbyte's "
            f"pd.read_json call) in {columns}, e.g. {mismatches[0]}"
        )
    _fail(map(str, mismatches), f"{scenario.label}: strings")


# ---- what the run measured, printed at the end of the pytest run -------------------------------------------------

REPORT: list[str] = []


def record_timing(scenario: Scenario) -> None:
    def one(phase: Optional[Phase]) -> str:
        if phase is None:
            return "not run"
        rows = sum(len(t.rows) for t in phase.tables.values())
        outcome = "ok" if phase.error is None else f"FAILED ({type(phase.error).__name__})"
        loads = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sorted(phase.load_seconds.items()))
        total = sum(phase.load_seconds.values())
        return f"{phase.seconds:.1f} s in all, {outcome}, {rows} rows in the cache; SQL load {total:.1f} s: {loads}"

    REPORT.append(f"{scenario.label}, first read: {one(scenario.first)}")
    REPORT.append(f"{scenario.label}, incremental read: {one(scenario.second)}")


def record_column_types(scenario: Scenario) -> None:
    phase = scenario.second or scenario.first
    for name, table in phase.tables.items():
        by_type: dict[str, list[str]] = {}
        for column, data_type in table.column_types.items():
            by_type.setdefault(data_type, []).append(column)
        listed = "; ".join(f"{t}: {', '.join(sorted(c))}" for t, c in sorted(by_type.items()))
        REPORT.append(f"{scenario.label}, {name} column types: {listed}")


class _ReportPlugin:
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if REPORT:
            terminalreporter.section("PyAirbyte: load times and SQL column types")
            for line in REPORT:
                terminalreporter.write_line(line)


def register_report(config: pytest.Config) -> None:
    """Print REPORT in pytest's terminal summary, once per session."""
    if not config.pluginmanager.has_plugin("dixa-pyairbyte-report"):
        config.pluginmanager.register(_ReportPlugin(), "dixa-pyairbyte-report")


@contextlib.contextmanager
def pyairbyte_environment(logs: Path) -> Iterator[None]:
    """No registry look-ups, no telemetry, logs under `logs`; skips the test when PyAirbyte is not installed."""
    with pytest.MonkeyPatch.context() as patch:
        # Set before the first `import airbyte`: PyAirbyte reads some of them at import time.
        patch.setenv("AIRBYTE_OFFLINE_MODE", "1")
        patch.setenv("DO_NOT_TRACK", "1")
        patch.setenv("AIRBYTE_LOGGING_ROOT", str(logs))
        pytest.importorskip("airbyte", reason="PyAirbyte is installed in .venv-pyairbyte by `make pyairbyte-test`")
        yield
