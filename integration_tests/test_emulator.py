"""Tests of the emulator's Exports API, its CLI and the pieces both APIs share, over real HTTP on 127.0.0.1.

The Dixa API side is tested in test_emulator_dixa_api.py.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from integration_tests.emulator import (
    CONVERSATION_PATH,
    DAY_MS,
    FAULT_KINDS,
    MESSAGE_PATH,
    DixaEmulator,
    EmulatorConfig,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "source_dixa" / "schemas"
FIXTURES = ROOT / "unit_tests" / "resource" / "http" / "response"

TOKEN = "test-token"
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
END_MS = START_MS + 20 * DAY_MS
CURSORS = {CONVERSATION_PATH: "updated_at", MESSAGE_PATH: "created_at"}
PREFIXES = {CONVERSATION_PATH: "updated", MESSAGE_PATH: "created"}


def small_config(**overrides: Any) -> EmulatorConfig:
    values: dict[str, Any] = {
        "token": TOKEN,
        "conversations": 120,
        "messages_per_conversation": 2.0,
        "start_ms": START_MS,
        "end_ms": END_MS,
        "slow_s": 0.2,
    }
    values.update(overrides)
    return EmulatorConfig(**values)


@pytest.fixture
def emulator() -> Iterator[DixaEmulator]:
    with DixaEmulator(small_config()) as running:
        yield running


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        yield http


def window(path: str, after: int | str, before: int | str) -> dict[str, str]:
    prefix = PREFIXES[path]
    return {f"{prefix}_after": str(after), f"{prefix}_before": str(before)}


def fetch(
    emu: DixaEmulator, http: requests.Session, path: str, after: int | str, before: int | str, stream: bool = False
) -> requests.Response:
    return http.get(emu.url + path, params=window(path, after, before), timeout=10, stream=stream)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def boundary_conversation(emu: DixaEmulator) -> dict[str, Any]:
    """A conversation exactly on a day boundary, strictly inside the data range."""
    return next(
        record
        for record in emu.conversations()
        if record["updated_at"] % DAY_MS == 0 and START_MS < record["updated_at"] < END_MS - DAY_MS
    )


# ---- lifecycle, transport ----------------------------------------------------------------------------------------


def test_emulator_binds_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        DixaEmulator(small_config(conversations=1), host="0.0.0.0")
    with DixaEmulator(small_config(conversations=1)) as emu:
        assert emu.url.startswith("http://127.0.0.1:")
        assert int(emu.url.rsplit(":", 1)[1]) > 0


def test_emulator_stop_is_idempotent_and_closes_the_port(session: requests.Session) -> None:
    emu = DixaEmulator(small_config(conversations=1))
    url = emu.start()
    assert session.get(url + CONVERSATION_PATH, params=window(CONVERSATION_PATH, START_MS, END_MS)).status_code == 200
    emu.stop()
    emu.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + CONVERSATION_PATH, timeout=2)


def test_emulator_keeps_connections_alive_across_errors(emulator: DixaEmulator) -> None:
    port = int(emulator.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        statuses: list[int] = []
        sockets: list[object] = []
        for query in ("", "?updated_after=1&updated_before=2"):
            connection.request("GET", CONVERSATION_PATH + query, headers={"Authorization": f"Bearer {TOKEN}"})
            response = connection.getresponse()
            response.read()
            assert response.version == 11
            assert response.getheader("Content-Length") is not None
            assert not response.will_close
            statuses.append(response.status)
            sockets.append(connection.sock)
        assert statuses == [400, 200]
        assert sockets[0] is sockets[1] is not None
    finally:
        connection.close()


def test_emulator_unknown_path_and_method(emulator: DixaEmulator, session: requests.Session) -> None:
    assert session.get(emulator.url + "/v1/nope", timeout=5).status_code == 404
    response = session.post(emulator.url + CONVERSATION_PATH, timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"


# ---- auth --------------------------------------------------------------------------------------------------------


def test_emulator_accepts_bearer_token(emulator: DixaEmulator, session: requests.Session) -> None:
    response = fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert response.status_code == 200
    assert emulator.request_log[-1].auth_ok


def test_emulator_accepts_legacy_basic_bearer_user(emulator: DixaEmulator) -> None:
    response = requests.get(
        emulator.url + MESSAGE_PATH, params=window(MESSAGE_PATH, START_MS, END_MS), auth=("bearer", TOKEN), timeout=5
    )
    assert response.status_code == 200
    assert isinstance(response.json(), list)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},  # the main API's raw-token style is not accepted here
        {"Authorization": f"Token {TOKEN}"},
        {"Authorization": "Basic " + "Zm9vOnRlc3QtdG9rZW4="},  # foo:test-token
        {"Authorization": "Basic not-base64!"},
    ],
)
def test_emulator_rejects_bad_credentials_with_empty_401(emulator: DixaEmulator, headers: dict[str, str]) -> None:
    response = requests.get(
        emulator.url + CONVERSATION_PATH, params=window(CONVERSATION_PATH, START_MS, END_MS), headers=headers, timeout=5
    )
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    assert emulator.request_log[-1].auth_ok is False


def test_emulator_token_can_change_at_runtime(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.token = "rotated"
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code == 401


def test_emulator_forbidden_exports_path_is_an_empty_403(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.forbidden_paths = (MESSAGE_PATH,)
    response = fetch(emulator, session, MESSAGE_PATH, START_MS, END_MS)
    assert (response.status_code, response.content) == (403, b"")
    assert emulator.request_log[-1].fault == "forbidden"
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code == 200


# ---- query validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (CONVERSATION_PATH, {}),
        (CONVERSATION_PATH, {"updated_after": str(START_MS)}),
        (CONVERSATION_PATH, {"updated_before": str(START_MS)}),
        (CONVERSATION_PATH, window(CONVERSATION_PATH, START_MS, START_MS + 31 * DAY_MS + 1)),
        (CONVERSATION_PATH, window(CONVERSATION_PATH, "2024-01-01", "2024-02-02")),
        (CONVERSATION_PATH, window(CONVERSATION_PATH, START_MS + 1, START_MS)),
        (CONVERSATION_PATH, window(CONVERSATION_PATH, "2024-1-1", "2024-01-10")),
        (CONVERSATION_PATH, window(CONVERSATION_PATH, "2024-02-30", "2024-03-05")),
        (CONVERSATION_PATH, window(CONVERSATION_PATH, "2024-01-01T00:00:00Z", "2024-01-10")),
        (CONVERSATION_PATH, window(CONVERSATION_PATH, "1704067200000.0", "1704067300000")),
        (CONVERSATION_PATH, window(CONVERSATION_PATH, "-1", "1704067300000")),
        (CONVERSATION_PATH, window(CONVERSATION_PATH, "", "1704067300000")),
        (CONVERSATION_PATH, window(CONVERSATION_PATH, "abc", "1704067300000")),
        (CONVERSATION_PATH, {**window(CONVERSATION_PATH, START_MS, END_MS), "csids": "1000,1001"}),
        (MESSAGE_PATH, {"updated_after": str(START_MS), "updated_before": str(END_MS)}),
        (MESSAGE_PATH, window(MESSAGE_PATH, START_MS, START_MS + 32 * DAY_MS)),
    ],
)
def test_emulator_rejects_invalid_queries_with_empty_400(
    emulator: DixaEmulator, session: requests.Session, path: str, params: dict[str, str]
) -> None:
    response = session.get(emulator.url + path, params=params, timeout=5)
    assert response.status_code == 400
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"


@pytest.mark.parametrize("path", [CONVERSATION_PATH, MESSAGE_PATH])
def test_emulator_accepts_exactly_31_days(emulator: DixaEmulator, session: requests.Session, path: str) -> None:
    assert fetch(emulator, session, path, START_MS, START_MS + 31 * DAY_MS).status_code == 200


def test_emulator_max_span_is_configurable(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.max_span_ms = DAY_MS
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, START_MS + DAY_MS).status_code == 200
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, START_MS + DAY_MS + 1).status_code == 400


@pytest.mark.parametrize("path", [CONVERSATION_PATH, MESSAGE_PATH])
def test_emulator_dates_mean_utc_midnight(emulator: DixaEmulator, session: requests.Session, path: str) -> None:
    by_date = fetch(emulator, session, path, "2024-01-03", "2024-01-10").json()
    by_ms = fetch(emulator, session, path, START_MS + 2 * DAY_MS, START_MS + 9 * DAY_MS).json()
    assert by_date == by_ms
    assert by_date


def test_emulator_filters_conversations_on_created_and_closed(
    emulator: DixaEmulator, session: requests.Session
) -> None:
    after, before = START_MS + 3 * DAY_MS, START_MS + 10 * DAY_MS
    for field in ("created", "closed"):
        params = {f"{field}_after": str(after), f"{field}_before": str(before)}
        served = session.get(emulator.url + CONVERSATION_PATH, params=params, timeout=5).json()
        expected = [
            r["id"]
            for r in emulator.conversations()
            if r[f"{field}_at"] is not None and after < r[f"{field}_at"] < before
        ]
        assert sorted(r["id"] for r in served) == sorted(expected)
        assert expected


# ---- content -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CONVERSATION_PATH, MESSAGE_PATH])
def test_emulator_serves_ground_truth(emulator: DixaEmulator, session: requests.Session, path: str) -> None:
    start_ms, end_ms = START_MS + 2 * DAY_MS, START_MS + 12 * DAY_MS
    # Exclusive bounds by default: (start - 1, end) is the half-open [start, end) of the ground truth.
    response = fetch(emulator, session, path, start_ms - 1, end_ms)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.content)
    served = response.json()
    cursor = CURSORS[path]
    assert [r[cursor] for r in served] == sorted(r[cursor] for r in served)
    if path == CONVERSATION_PATH:
        expected_ids: set[Any] = emulator.expected_conversation_ids(start_ms, end_ms)
        truth = {r["id"]: r for r in emulator.conversations()}
    else:
        expected_ids = emulator.expected_message_ids(start_ms, end_ms)
        truth = {r["id"]: r for r in emulator.messages()}
    assert {r["id"] for r in served} == expected_ids
    assert len(served) == len(expected_ids) > 10
    assert all(record == truth[record["id"]] for record in served)


def test_emulator_serves_large_bodies_in_chunks_intact() -> None:
    config = small_config(conversations=600, end_ms=START_MS + 30 * DAY_MS)
    with DixaEmulator(config) as emu, requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        response = fetch(emu, http, CONVERSATION_PATH, START_MS - 1, START_MS + 31 * DAY_MS - 1, stream=True)
        body = b"".join(response.iter_content(64 * 1024))
    assert len(body) == int(response.headers["Content-Length"]) > 1_000_000
    assert [r["id"] for r in json.loads(body)] == [
        r["id"] for r in sorted(emu.conversations(), key=lambda r: (r["updated_at"], r["id"]))
    ]


@pytest.mark.parametrize(
    ("after_inclusive", "before_inclusive"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_emulator_bound_switch(
    emulator: DixaEmulator, session: requests.Session, after_inclusive: bool, before_inclusive: bool
) -> None:
    emulator.config.after_inclusive = after_inclusive
    emulator.config.before_inclusive = before_inclusive
    on_boundary = boundary_conversation(emulator)
    t_ms = on_boundary["updated_at"]
    as_after = {r["id"] for r in fetch(emulator, session, CONVERSATION_PATH, t_ms, t_ms + DAY_MS).json()}
    as_before = {r["id"] for r in fetch(emulator, session, CONVERSATION_PATH, t_ms - DAY_MS, t_ms).json()}
    assert (on_boundary["id"] in as_after) is after_inclusive
    assert (on_boundary["id"] in as_before) is before_inclusive
    # after == before selects exactly the records on t when both bounds are inclusive, nothing otherwise.
    on_t = {r["id"] for r in fetch(emulator, session, CONVERSATION_PATH, t_ms, t_ms).json()}
    assert on_t == (
        emulator.expected_conversation_ids(t_ms, t_ms + 1) if after_inclusive and before_inclusive else set()
    )


def test_emulator_inclusive_bounds_serve_ground_truth(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.after_inclusive = emulator.config.before_inclusive = True
    served = fetch(emulator, session, MESSAGE_PATH, START_MS, END_MS - 1).json()
    assert {r["id"] for r in served} == emulator.expected_message_ids(START_MS, END_MS)


def test_emulator_data_has_boundary_traps_and_realistic_shape(emulator: DixaEmulator) -> None:
    conversations = emulator.conversations()
    messages = emulator.messages()
    assert [r["id"] for r in conversations] == list(range(1000, 1000 + len(conversations)))
    on_day = [r for r in conversations if r["updated_at"] % DAY_MS == 0]
    assert len(on_day) >= 3
    assert any(r["updated_at"] == START_MS for r in conversations)  # the range start itself is a trap
    assert max(Counter(r["updated_at"] for r in conversations).values()) >= 2
    assert any(r["created_at"] % DAY_MS == 0 for r in messages)
    assert max(Counter(r["created_at"] for r in messages).values()) >= 2
    assert all(START_MS <= r["updated_at"] < END_MS for r in conversations)
    assert all(r["created_at"] <= r["updated_at"] for r in conversations)
    assert all(r["closed_at"] is None or r["created_at"] <= r["closed_at"] <= r["updated_at"] for r in conversations)
    by_id = {r["id"]: r for r in conversations}
    last_message: dict[int, int] = {}
    for message in messages:
        parent = by_id[message["csid"]]
        assert parent["created_at"] <= message["created_at"] <= parent["updated_at"]
        last_message[message["csid"]] = max(last_message.get(message["csid"], 0), message["created_at"])
    assert all(r["last_message_created_at"] == last_message.get(r["id"]) for r in conversations)
    assert all("emulator_extra_field" in r for r in conversations + messages)
    text = json.dumps(conversations + messages, ensure_ascii=False)
    for needle in ("Zoë Ødegård", "東京", "📦", '\\"', "\\\\", "\\n"):
        assert needle in text
    assert any(isinstance(f["value"], list) for r in conversations for f in r["custom_fields"])
    assert any(isinstance(f["value"], str) for r in conversations for f in r["custom_fields"])
    assert any(r["ratings"] and r["rating_score"] is not None for r in conversations)
    assert sum(r["rating_score"] is None for r in conversations) > len(conversations) / 2


def test_emulator_data_is_deterministic() -> None:
    first = DixaEmulator(small_config(conversations=30))
    again = DixaEmulator(small_config(conversations=30))
    other = DixaEmulator(small_config(conversations=30, seed=8))
    assert first.conversations() == again.conversations()
    assert first.messages() == again.messages()
    assert first.conversations() != other.conversations()


# ---- faults ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["500", "502", "503", "504", "429", "401", "400"])
def test_emulator_status_fault_has_empty_body(emulator: DixaEmulator, session: requests.Session, fault: str) -> None:
    emulator.inject(fault)
    response = fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert response.status_code == int(fault)
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    assert "Retry-After" not in response.headers
    assert emulator.request_log[-1].fault == fault
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code == 200


def test_emulator_faults_are_served_in_order_one_per_request(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.inject("503", "500", "wrong_content_type")
    statuses = [fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code for _ in range(4)]
    assert statuses == [503, 500, 200, 200]
    assert [r.fault for r in emulator.request_log] == ["503", "500", "wrong_content_type", None]


def test_emulator_rejects_unknown_fault_kinds(emulator: DixaEmulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        emulator.inject("500", "teapot")
    with pytest.raises(ValueError, match="unknown fault"):
        DixaEmulator(small_config(conversations=1, fault_kinds=("teapot",)))


def test_emulator_clear_log(emulator: DixaEmulator, session: requests.Session) -> None:
    fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert len(emulator.request_log) == 1
    record = emulator.request_log[0]
    assert (record.path, record.status, record.fault, record.auth_ok) == (CONVERSATION_PATH, 200, None, True)
    assert record.params == {"updated_after": str(START_MS), "updated_before": str(END_MS)}
    emulator.clear_log()
    assert emulator.request_log == []


def test_emulator_reset_fault_aborts_connection(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.inject("reset")
    with pytest.raises(requests.exceptions.ConnectionError):
        fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert (emulator.request_log[-1].status, emulator.request_log[-1].fault) == (0, "reset")
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code == 200


def test_emulator_reset_fault_is_a_tcp_rst(emulator: DixaEmulator) -> None:
    emulator.inject("reset")
    port = int(emulator.url.rsplit(":", 1)[1])
    request = (
        f"GET {CONVERSATION_PATH}?updated_after={START_MS}&updated_before={END_MS} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(request.encode("ascii"))
        with pytest.raises(ConnectionResetError):
            raw.recv(1024)


def test_emulator_truncate_fault_sends_half_the_promised_body(emulator: DixaEmulator) -> None:
    emulator.inject("truncate")
    port = int(emulator.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        query = f"?updated_after={START_MS}&updated_before={END_MS}"
        connection.request("GET", CONVERSATION_PATH + query, headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        assert response.status == 200
        promised = int(response.getheader("Content-Length") or 0)
        with pytest.raises(http.client.IncompleteRead) as raised:
            response.read()
    finally:
        connection.close()
    assert len(raised.value.partial) == promised // 2 > 1000


def test_emulator_truncate_fault_breaks_requests(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.inject("truncate")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code == 200


def test_emulator_slow_fault_delays_a_normal_answer(emulator: DixaEmulator, session: requests.Session) -> None:
    normal = fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).json()
    emulator.inject("slow")
    started = time.monotonic()
    slow = fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert time.monotonic() - started >= emulator.config.slow_s
    assert slow.json() == normal


def test_emulator_not_json_fault(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.inject("not_json")
    response = fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert (response.status_code, response.headers["Content-Type"]) == (200, "text/html")
    assert response.content == b"<html>oops</html>"
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def test_emulator_json_object_fault(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.inject("json_object")
    response = fetch(emulator, session, MESSAGE_PATH, START_MS, END_MS)
    assert (response.status_code, response.headers["Content-Type"]) == (200, "application/json")
    assert response.json() == {"message": "unexpected"}


@pytest.mark.parametrize("path", [CONVERSATION_PATH, MESSAGE_PATH])
def test_emulator_missing_cursor_fault(emulator: DixaEmulator, session: requests.Session, path: str) -> None:
    normal = fetch(emulator, session, path, START_MS, END_MS).json()
    emulator.inject("missing_cursor")
    broken = fetch(emulator, session, path, START_MS, END_MS).json()
    cursor = CURSORS[path]
    lacking = [r for r in broken if cursor not in r]
    assert len(lacking) == 1
    assert len(broken) == len(normal)
    assert [r for r in broken if cursor in r] == [r for r in normal if r["id"] != lacking[0]["id"]]


def test_emulator_missing_cursor_fault_on_empty_window(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.inject("missing_cursor")
    served = fetch(emulator, session, CONVERSATION_PATH, END_MS + DAY_MS, END_MS + 2 * DAY_MS).json()
    assert len(served) == 1
    assert "updated_at" not in served[0]


def test_emulator_wrong_content_type_fault(emulator: DixaEmulator, session: requests.Session) -> None:
    normal = fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    emulator.inject("wrong_content_type")
    odd = fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert odd.headers["Content-Type"] == "text/plain"
    assert odd.content == normal.content


def test_emulator_body_fault_on_invalid_query_is_a_400(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.inject("truncate")
    assert session.get(emulator.url + CONVERSATION_PATH, timeout=5).status_code == 400
    assert emulator.request_log[-1].fault == "truncate"


def test_emulator_random_faults_follow_rate_and_kinds(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.fault_rate = 1.0
    emulator.config.fault_kinds = ("502",)
    assert {fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code for _ in range(3)} == {502}
    emulator.config.fault_rate = 0.0
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code == 200


def test_emulator_random_faults_are_seeded(session: requests.Session) -> None:
    sequences = []
    for _ in range(2):
        config = small_config(conversations=5, fault_rate=0.5, fault_kinds=("500", "503", "not_json"))
        with DixaEmulator(config) as emu:
            for _ in range(12):
                fetch(emu, session, CONVERSATION_PATH, START_MS, END_MS)
            sequences.append([record.fault for record in emu.request_log])
    assert sequences[0] == sequences[1]
    assert None in sequences[0]
    assert set(sequences[0]) - {None}


def test_emulator_fail_span_over(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.fail_span_over_ms = 7 * DAY_MS
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, START_MS + 7 * DAY_MS).status_code == 200
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, START_MS + 7 * DAY_MS + 1).status_code == 504
    assert emulator.request_log[-1].fault == "span"


# ---- rate limit --------------------------------------------------------------------------------------------------


def test_emulator_rate_limit_rolls_and_429s_take_no_slot(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.rate_limit = 2
    emulator.config.rate_window_s = 0.6
    emulator.inject("500")  # a faulted request still counts against the limit
    statuses = [fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code for _ in range(4)]
    assert statuses == [500, 200, 429, 429]
    assert [r.fault for r in emulator.request_log][2:] == ["rate_limit", "rate_limit"]
    limited = emulator.request_log[-1]
    assert limited.auth_ok
    time.sleep(0.65)
    statuses = [fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_emulator_unauthenticated_requests_do_not_count(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.rate_limit = 1
    requests.get(emulator.url + CONVERSATION_PATH, timeout=5)
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).status_code == 200


@pytest.mark.parametrize(
    ("retry_after_s", "fractional", "expected"),
    [(None, False, None), (7, False, "7"), (2.2, False, "3"), (0.25, True, "0.25"), (0.25, False, "1")],
)
def test_emulator_rate_limit_retry_after(
    emulator: DixaEmulator,
    session: requests.Session,
    retry_after_s: float | None,
    fractional: bool,
    expected: str | None,
) -> None:
    emulator.config.rate_limit = 1
    emulator.config.retry_after_s = retry_after_s
    emulator.config.retry_after_fractional = fractional
    fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    response = fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert response.status_code == 429
    assert response.content == b""
    assert response.headers.get("Retry-After") == expected


def test_emulator_dynamic_retry_after_counts_down_to_a_free_slot(
    emulator: DixaEmulator, session: requests.Session
) -> None:
    emulator.config.rate_limit = 1
    emulator.config.rate_window_s = 60
    emulator.config.retry_after_s = 0
    fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).headers["Retry-After"] == "60"
    emulator.config.rate_window_s = 0.5
    emulator.config.retry_after_fractional = True
    value = float(fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS).headers["Retry-After"])
    assert 0 < value <= 0.5


def test_emulator_injected_429_carries_retry_after(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.retry_after_s = 5
    emulator.inject("429")
    response = fetch(emulator, session, CONVERSATION_PATH, START_MS, END_MS)
    assert (response.status_code, response.headers.get("Retry-After")) == (429, "5")


# ---- changing data -----------------------------------------------------------------------------------------------


def test_emulator_update_moves_conversations_to_a_new_window(emulator: DixaEmulator, session: requests.Session) -> None:
    early = sorted(emulator.expected_conversation_ids(START_MS, START_MS + 5 * DAY_MS))[:3]
    new_ms = END_MS + 3 * DAY_MS + 123
    emulator.update_conversations(early, new_ms)
    old_window = {
        r["id"] for r in fetch(emulator, session, CONVERSATION_PATH, START_MS - 1, START_MS + 5 * DAY_MS).json()
    }
    new_window = fetch(emulator, session, CONVERSATION_PATH, END_MS, END_MS + 5 * DAY_MS).json()
    assert not old_window & set(early)
    assert sorted(r["id"] for r in new_window) == early
    assert all(r["updated_at"] == r["closed_at"] == new_ms and r["status"] == "closed" for r in new_window)
    assert all(r["emulator_extra_field"]["revision"] == 1 for r in new_window)
    assert emulator.expected_conversation_ids(new_ms, new_ms + 1) == set(early)
    with pytest.raises(ValueError, match="forward"):
        emulator.update_conversations(early[:1], new_ms - 1)
    with pytest.raises(KeyError):
        emulator.update_conversations([999_999], new_ms)


def test_emulator_add_creates_served_conversations_and_messages(
    emulator: DixaEmulator, session: requests.Session
) -> None:
    before_ids = {r["id"] for r in emulator.conversations()}
    at_ms = END_MS + DAY_MS
    new_ids = emulator.add_conversations(20, at_ms)
    assert new_ids == list(range(max(before_ids) + 1, max(before_ids) + 21))
    served = fetch(emulator, session, CONVERSATION_PATH, at_ms - 1, at_ms + 1).json()
    assert sorted(r["id"] for r in served) == new_ids
    new_messages = [m for m in emulator.messages() if m["csid"] in set(new_ids)]
    assert new_messages
    assert all(m["created_at"] <= at_ms for m in new_messages)
    earliest = min(m["created_at"] for m in new_messages)
    served_messages = fetch(emulator, session, MESSAGE_PATH, earliest - 1, at_ms + 1).json()
    assert {m["id"] for m in new_messages} <= {m["id"] for m in served_messages}
    assert emulator.expected_message_ids(earliest, at_ms + 1) >= {m["id"] for m in new_messages}


# ---- schemas -----------------------------------------------------------------------------------------------------

SCHEMA_CASES = [("conversation_export", "id", "updated_at"), ("message_export", "id", "created_at")]


def walk_schemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield schema
    for child in schema.get("properties", {}).values():
        yield from walk_schemas(child)
    if isinstance(schema.get("items"), dict):
        yield from walk_schemas(schema["items"])


@pytest.mark.parametrize(("stream", "primary_key", "cursor"), SCHEMA_CASES)
def test_schema_shape(stream: str, primary_key: str, cursor: str) -> None:
    schema = load_json(SCHEMAS / f"{stream}.json")
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    text = json.dumps(schema)
    assert not any(keyword in text for keyword in ('"$ref"', '"allOf"', '"not"', '"format"'))
    for node in walk_schemas(schema):
        if "object" in node["type"]:
            assert node["additionalProperties"] is True
    for name, prop in schema["properties"].items():
        nullable = isinstance(prop["type"], list) and "null" in prop["type"]
        assert nullable is (name not in (primary_key, cursor)), name
    for nested in walk_schemas(schema):
        if nested is not schema and nested.get("properties"):
            assert all("null" in p["type"] for p in nested["properties"].values())
    assert "description" in schema["properties"][cursor]


@pytest.mark.parametrize(("stream", "primary_key", "cursor"), SCHEMA_CASES)
def test_schema_validates_canned_fixtures(stream: str, primary_key: str, cursor: str) -> None:
    validator = jsonschema.Draft7Validator(load_json(SCHEMAS / f"{stream}.json"))
    records = load_json(FIXTURES / f"{stream}.json")
    assert isinstance(records, list)
    assert 3 <= len(records) <= 5
    for record in records:
        validator.validate(record)
    assert any(set(record) - set(validator.schema["properties"]) for record in records)  # an unknown field


@pytest.mark.parametrize(("stream", "primary_key", "cursor"), SCHEMA_CASES)
def test_schema_validates_emulator_records_in_doc_order(stream: str, primary_key: str, cursor: str) -> None:
    schema = load_json(SCHEMAS / f"{stream}.json")
    validator = jsonschema.Draft7Validator(schema)
    emu = DixaEmulator(small_config(conversations=300))
    records = emu.conversations() if stream == "conversation_export" else emu.messages()
    for record in records:
        validator.validate(record)
        assert list(record) == [*schema["properties"], "emulator_extra_field"]
    broken = {**records[0], cursor: None}
    assert not validator.is_valid(broken)


def test_schema_rejects_wrong_types() -> None:
    validator = jsonschema.Draft7Validator(load_json(SCHEMAS / "conversation_export.json"))
    record = load_json(FIXTURES / "conversation_export.json")[0]
    assert not validator.is_valid({**record, "created_at": "2024-01-01"})
    assert not validator.is_valid({**record, "tags_info": [{"is_deactivated": "no"}]})


# ---- CLI ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "launcher",
    [["-m", "integration_tests.emulator"], [str(ROOT / "integration_tests" / "emulator")]],
    ids=["module", "directory"],
)
def test_emulator_cli_prints_one_line_and_stops_on_sigterm(launcher: list[str]) -> None:
    process = subprocess.Popen(
        [sys.executable, *launcher, "--conversations", "15", "--token", "cli-token", "--seed", "3",
         "--end-users", "7", "--activity-events", "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        summary = json.loads(process.stdout.readline())
        assert set(summary) == {
            "url", "token", "conversations", "messages", "agents", "end_users", "teams", "team_members", "queues",
            "queue_members", "tags", "custom_attributes", "contact_endpoints", "agent_presence", "activity_logs",
        }  # fmt: skip
        assert summary["token"] == "cli-token"
        assert (summary["conversations"], summary["end_users"], summary["activity_logs"]) == (15, 7, 40)
        response = requests.get(
            summary["url"] + MESSAGE_PATH,
            params=window(MESSAGE_PATH, "2024-01-01", "2024-01-31"),
            headers={"Authorization": "Bearer cli-token"},
            timeout=5,
        )
        assert response.status_code == 200
        # The Dixa API on the same port, with its own (raw token) auth.
        users = requests.get(summary["url"] + "/v1/endusers", headers={"Authorization": "cli-token"}, timeout=5)
        assert len(users.json()["data"]) == 7
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert stdout == ""
    assert stderr == ""


def test_fault_kind_list_is_complete() -> None:
    assert set(FAULT_KINDS) == {
        "500", "502", "503", "504", "429", "401", "400",
        "reset", "truncate", "slow", "not_json", "json_object", "missing_cursor", "wrong_content_type",
        "foreign_next", "looping_next", "none",
    }  # fmt: skip
