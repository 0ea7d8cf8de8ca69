"""End to end: the Dixa API streams through the real CLI against the emulator, compared with its ground truth."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from typing import Any

import pytest

from integration_tests.cli import read_killed_after
from integration_tests.conftest import (
    DIXA_API_STREAMS,
    STREAMS,
    CliResult,
    Workspace,
    cli_command,
    final_state,
)
from integration_tests.emulator import DixaEmulator, EmulatorConfig
from source_dixa.timestamps import iso_to_ms, normalize_iso

START_MS = 1_735_689_600_000  # 2025-01-01, the workspace's start_date
FULL_REFRESH = tuple(name for name in DIXA_API_STREAMS if STREAMS[name][0] is None)
TIMESTAMPS = {
    "agents": ("createdAt",),
    "end_users": ("createdAt",),
    "custom_attributes": ("createdAt", "updatedAt"),
    "agent_presence": ("requestTime", "lastSeen"),
    "activity_logs": ("activityTimestamp",),
}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _key(stream: str, record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(field) for field in STREAMS[stream][1])


def _expected_keys(emulator: DixaEmulator, stream: str) -> set[tuple[Any, ...]]:
    keys = set()
    for record in emulator.records(stream):
        if stream == "contact_endpoints":
            record = {**record, "endpoint": record.get("address") or record.get("number")}
        # The connector emits Dixa's timestamps as plain ISO-8601 UTC; presence's requestTime is part of its key.
        record = {**record, **{f: normalize_iso(record[f]) for f in TIMESTAMPS.get(stream, ()) if f in record}}
        keys.add(_key(stream, record))
    return keys


def _assert_exact(result: CliResult, emulator: DixaEmulator, streams: tuple[str, ...]) -> None:
    for stream in streams:
        keys = [_key(stream, record) for record in result.records(stream)]
        twice = [key for key, n in Counter(keys).items() if n > 1]
        assert twice == [], f"{stream} emitted twice: {twice[:5]}"
        expected = _expected_keys(emulator, stream)
        missing, extra = expected - set(keys), set(keys) - expected
        assert not missing and not extra, f"{stream}: {len(missing)} missing, {len(extra)} extra"
        assert keys, f"{stream}: the emulator serves records, the sync read none"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """A small account whose lists span many pages: the page cap is far below the 1,000 the connector asks for."""
    return EmulatorConfig(
        conversations=50,
        messages_per_conversation=1.0,
        start_ms=START_MS,
        end_ms=START_MS + 60 * 86_400_000,
        agents=40,
        end_users=230,
        activity_events=700,
        page_cap=7,
    )


def test_discover_lists_thirteen_streams_without_a_request(workspace: Workspace, emulator: DixaEmulator) -> None:
    catalog = next(m for m in workspace.run("discover").messages if m["type"] == "CATALOG")["catalog"]
    assert {s["name"] for s in catalog["streams"]} == set(STREAMS)
    assert emulator.request_log == []


def test_full_read_of_every_dixa_api_stream_equals_the_ground_truth_across_many_pages(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    result = workspace.run("read", catalog=workspace.catalog(DIXA_API_STREAMS, sync_mode="full_refresh"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.errors() == []
    _assert_exact(result, emulator, DIXA_API_STREAMS)
    pages = Counter(r.path for r in emulator.request_log if r.params.get("pageKey"))
    assert pages["/v1/endusers"] >= 230 // 7
    assert pages["/v1/conversations/activitylog"] > 0
    # Timestamps Dixa writes as "…Z[GMT]" or with no zone arrive as plain ISO-8601 UTC.
    for stream, fields in TIMESTAMPS.items():
        values = [r[f] for r in result.records(stream) for f in fields if r.get(f) is not None]
        assert values and all(v.endswith("Z") and "[" not in v for v in values), (stream, values[:3])
    tags = result.records("tags")
    assert {t.get("state") for t in tags} == {"Active", "Inactive"}


def test_twenty_percent_random_faults_lose_and_repeat_nothing(workspace: Workspace, emulator: DixaEmulator) -> None:
    emulator.config.fault_rate = 0.2
    emulator.config.fault_kinds = ("500", "502", "503", "504", "429", "reset", "truncate", "slow", "json_object")
    emulator.config.slow_s = 0.2
    emulator.config.dixa_retry_after_s = 0.01
    emulator.config.retry_after_fractional = True
    result = workspace.run("read", catalog=workspace.catalog(DIXA_API_STREAMS, sync_mode="full_refresh"), timeout_s=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.errors() == []
    _assert_exact(result, emulator, DIXA_API_STREAMS)
    faults = Counter(r.fault for r in emulator.request_log if r.fault)
    assert sum(faults.values()) >= 20, faults


def test_a_next_link_to_another_host_gets_no_request_and_the_token_goes_nowhere(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    with DixaEmulator(EmulatorConfig(conversations=1)) as trap:
        emulator.config.foreign_origin = trap.url
        emulator.inject("foreign_next", path_prefix="/v1/endusers")
        result = workspace.run("read", catalog=workspace.catalog(("end_users", "teams")), debug=True)
        assert trap.request_log == []
    assert result.returncode != 0
    (error,) = result.errors()[:1]
    assert "refusing to send the API token there" in error["message"]
    assert workspace.config["api_token"] not in result.stdout + result.stderr
    # The other stream still synced.
    assert _key("teams", result.records("teams")[0])


def test_a_next_link_that_loops_fails_instead_of_reading_forever(workspace: Workspace, emulator: DixaEmulator) -> None:
    emulator.inject("looping_next", path_prefix="/v1/agents")
    result = workspace.run("read", catalog=workspace.catalog(("agents",)), timeout_s=60)
    assert result.returncode != 0
    assert "a page it had already read" in result.errors()[0]["message"]
    assert len(emulator.requests("/v1/agents")) < 20
    ids = result.ids("agents")
    assert len(ids) == len(set(ids)), "the repeated page was emitted again"


def test_403_on_one_stream_fails_it_by_name_and_the_others_still_sync(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    emulator.config.forbidden_paths = ("/v1/tags",)
    others = ("agents", "teams", "queues")
    result = workspace.run("read", catalog=workspace.catalog(("tags", *others), sync_mode="full_refresh"))
    assert result.returncode != 0
    errors = [e for e in result.errors() if "tags" in e["message"]]
    assert errors and errors[0]["failure_type"] == "config_error"
    assert "grant the token access" in errors[0]["message"] and "deselect the tags stream" in errors[0]["message"]
    _assert_exact(result, emulator, others)


def test_a_team_deleted_between_the_two_calls_is_skipped_with_a_warning(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    teams = emulator.records("teams")
    gone = teams[0]["id"]
    emulator.config.gone_team_ids = (gone,)
    result = workspace.run("read", catalog=workspace.catalog(("team_members",)))
    assert result.returncode == 0, result.stderr[-2000:]
    got = {(r["team_id"], r["id"]) for r in result.records("team_members")}
    expected = {(r["team_id"], r["id"]) for r in emulator.records("team_members") if r["team_id"] != gone}
    assert got == expected and got
    assert any(gone in line and "skipped" in line for line in result.logs())


@pytest.mark.parametrize(
    ("from_inclusive", "to_inclusive", "order"),
    [
        (*bounds, order)
        for bounds, order in zip(
            itertools.product([False, True], repeat=2), ("asc", "desc", "shuffled", "shuffled"), strict=True
        )
    ],
)
def test_activity_log_is_exact_across_three_incremental_syncs_under_every_bound_reading(
    workspace: Workspace, emulator: DixaEmulator, from_inclusive: bool, to_inclusive: bool, order: str
) -> None:
    emulator.config.activity_from_inclusive = from_inclusive
    emulator.config.activity_to_inclusive = to_inclusive
    emulator.config.activity_order = order
    catalog = workspace.catalog(("activity_logs",))
    state: Any = None
    seen: list[str] = []
    since_ms = START_MS
    for sync in range(3):
        if sync:
            # New events between syncs: some now, some exactly on the previous sync's end (the saved state).
            emulator.add_activity_events(3, _now_ms())
            emulator.add_activity_events(2, since_ms)
        result = workspace.run("read", catalog=catalog, state=state)
        assert result.returncode == 0, result.stderr[-2000:]
        ids = result.ids("activity_logs")
        assert len(ids) == len(set(ids))
        # Nothing is added while a sync runs, so everything from the saved state on is due.
        assert set(ids) == emulator.expected_activity_ids(since_ms, _now_ms() + 1), f"sync {sync + 1}"
        seen += ids
        state = final_state(result)
        (saved,) = [s["stream"]["stream_state"] for s in state]
        since_ms = _iso_ms(saved["activityTimestamp"])
    assert len(seen) == len(set(seen))
    assert set(seen) == {r["id"] for r in emulator.records("activity_logs")}


def test_activity_log_with_nothing_new_sends_nothing(workspace: Workspace, emulator: DixaEmulator) -> None:
    catalog = workspace.catalog(("activity_logs",))
    first = workspace.run("read", catalog=catalog)
    second = workspace.run("read", catalog=catalog, state=final_state(first))
    assert second.returncode == 0
    assert second.records() == []


def test_a_killed_activity_sync_resumes_from_its_last_checkpoint_without_loss(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    catalog = workspace.catalog(("activity_logs",))
    config_path = workspace.write("config.json", workspace.config)
    before_ms = _now_ms()
    seen: set[str] = set()
    state: Any = None
    for kill_after_states in (1, 3, None):
        args = [*cli_command(), "read", "--config", str(config_path), "--catalog", str(catalog)]
        if state:
            args += ["--state", str(workspace.write("state.json", state))]
        messages = read_killed_after(args, kill_after_states)
        seen |= {m["record"]["data"]["id"] for m in messages if m["type"] == "RECORD"}
        states = [m["state"] for m in messages if m["type"] == "STATE"]
        state = states[-1:] or state
    assert seen == emulator.expected_activity_ids(START_MS, before_ms)


def _iso_ms(text: str) -> int:
    value = iso_to_ms(text)
    assert value is not None, text
    return value


@pytest.mark.slow
def test_dixa_api_learns_a_limit_four_times_lower_than_configured(workspace: Workspace, emulator: DixaEmulator) -> None:
    """40 a second configured, Dixa's 10 a second with burst 4 enforced, no Retry-After: nothing lost, few 429s."""
    emulator.config.dixa_rate_per_s = 10
    emulator.config.dixa_burst = 4
    emulator.config.dixa_retry_after_s = None
    workspace.config["dixa_api_requests_per_second"] = 40
    started = time.monotonic()
    result = workspace.run("read", catalog=workspace.catalog(DIXA_API_STREAMS, sync_mode="full_refresh"), timeout_s=300)
    elapsed_s = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    assert [m for m in result.messages if m["type"] == "LOG" and m["log"]["level"] == "ERROR"] == []
    assert "Traceback" not in result.stdout + result.stderr
    _assert_exact(result, emulator, DIXA_API_STREAMS)
    dixa = [r for r in emulator.request_log if r.api == "dixa"]
    limited = [r for r in dixa if r.status == 429]
    served = [r for r in dixa if r.status != 429]
    print(f"\ndixa api 40/s vs 10/s: {len(served)} served, {len(limited)} x 429, {elapsed_s:.1f} s")
    assert len(limited) <= 5, len(limited)
    assert len(served) > 100
    assert elapsed_s <= 1.3 * len(served) / 10 + 3.0, (elapsed_s, len(served))  # + the CLI's start-up


@pytest.mark.slow
def test_default_pace_against_the_documented_dixa_api_limit_draws_no_429(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    emulator.config.dixa_rate_per_s = 10
    emulator.config.dixa_burst = 4
    workspace.config.pop("dixa_api_requests_per_second")
    result = workspace.run("read", catalog=workspace.catalog(DIXA_API_STREAMS, sync_mode="full_refresh"), timeout_s=300)
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_exact(result, emulator, DIXA_API_STREAMS)
    print(f"\ndixa api defaults vs documented limit: {len(emulator.request_log)} requests")
    assert [r for r in emulator.request_log if r.status == 429] == []
