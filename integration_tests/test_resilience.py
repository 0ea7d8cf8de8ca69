"""Surviving the real API: faults, rate limits, oversized windows and bad input, end to end through the CLI."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import pytest

from integration_tests.conftest import DAY_MS, CliResult, Workspace, final_state
from integration_tests.emulator import DixaEmulator, EmulatorConfig

START_MS = 1_735_689_600_000  # 2025-01-01, the workspace's start_date
BOTH = ("conversation_export", "message_export")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _assert_exact(result: CliResult, emulator: DixaEmulator, since_ms: int, until_ms: int) -> None:
    for stream, expected in (
        ("conversation_export", emulator.expected_conversation_ids(since_ms, until_ms)),
        ("message_export", emulator.expected_message_ids(since_ms, until_ms)),
    ):
        ids = result.ids(stream)
        duplicates = [i for i, n in Counter(ids).items() if n > 1]
        assert duplicates == [], f"{stream} emitted twice: {duplicates[:5]}"
        assert set(ids) == expected, f"{stream}: {len(expected - set(ids))} missing, {len(set(ids) - expected)} extra"


def test_random_faults_on_a_fifth_of_requests_lose_and_repeat_nothing(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    emulator.config.fault_rate = 0.2
    emulator.config.fault_kinds = ("500", "502", "503", "504", "429", "reset", "truncate", "slow")
    emulator.config.slow_s = 0.2
    workspace.config["batch_size"] = 31
    before_ms = _now_ms()
    result = workspace.run("read", catalog=workspace.catalog(BOTH), timeout_s=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.errors() == []
    _assert_exact(result, emulator, START_MS, before_ms)
    faults = Counter(r.fault for r in emulator.request_log if r.fault)
    assert sum(faults.values()) >= 5, faults
    assert {"truncate", "reset"} & set(faults), faults


def test_window_the_server_cannot_serve_whole_is_split_and_read(
    workspace: Workspace, emulator: DixaEmulator, emulator_config: EmulatorConfig
) -> None:
    emulator.config.fail_span_over_ms = 8 * DAY_MS
    workspace.config["batch_size"] = 31
    before_ms = _now_ms()
    result = workspace.run("read", catalog=workspace.catalog(BOTH), timeout_s=300)
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_exact(result, emulator, START_MS, before_ms)
    assert any("splitting it into" in line for line in result.logs())


@pytest.mark.slow
def test_rate_limit_with_retry_after_is_honoured(workspace: Workspace, emulator: DixaEmulator) -> None:
    # About 46 requests against 30 a minute: one 429, then the rest of the sync keeps Dixa's pace.
    emulator.config.rate_limit = 30
    emulator.config.rate_window_s = 60.0
    emulator.config.retry_after_s = 0  # the seconds until a slot frees up
    workspace.config["batch_size"] = 31
    before_ms = _now_ms()
    result = workspace.run("read", catalog=workspace.catalog(BOTH), timeout_s=300)
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_exact(result, emulator, START_MS, before_ms)
    limited = [r for r in emulator.request_log if r.status == 429]
    assert limited, "the server's limit was reached"
    assert len(limited) <= 2, len(limited)
    served = [r.time_s for r in emulator.request_log if r.status == 200]
    # Retry-After was obeyed: never more than the limit in any minute of served requests.
    assert max(sum(1 for t in served if s <= t < s + 60.0) for s in served) <= 30


@pytest.mark.slow
def test_rate_limit_without_retry_after_backs_off_and_finishes(workspace: Workspace, emulator: DixaEmulator) -> None:
    emulator.config.rate_limit = 30
    emulator.config.rate_window_s = 60.0
    workspace.config["batch_size"] = 31
    workspace.config["requests_per_minute"] = 600
    before_ms = _now_ms()
    result = workspace.run("read", catalog=workspace.catalog(BOTH), timeout_s=300)
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_exact(result, emulator, START_MS, before_ms)
    limited = [r for r in emulator.request_log if r.status == 429]
    assert 1 <= len(limited) <= 2, len(limited)


@pytest.mark.slow
def test_pacing_holds_across_both_streams_with_no_429_and_near_minimum_time(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    """40 a minute on both sides (time-scaled from Dixa's 10): both streams share one budget, so the server never
    answers 429, no rolling minute holds more than 40 requests, and the sync takes within 20% of the minimum."""
    emulator.config.rate_limit = 40
    emulator.config.rate_window_s = 60.0
    workspace.config["requests_per_minute"] = 40
    workspace.config["batch_size"] = 31
    before_ms = _now_ms()
    started = time.monotonic()
    result = workspace.run("read", catalog=workspace.catalog(BOTH), timeout_s=400)
    elapsed_s = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_exact(result, emulator, START_MS, before_ms)
    log = emulator.request_log
    assert {r.path for r in log} == {"/v1/conversation_export", "/v1/message_export"}
    assert len(log) > 40
    assert [r for r in log if r.status == 429] == []
    sent = [r.time_s for r in log]
    assert max(sum(1 for t in sent if s <= t < s + 60.0) for s in sent) <= 40
    minimum_s = math.floor((len(log) - 1) / 40) * 60.0
    assert minimum_s <= elapsed_s <= 1.2 * minimum_s, (len(log), elapsed_s)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("not_json", "is not a JSON array (Content-Type 'text/html'"),
        ("json_object", "is not a JSON array (it starts with b'{'"),
        ("missing_cursor", "a record has no 'updated_at'"),
    ],
)
def test_unusable_200_answers_fail_clearly_without_advancing_state(
    workspace: Workspace, emulator: DixaEmulator, fault: str, expected: str
) -> None:
    catalog = workspace.catalog()
    first = workspace.run("read", catalog=catalog)
    state = final_state(first)
    changed_ms = _now_ms()
    emulator.add_conversations(3, changed_ms)
    emulator.inject(fault, fault, fault)  # every attempt at the next window
    result = workspace.run("read", catalog=catalog, state=state)
    assert result.returncode != 0
    errors = result.errors()
    assert errors and expected in errors[0]["message"]
    assert "Traceback" not in errors[0]["message"]
    assert result.state_messages() == [] or all(
        s["updated_at"] <= state[0]["stream"]["stream_state"]["updated_at"]
        for s in result.states("conversation_export")
    )
    retried = workspace.run("read", catalog=catalog, state=state)
    assert retried.returncode == 0
    assert len(retried.ids("conversation_export")) == 3


def test_unexpected_content_type_with_a_good_body_is_read(workspace: Workspace, emulator: DixaEmulator) -> None:
    emulator.inject("wrong_content_type")
    before_ms = _now_ms()
    result = workspace.run("read", catalog=workspace.catalog(), timeout_s=120)
    assert result.returncode == 0
    assert set(result.ids("conversation_export")) == emulator.expected_conversation_ids(START_MS, before_ms)
    assert any("Content-Type 'text/plain'" in line for line in result.logs())


BAD_CONFIGS: list[tuple[str, Any, str]] = [
    ("start_date", "2024-13-01", "start_date '2024-13-01' is not a date"),
    ("start_date", "01/05/2024", "start_date '01/05/2024' is not a date"),
    ("start_date", "soon", "start_date 'soon' is not a date"),
    ("start_date", "2999-01-01", "start_date 2999-01-01 is in the future"),
    ("batch_size", 0, "batch_size must be a whole number of days from 1 to 31; got 0."),
    ("batch_size", 32, "batch_size must be a whole number of days from 1 to 31; got 32."),
    ("batch_size", "abc", "batch_size must be a whole number of days from 1 to 31; got 'abc'."),
    ("api_url", "not a url", "api_url 'not a url' is not a URL"),
    ("api_url", "http://0.0.0.0:8080", "api_url must use https"),
]


@pytest.mark.parametrize(("key", "value", "expected"), BAD_CONFIGS)
def test_bad_config_fails_check_with_its_own_sentence(
    workspace: Workspace, key: str, value: Any, expected: str
) -> None:
    workspace.config[key] = value
    result = workspace.run("check")
    status = result.connection_status()
    assert status["status"] == "FAILED"
    assert status["message"].startswith(expected)
    assert "Traceback" not in status["message"] and workspace.config["api_token"] not in result.stdout


@pytest.mark.parametrize(("key", "value", "expected"), BAD_CONFIGS[::3])
def test_bad_config_fails_read_as_config_error_before_any_request(
    workspace: Workspace, emulator: DixaEmulator, key: str, value: Any, expected: str
) -> None:
    workspace.config[key] = value
    result = workspace.run("read", catalog=workspace.catalog())
    assert result.returncode != 0
    errors = result.errors()
    assert errors and errors[0]["failure_type"] == "config_error"
    assert errors[0]["message"].startswith(expected)
    assert emulator.request_log == []
    assert result.records() == [] and result.state_messages() == []


def test_token_never_appears_in_debug_output_even_when_things_fail(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    emulator.inject("500", "truncate", "reset", "429", "401")
    token = workspace.config["api_token"]
    result = workspace.run("read", catalog=workspace.catalog(), debug=True)
    assert result.returncode != 0  # the final 401
    assert token not in result.stdout + result.stderr
    assert "Bearer ****" in result.stdout + result.stderr  # the debug request log ran, masked
