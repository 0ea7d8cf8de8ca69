"""Production hardening, end to end: learning a rate limit lower than configured, truthful logs, the safety lag."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from integration_tests.conftest import DAY_MS, CliResult, Workspace, final_state
from integration_tests.emulator import DixaEmulator

MINUTE_MS = 60_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _log_lines(result: CliResult, level: str) -> list[str]:
    return [m["log"]["message"] for m in result.messages if m["type"] == "LOG" and m["log"]["level"] == level]


def _assert_healthy(result: CliResult) -> None:
    """A sync that succeeded says so truthfully: exit 0, no ERROR line, no traceback anywhere."""
    assert result.returncode == 0, result.stderr[-2000:]
    assert _log_lines(result, "ERROR") == []
    assert result.errors() == []
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_exports_learn_a_limit_six_times_lower_than_configured(workspace: Workspace, emulator: DixaEmulator) -> None:
    """60 a minute configured, 10 a minute allowed, no Retry-After: a few 429s, then Dixa's pace, nothing lost."""
    now_ms = _now_ms()
    start_ms = now_ms - 30 * DAY_MS + MINUTE_MS  # 30 one-day windows up to now
    added = [emulator.add_conversations(2, start_ms + day * DAY_MS + 3_600_000)[0] for day in range(30)]
    emulator.config.rate_limit = 10
    emulator.config.rate_window_s = 60.0
    emulator.config.retry_after_s = None
    workspace.config.update(
        start_date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_ms / 1000)),
        batch_size=1,
        requests_per_minute=60,
    )
    started = time.monotonic()
    result = workspace.run("read", catalog=workspace.catalog(), timeout_s=400)
    elapsed_s = time.monotonic() - started
    _assert_healthy(result)
    served = [r for r in emulator.request_log if r.status == 200]
    limited = [r for r in emulator.request_log if r.status == 429]
    print(f"\nexports 60/min vs 10/min: {len(served)} served, {len(limited)} x 429, {elapsed_s:.1f} s (limit 234 s)")
    assert len(served) == 30
    assert len(limited) <= 5, len(limited)
    # 30 requests at 10 a minute take 3 minutes.
    assert elapsed_s <= 1.3 * 180, elapsed_s
    ids = result.ids("conversation_export")
    assert set(added) <= set(ids)
    assert set(ids) == emulator.expected_conversation_ids(start_ms, now_ms + 60 * MINUTE_MS)
    assert max(Counter(ids).values()) == 1
    warnings = _log_lines(result, "WARN")
    assert any("slowing to 10 requests a minute" in line for line in warnings), warnings
    summary = [line for line in _log_lines(result, "INFO") if line.startswith("conversation_export: 3")]
    assert summary and f"{len(limited)} x 429" in summary[0], summary


def test_a_sync_with_retried_faults_and_rate_limits_logs_no_error(workspace: Workspace, emulator: DixaEmulator) -> None:
    emulator.config.dixa_retry_after_s = 0.01
    emulator.config.retry_after_fractional = True
    # More 429s in a row than the CDK retries one request: our loop waits on, the CDK's give-up is not an error.
    emulator.inject("429", "429", "429", "429", "429", "500", "503", "reset", "truncate", path_prefix="/v1/endusers")
    result = workspace.run("read", catalog=workspace.catalog(("end_users", "teams")))
    _assert_healthy(result)
    assert sum(1 for r in emulator.request_log if r.status == 429) == 5
    assert len(result.records("end_users")) == len(emulator.records("end_users"))
    # The one slowdown is the one WARN line.
    assert [line for line in _log_lines(result, "WARN") if "429" in line] == [
        line for line in _log_lines(result, "WARN") if "slowing to" in line
    ]
    assert len([line for line in _log_lines(result, "WARN") if "slowing to" in line]) == 1


def test_a_sync_that_fails_still_reports_at_error_with_its_message(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    emulator.inject("401")
    result = workspace.run("read", catalog=workspace.catalog())
    assert result.returncode != 0
    errors = _log_lines(result, "ERROR")
    assert any("Dixa rejected the API token (HTTP 401)" in line for line in errors), errors
    assert result.errors()[0]["message"].startswith("Dixa rejected the API token (HTTP 401).")


@pytest.mark.slow
def test_safety_lag_keeps_late_records_that_a_zero_lag_loses(workspace: Workspace, emulator: DixaEmulator) -> None:
    """Dixa shows each change 60 s late; syncs run every 20 s. A lag of 0 moves state past changes it could not
    see yet and loses them for good; a lag of 2 minutes reads every one of them once."""
    emulator.config.visibility_delay_s = 60.0
    catalog = workspace.catalog()
    start_ms = _now_ms() - 10 * MINUTE_MS
    workspace.config.update(start_date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_ms / 1000)))
    lags = {0: workspace.config | {"safety_lag_minutes": 0}, 2: workspace.config | {"safety_lag_minutes": 2}}
    states: dict[int, object] = {0: None, 2: None}
    seen: dict[int, list[int]] = {0: [], 2: []}
    changed: list[int] = []
    rounds = 9  # every 20 s: the last round, at 160 s, reads up to 40 s, past the last change (at 20 s)
    for round_number in range(rounds):
        round_started = time.monotonic()
        if round_number < 2:
            changed += emulator.add_conversations(3, _now_ms())
        for lag, config in lags.items():
            result = workspace.run("read", catalog=catalog, state=states[lag], config=config)
            _assert_healthy(result)
            seen[lag] += result.ids("conversation_export")
            states[lag] = final_state(result) or states[lag]
        if round_number < rounds - 1:
            time.sleep(max(0.0, 20.0 - (time.monotonic() - round_started)))
    print(
        f"\nvisibility 60 s, syncs every 20 s: {len(changed)} changed; lag 2 min lost "
        f"{len(set(changed) - set(seen[2]))}, lag 0 lost {len(set(changed) - set(seen[0]))}"
    )
    assert set(changed) <= set(seen[2]), sorted(set(changed) - set(seen[2]))
    assert max(Counter(seen[2]).values()) == 1
    lost = set(changed) - set(seen[0])
    assert lost, "with no lag, changes that show up late should be lost: the test could not fail"
