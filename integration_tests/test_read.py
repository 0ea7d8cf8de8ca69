"""End-to-end: the real CLI against the emulator over HTTP on 127.0.0.1, compared with its ground truth."""

from __future__ import annotations

import itertools
import subprocess
import time
from collections import Counter

import pytest

from integration_tests.cli import read_killed_after
from integration_tests.conftest import DAY_MS, STREAMS, Workspace, cli_command, final_state
from integration_tests.emulator import DixaEmulator

START_MS = 1_735_689_600_000  # 2025-01-01, the workspace's start_date


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_full_refresh_reads_every_record_once_across_many_windows(workspace: Workspace, emulator: DixaEmulator) -> None:
    before_ms = _now_ms()
    result = workspace.run("read", catalog=workspace.catalog(sync_mode="full_refresh"))
    assert result.returncode == 0, result.stderr
    ids = result.ids("conversation_export")
    assert Counter(ids).most_common(1)[0][1] == 1
    assert set(ids) == emulator.expected_conversation_ids(START_MS, before_ms)
    windows = [line for line in result.logs() if line.startswith("conversation_export: window ")]
    assert len(windows) > 60  # 7-day windows from 2025-01-01 to today


def test_incremental_emits_one_state_per_window_and_resumes_with_updates_only(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    catalog = workspace.catalog()
    first = workspace.run("read", catalog=catalog)
    assert first.returncode == 0, first.stderr
    states = first.states("conversation_export")
    windows = [line for line in first.logs() if line.startswith("conversation_export: window ")]
    assert len(states) == len(windows)
    assert [s["updated_at"] for s in states] == sorted(s["updated_at"] for s in states)
    resume_ms = states[-1]["updated_at"]

    changed_ms = _now_ms()
    updated = [c["id"] for c in emulator.conversations()[::17]]
    emulator.update_conversations(updated, changed_ms)
    added = emulator.add_conversations(5, changed_ms)
    second = workspace.run("read", catalog=catalog, state=final_state(first))
    assert second.returncode == 0, second.stderr
    assert sorted(second.ids("conversation_export")) == sorted(set(updated) | set(added))
    assert all(r["updated_at"] >= resume_ms for r in second.records("conversation_export"))

    third = workspace.run("read", catalog=catalog, state=final_state(second))
    assert third.returncode == 0
    assert third.records() == []
    requests_made = [r for r in emulator.request_log if r.path.endswith("conversation_export")]
    assert all(int(r.params["updated_after"]) >= resume_ms - 1 for r in requests_made[-2:])


def test_state_from_airbyte_legacy_connector_is_accepted(workspace: Workspace, emulator: DixaEmulator) -> None:
    resume_ms = START_MS + 30 * DAY_MS
    legacy_state = [
        {
            "type": "STREAM",
            "stream": {
                "stream_descriptor": {"name": "conversation_export"},
                "stream_state": {"updated_at": str(resume_ms)},
            },
        }
    ]
    result = workspace.run("read", catalog=workspace.catalog(), state=legacy_state)
    assert result.returncode == 0, result.stderr
    assert set(result.ids("conversation_export")) == emulator.expected_conversation_ids(resume_ms, _now_ms())


@pytest.mark.parametrize(("after_inclusive", "before_inclusive"), list(itertools.product([False, True], repeat=2)))
def test_boundary_records_are_emitted_once_under_every_bound_reading(
    workspace: Workspace, emulator: DixaEmulator, after_inclusive: bool, before_inclusive: bool
) -> None:
    emulator.config.after_inclusive = after_inclusive
    emulator.config.before_inclusive = before_inclusive
    # batch_size 1 puts a window boundary on every midnight, where the emulator seeds records.
    workspace.config["batch_size"] = 1
    workspace.config["start_date"] = "2025-01-01"
    on_boundary = {c["id"] for c in emulator.conversations() if c["updated_at"] % DAY_MS == 0}
    assert on_boundary, "the emulator seeds records exactly on midnight"
    before_ms = _now_ms()
    result = workspace.run("read", catalog=workspace.catalog(sync_mode="full_refresh"))
    assert result.returncode == 0, result.stderr
    ids = result.ids("conversation_export")
    assert len(ids) == len(set(ids))
    assert set(ids) == emulator.expected_conversation_ids(START_MS, before_ms)
    assert on_boundary <= set(ids)


def test_no_request_spans_more_than_31_days(workspace: Workspace, emulator: DixaEmulator) -> None:
    workspace.config["batch_size"] = 31
    result = workspace.run("read", catalog=workspace.catalog(("conversation_export", "message_export")))
    assert result.returncode == 0, result.stderr
    assert emulator.request_log and all(r.status == 200 for r in emulator.request_log)


def test_killed_sync_resumes_from_its_last_state_without_loss(workspace: Workspace, emulator: DixaEmulator) -> None:
    catalog = workspace.catalog(("conversation_export", "message_export"))
    config_path = workspace.write("config.json", workspace.config)
    before_ms = _now_ms()
    seen: dict[str, set[object]] = {"conversation_export": set(), "message_export": set()}
    state = None
    for kill_after_states in (3, 40, 90, None):
        args = [*cli_command(), "read", "--config", str(config_path), "--catalog", str(catalog)]
        if state:
            args += ["--state", str(workspace.write("state.json", state))]
        messages = read_killed_after(args, kill_after_states)
        for m in messages:
            if m["type"] == "RECORD":
                seen[m["record"]["stream"]].add(m["record"]["data"]["id"])
        latest = {
            m["state"]["stream"]["stream_descriptor"]["name"]: m["state"] for m in messages if m["type"] == "STATE"
        }
        merged = {s["stream"]["stream_descriptor"]["name"]: s for s in (state or [])}
        merged.update(latest)
        state = list(merged.values())
    assert seen["conversation_export"] == emulator.expected_conversation_ids(START_MS, before_ms)
    assert seen["message_export"] == emulator.expected_message_ids(START_MS, before_ms)


def test_bad_token_is_a_config_error_and_never_printed(workspace: Workspace) -> None:
    workspace.config["api_token"] = "wrong-token-5f2b9c1e"
    result = workspace.run("read", catalog=workspace.catalog(), debug=True)
    assert result.returncode != 0
    errors = result.errors()
    assert errors and errors[0]["failure_type"] == "config_error"
    assert errors[0]["message"].startswith("Dixa rejected the API token (HTTP 401)")
    assert "wrong-token-5f2b9c1e" not in result.stdout + result.stderr
    assert result.state_messages() == []


def test_check_succeeds_with_one_small_request_per_service(workspace: Workspace, emulator: DixaEmulator) -> None:
    result = workspace.run("check")
    assert result.connection_status()["status"] == "SUCCEEDED"
    assert [r.path for r in emulator.request_log] == ["/v1/conversation_export", "/v1/teams"]
    params = emulator.request_log[0].params
    assert int(params["updated_before"]) - int(params["updated_after"]) <= 61_000


def test_check_with_bad_token_fails_with_an_actionable_sentence(workspace: Workspace) -> None:
    workspace.config["api_token"] = "wrong-token-5f2b9c1e"
    result = workspace.run("check")
    status = result.connection_status()
    assert status["status"] == "FAILED"
    assert status["message"].startswith("Dixa rejected the API token (HTTP 401).")
    assert "Traceback" not in status["message"]


def test_check_against_a_port_with_nothing_on_it_fails_fast(workspace: Workspace) -> None:
    workspace.config["api_url"] = "http://127.0.0.1:9"
    started = time.monotonic()
    status = workspace.run("check").connection_status()
    assert status["status"] == "FAILED"
    assert "Could not connect" in status["message"]
    assert time.monotonic() - started < 30


def test_spec_and_discover(workspace: Workspace) -> None:
    spec = workspace.run("spec")
    properties = next(m for m in spec.messages if m["type"] == "SPEC")["spec"]["connectionSpecification"]["properties"]
    assert properties["api_token"]["airbyte_secret"] is True
    catalog = next(m for m in workspace.run("discover").messages if m["type"] == "CATALOG")["catalog"]
    streams = {s["name"]: s for s in catalog["streams"]}
    assert set(streams) == set(STREAMS)
    for name, (cursor, key) in STREAMS.items():
        assert streams[name]["source_defined_primary_key"] == [[field] for field in key], name
        assert streams[name].get("default_cursor_field", []) == ([cursor] if cursor else []), name
        modes = ["full_refresh", "incremental"] if cursor else ["full_refresh"]
        assert streams[name]["supported_sync_modes"] == modes, name
        assert streams[name]["json_schema"]["additionalProperties"] is True, name


def test_two_stream_incremental_sync_tracks_each_stream_separately(
    workspace: Workspace, emulator: DixaEmulator
) -> None:
    catalog = workspace.catalog(("conversation_export", "message_export"))
    before_ms = _now_ms()
    first = workspace.run("read", catalog=catalog)
    assert first.returncode == 0, first.stderr
    assert set(first.ids("conversation_export")) == emulator.expected_conversation_ids(START_MS, before_ms)
    assert set(first.ids("message_export")) == emulator.expected_message_ids(START_MS, before_ms)
    assert {s["stream"]["stream_descriptor"]["name"] for s in first.state_messages()} == {
        "conversation_export",
        "message_export",
    }
    assert all(set(s) == {"created_at"} for s in first.states("message_export"))

    changed_ms = _now_ms()
    replied = [c["id"] for c in emulator.conversations()[::25]]
    replies = emulator.reply_to_conversations(replied, changed_ms)
    second = workspace.run("read", catalog=catalog, state=final_state(first))
    assert second.returncode == 0, second.stderr
    assert sorted(second.ids("conversation_export")) == sorted(replied)
    assert sorted(second.ids("message_export")) == sorted(replies)
    assert {r["csid"] for r in second.records("message_export")} == set(replied)


def test_demo_runs_end_to_end() -> None:
    import sys

    from integration_tests.conftest import ROOT

    process = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "run_demo.py")], capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    assert "Every record matches the emulator's ground truth" in process.stdout
