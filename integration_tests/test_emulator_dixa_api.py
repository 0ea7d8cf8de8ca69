"""Tests of the emulator's Dixa API (dev.dixa.io), over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import calendar
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from integration_tests.emulator import (
    ACTIVITY_PATH,
    ACTIVITY_TYPES,
    CONVERSATION_PATH,
    DAY_MS,
    DIXA_STREAMS,
    HOUR_MS,
    STREAMS,
    DixaEmulator,
    EmulatorConfig,
)

TOKEN = "dixa-test-token"
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
END_MS = START_MS + 20 * DAY_MS
PAGINATED = {"/v1/agents": "agents", "/v1/endusers": "end_users", ACTIVITY_PATH: "activity_logs"}
UNPAGINATED = {"/v1/teams": "teams", "/v1/queues": "queues", "/v1/custom-attributes": "custom_attributes",
               "/v1/contact-endpoints": "contact_endpoints"}  # fmt: skip
GMT_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\[GMT\]")
PLAIN_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
NO_ZONE_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}")
PHONE_RE = re.compile(r"(\+45|0045)[2-9]\d{7}")


def config(**overrides: Any) -> EmulatorConfig:
    values: dict[str, Any] = {
        "token": TOKEN, "conversations": 60, "messages_per_conversation": 1.0, "start_ms": START_MS, "end_ms": END_MS,
        "agents": 23, "end_users": 130, "activity_events": 600, "slow_s": 0.2,
    }  # fmt: skip
    values.update(overrides)
    return EmulatorConfig(**values)


@pytest.fixture
def emulator() -> Iterator[DixaEmulator]:
    with DixaEmulator(config()) as running:
        yield running


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.headers["Authorization"] = TOKEN  # raw, no prefix
        yield http


def get(emu: DixaEmulator, http: requests.Session, path: str, **params: Any) -> requests.Response:
    return http.get(emu.url + path, params=params, timeout=10)


def walk(emu: DixaEmulator, http: requests.Session, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a paginated list, following meta.next (relative or absolute) until it is absent."""
    pages = [get(emu, http, path, **params).json()]
    while "next" in pages[-1]["meta"]:
        link = pages[-1]["meta"]["next"]
        assert len(pages) < 500, "meta.next never ends"
        pages.append(http.get(link if link.startswith("http") else emu.url + link, timeout=10).json())
    return pages


def iso(ms: int, millis: bool = True) -> str:
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
    return f"{text}.{ms % 1000:03d}Z" if millis else f"{text}Z"


def activity_ms(record: dict[str, Any]) -> int:
    text = record["activityTimestamp"].split("[")[0]
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(text[20:23])


def ids(pages: list[dict[str, Any]]) -> list[str]:
    return [record["id"] for page in pages for record in page["data"]]


# ---- routing and auth --------------------------------------------------------------------------------------------


def test_both_apis_share_one_port_with_their_own_auth(emulator: DixaEmulator, session: requests.Session) -> None:
    assert get(emulator, session, "/v1/teams").status_code == 200
    exports = {"updated_after": START_MS, "updated_before": END_MS}
    assert get(emulator, session, CONVERSATION_PATH, **exports).status_code == 401  # raw token: Exports wants Bearer
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(emulator.url + CONVERSATION_PATH, params=exports, headers=bearer, timeout=5).status_code == 200
    assert [r.api for r in emulator.request_log] == ["dixa", "exports", "exports"]


@pytest.mark.parametrize("header", [None, f"Bearer {TOKEN}", "wrong", f"{TOKEN}x", f"Token {TOKEN}", TOKEN.upper()])
def test_refused_credentials_get_a_401_with_a_message(emulator: DixaEmulator, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = requests.get(emulator.url + "/v1/agents", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert set(response.json()) == {"message"}
    assert emulator.request_log[-1].auth_ok is False


def test_bearer_is_accepted_only_when_switched_on(emulator: DixaEmulator) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(emulator.url + "/v1/tags", headers=headers, timeout=5).status_code == 401
    emulator.config.dixa_accept_bearer = True
    assert requests.get(emulator.url + "/v1/tags", headers=headers, timeout=5).status_code == 200
    assert requests.get(emulator.url + "/v1/tags", headers={"Authorization": TOKEN}, timeout=5).status_code == 200


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/agents/", "/v1/teams/x/y", "/v2/agents", "/"])
def test_unknown_paths_get_a_404_with_a_message(emulator: DixaEmulator, session: requests.Session, path: str) -> None:
    response = get(emulator, session, path)
    assert response.status_code == 404
    assert set(response.json()) == {"message"}


# ---- envelopes ---------------------------------------------------------------------------------------------------


def test_envelopes_and_the_bare_presence_array(emulator: DixaEmulator, session: requests.Session) -> None:
    for path in UNPAGINATED:
        body = get(emulator, session, path).json()
        assert set(body) == {"data"}, path
        assert body["data"] == emulator.records(UNPAGINATED[path]), path
    presence = get(emulator, session, "/v1/agents/presence").json()
    assert isinstance(presence, list)
    assert presence == emulator.records("agent_presence")
    last_page = get(emulator, session, "/v1/agents", pageLimit=100).json()
    assert set(last_page) == {"data", "meta"}
    assert "next" not in last_page["meta"]


def test_member_lists_and_tags(emulator: DixaEmulator, session: requests.Session) -> None:
    served = []
    for team in emulator.records("teams"):
        body = get(emulator, session, f"/v1/teams/{team['id']}/agents").json()
        assert set(body) == {"data"}
        served += [{**member, "team_id": team["id"]} for member in body["data"]]
    assert served == emulator.records("team_members")
    assert any(not get(emulator, session, f"/v1/teams/{t['id']}/agents").json()["data"]
               for t in emulator.records("teams"))  # fmt: skip
    served = []
    for queue in emulator.records("queues"):
        body = get(emulator, session, f"/v1/queues/{queue['id']}/members").json()
        served += [{**member, "queue_id": queue["id"]} for member in body["data"]]
    assert served == emulator.records("queue_members")
    assert all(set(member) <= {"agentId", "priority", "queue_id"} for member in served)
    tags = emulator.records("tags")
    assert {tag["state"] for tag in tags} == {"Active", "Inactive"}
    assert get(emulator, session, "/v1/tags").json()["data"] == [t for t in tags if t["state"] == "Active"]
    assert get(emulator, session, "/v1/tags", includeDeactivated="true").json()["data"] == tags
    assert get(emulator, session, "/v1/tags", includeDeactivated="yes").status_code == 400
    emails = get(emulator, session, "/v1/contact-endpoints", _type="EmailEndpoint").json()["data"]
    assert emails and all(e["_type"] == "EmailEndpoint" and "address" in e and "id" not in e for e in emails)
    assert get(emulator, session, "/v1/contact-endpoints", _type="Fax").status_code == 400
    assert get(emulator, session, "/v1/teams/no-such-team/agents").status_code == 404
    assert get(emulator, session, "/v1/queues/no-such-queue/members").status_code == 404


# ---- pagination --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(PAGINATED))
def test_walking_next_serves_every_record_once_in_capped_pages(
    emulator: DixaEmulator, session: requests.Session, path: str
) -> None:
    emulator.config.page_cap = 7
    pages = walk(emulator, session, path, pageLimit=1000)
    assert [len(page["data"]) for page in pages[:-1]] == [7] * (len(pages) - 1)
    assert 1 <= len(pages[-1]["data"]) <= 7
    assert [record for page in pages for record in page["data"]] == emulator.records(PAGINATED[path])
    assert "previous" not in pages[0]["meta"]
    assert all(page["meta"]["next"].startswith(f"{path}?pageKey=") for page in pages[:-1])
    assert all(page["meta"]["previous"].startswith(f"{path}?pageKey=") for page in pages[1:])
    keys = [page["meta"]["next"].split("pageKey=")[1] for page in pages[:-1]]
    assert len(set(keys)) == len(keys)
    assert [r.params.get("pageKey") for r in emulator.requests(path)] == [None, *keys]
    assert emulator.requests(path, page_key=keys[0])


def test_an_exactly_full_last_page_has_no_next(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.page_cap = 13  # 130 end users: ten full pages, and no empty eleventh
    pages = walk(emulator, session, "/v1/endusers", pageLimit=13)
    assert [len(page["data"]) for page in pages] == [13] * 10
    assert "next" not in pages[-1]["meta"]
    emulator.config.page_cap = 1000
    single = get(emulator, session, "/v1/agents", pageLimit=23).json()
    assert len(single["data"]) == 23
    assert single["meta"] == {}


def test_default_page_size_and_page_limit_override(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.default_page_limit = 9
    first = get(emulator, session, "/v1/endusers").json()
    assert len(first["data"]) == 9
    key = first["meta"]["next"].split("pageKey=")[1]
    assert len(get(emulator, session, "/v1/endusers", pageKey=key).json()["data"]) == 9
    resized = get(emulator, session, "/v1/endusers", pageKey=key, pageLimit=4).json()
    assert [r["id"] for r in resized["data"]] == [r["id"] for r in emulator.records("end_users")[9:13]]
    emulator.config.page_cap = 3
    assert len(get(emulator, session, "/v1/endusers", pageKey=key).json()["data"]) == 3


def test_absolute_next_links(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.absolute_next = True
    emulator.config.page_cap = 50
    pages = walk(emulator, session, "/v1/endusers")
    assert len(pages) == 3
    assert all(page["meta"]["next"].startswith(emulator.url + "/v1/endusers?pageKey=") for page in pages[:-1])
    assert ids(pages) == [r["id"] for r in emulator.records("end_users")]


def _tampered(key: str) -> str:
    body = json.loads(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)))
    body["o"] = 0
    return base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("bad", ["garbage!", "", "eyJ9", "tampered", "other_route"])
def test_bad_page_keys_are_refused(emulator: DixaEmulator, session: requests.Session, bad: str) -> None:
    key = get(emulator, session, "/v1/endusers", pageLimit=5).json()["meta"]["next"].split("pageKey=")[1]
    other = get(emulator, session, "/v1/agents", pageLimit=5).json()["meta"]["next"].split("pageKey=")[1]
    value = {"tampered": _tampered(key), "other_route": other}.get(bad, bad)
    response = get(emulator, session, "/v1/endusers", pageKey=value)
    assert response.status_code == 400
    assert "pageKey" in response.json()["message"]


@pytest.mark.parametrize("limit", ["0", "-1", "ten", "1.5", ""])
def test_bad_page_limits_are_refused(emulator: DixaEmulator, session: requests.Session, limit: str) -> None:
    assert get(emulator, session, "/v1/agents", pageLimit=limit).status_code == 400


# ---- activity log ------------------------------------------------------------------------------------------------


def _on_boundary(emulator: DixaEmulator) -> int:
    """A round day, strictly inside the data, with an event on it."""
    stamps = Counter(activity_ms(r) for r in emulator.records("activity_logs"))
    return next(ms for ms in sorted(stamps) if ms % DAY_MS == 0 and START_MS < ms < END_MS - DAY_MS)


def test_activity_data_has_boundary_traps_and_shapes(emulator: DixaEmulator) -> None:
    records = emulator.records("activity_logs")
    stamps = [activity_ms(r) for r in records]
    assert stamps == sorted(stamps)
    assert START_MS in stamps
    assert sum(ms % DAY_MS == 0 for ms in stamps) >= 3
    assert sum(ms % HOUR_MS == 0 and ms % DAY_MS for ms in stamps) >= 2
    assert max(Counter(stamps).values()) >= 3
    assert all(START_MS <= ms < END_MS for ms in stamps)
    assert {r["_type"] for r in records} == set(ACTIVITY_TYPES)
    assert len(ACTIVITY_TYPES) >= 32
    assert all(isinstance(r["conversationId"], int) for r in records)
    assert {r["conversationId"] for r in records} <= {c["id"] for c in emulator.conversations()}
    assert any("author" not in r for r in records) and any("attributes" not in r for r in records)
    rated = [r for r in records if r["_type"] == "ConversationRated"]
    assert rated and all("agent" in r["attributes"] for r in rated)
    assert all(set(r["attributes"]) == {"tag"} for r in records if r["_type"] == "TagAdded")


@pytest.mark.parametrize(
    ("from_inclusive", "to_inclusive"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_activity_bound_semantics(
    emulator: DixaEmulator, session: requests.Session, from_inclusive: bool, to_inclusive: bool
) -> None:
    emulator.config.activity_from_inclusive = from_inclusive
    emulator.config.activity_to_inclusive = to_inclusive
    emulator.config.page_cap = 1000
    t_ms = _on_boundary(emulator)
    on_t = emulator.expected_activity_ids(t_ms, t_ms + 1)
    assert on_t
    # Both accepted spellings: with milliseconds for the first window, without for the second.
    after = walk(emulator, session, ACTIVITY_PATH, fromDatetime=iso(t_ms), toDatetime=iso(t_ms + DAY_MS))
    before = walk(emulator, session, ACTIVITY_PATH, fromDatetime=iso(t_ms - DAY_MS, False), toDatetime=iso(t_ms, False))
    as_from, as_to = set(ids(after)), set(ids(before))
    assert (on_t <= as_from) if from_inclusive else not (on_t & as_from)
    assert (on_t <= as_to) if to_inclusive else not (on_t & as_to)
    assert as_from - on_t == emulator.expected_activity_ids(t_ms + 1, t_ms + DAY_MS) | (
        emulator.expected_activity_ids(t_ms + DAY_MS, t_ms + DAY_MS + 1) if to_inclusive else set()
    )
    on_both = set(ids(walk(emulator, session, ACTIVITY_PATH, fromDatetime=iso(t_ms), toDatetime=iso(t_ms))))
    assert on_both == (on_t if from_inclusive and to_inclusive else set())


def test_activity_window_serves_ground_truth_across_pages(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.page_cap = 11
    start_ms, end_ms = START_MS + 3 * DAY_MS + 123, START_MS + 9 * DAY_MS
    pages = walk(emulator, session, ACTIVITY_PATH, fromDatetime=iso(start_ms), toDatetime=iso(end_ms), pageLimit=50)
    assert len(pages) > 3
    served = ids(pages)
    assert len(served) == len(set(served))
    assert set(served) == emulator.expected_activity_ids(start_ms, end_ms)
    # The next-page request carried only pageKey: the filters came back from the key.
    assert all(set(r.params) == {"pageKey"} for r in emulator.requests(ACTIVITY_PATH)[1:])


@pytest.mark.parametrize(
    "value",
    ["2024-05-01", "2024-05-01T12:30:00+00:00", "2024-05-01T12:30:00.0Z", "2024-05-01T12:30:00.123456Z",
     "2024-13-01T00:00:00Z", "2024-05-01 12:30:00Z", "1714566600000", ""],
)  # fmt: skip
def test_activity_rejects_other_datetime_formats(emulator: DixaEmulator, session: requests.Session, value: str) -> None:
    response = get(emulator, session, ACTIVITY_PATH, fromDatetime=value)
    assert response.status_code == 400
    assert "fromDatetime" in response.json()["message"]


def test_activity_rejects_reversed_bounds(emulator: DixaEmulator, session: requests.Session) -> None:
    response = get(emulator, session, ACTIVITY_PATH, fromDatetime=iso(END_MS), toDatetime=iso(START_MS))
    assert response.status_code == 400


@pytest.mark.parametrize("order", ["asc", "desc", "shuffled"])
def test_activity_orders(emulator: DixaEmulator, session: requests.Session, order: str) -> None:
    emulator.config.activity_order = order
    emulator.config.page_cap = 40
    params = {"fromDatetime": iso(START_MS + DAY_MS), "toDatetime": iso(START_MS + 15 * DAY_MS)}
    served = [r for page in walk(emulator, session, ACTIVITY_PATH, **params) for r in page["data"]]
    stamps = [activity_ms(r) for r in served]
    expected = emulator.expected_activity_ids(START_MS + DAY_MS, START_MS + 15 * DAY_MS)
    assert sorted(r["id"] for r in served) == sorted(expected)
    if order == "asc":
        assert stamps == sorted(stamps)
    elif order == "desc":
        assert stamps == sorted(stamps, reverse=True)
    else:
        assert stamps != sorted(stamps) and stamps != sorted(stamps, reverse=True)
        again = [r for page in walk(emulator, session, ACTIVITY_PATH, **params) for r in page["data"]]
        assert again == served


def test_order_is_kept_in_the_page_key(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.page_cap = 30
    first = get(emulator, session, ACTIVITY_PATH).json()
    emulator.config.activity_order = "desc"
    second = http_next(emulator, session, first)
    assert activity_ms(second["data"][0]) >= activity_ms(first["data"][-1])


def http_next(emulator: DixaEmulator, session: requests.Session, page: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = session.get(emulator.url + page["meta"]["next"], timeout=10).json()
    return body


# ---- timestamps and phone numbers --------------------------------------------------------------------------------


def test_timestamps_carry_zone_ids_or_none(emulator: DixaEmulator) -> None:
    for stream, field in [("activity_logs", "activityTimestamp"), ("agents", "createdAt"), ("end_users", "createdAt"),
                          ("custom_attributes", "createdAt"), ("custom_attributes", "updatedAt")]:  # fmt: skip
        values = [r[field] for r in emulator.records(stream)]
        assert any(GMT_RE.fullmatch(v) for v in values), (stream, field)
        if stream in ("activity_logs", "end_users"):
            assert any(PLAIN_RE.fullmatch(v) for v in values), (stream, field)
            assert all(GMT_RE.fullmatch(v) or PLAIN_RE.fullmatch(v) or v.endswith("Z[UTC]") for v in values)
    presence = emulator.records("agent_presence")
    assert all(NO_ZONE_RE.fullmatch(r["requestTime"]) for r in presence)
    assert all(NO_ZONE_RE.fullmatch(r["lastSeen"]) for r in presence if "lastSeen" in r)
    assert any("lastSeen" in r for r in presence)


def _phones(value: Any, key: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _phones(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _phones(item, key)
    elif (
        isinstance(value, str)
        and ("phone" in key.lower() or key in ("number", "transferee_number"))
        and not (
            key.endswith(("_id", "_name"))  # to_provisioned_phone_number_id / _name: a number's id and label
        )
    ):
        yield value


def test_every_phone_field_of_both_apis_is_a_realistic_number(emulator: DixaEmulator) -> None:
    numbers = [number for stream in STREAMS for number in _phones(emulator.records(stream))]
    assert len(numbers) > 200
    assert all(PHONE_RE.fullmatch(number) for number in numbers), [n for n in numbers if not PHONE_RE.fullmatch(n)]
    assert {number[:3] for number in numbers} == {"+45", "004"}
    for stream in ("conversation_export", "message_export", "agents", "end_users", "team_members", "activity_logs",
                   "contact_endpoints"):  # fmt: skip
        assert list(_phones(emulator.records(stream))), stream


# ---- ground truth and changes ------------------------------------------------------------------------------------


def test_records_cover_every_stream_and_join_the_exports(emulator: DixaEmulator) -> None:
    assert set(STREAMS) == {"conversation_export", "message_export", *DIXA_STREAMS}
    assert len(STREAMS) == 13
    for stream in STREAMS:
        assert emulator.records(stream), stream
    with pytest.raises(KeyError):
        emulator.records("nope")
    agent_ids = {a["id"] for a in emulator.records("agents")}
    assert {c["assignee_id"] for c in emulator.conversations() if c["assignee_id"]} <= agent_ids
    queue_ids = {q["id"] for q in emulator.records("queues")}
    assert {c["queue_id"] for c in emulator.conversations() if c["queue_id"]} <= queue_ids
    tag_names = {t["name"] for t in emulator.records("tags")}
    assert {name for c in emulator.conversations() for name in c["tags"]} <= tag_names
    assert emulator.counts()["end_users"] == 130


def test_dixa_data_is_deterministic_and_independent_of_exports_sizes() -> None:
    first, again = DixaEmulator(config()), DixaEmulator(config())
    other_seed = DixaEmulator(config(seed=8))
    fewer_conversations = DixaEmulator(config(conversations=30))
    for stream in DIXA_STREAMS:
        assert first.records(stream) == again.records(stream), stream
    assert first.records("end_users") != other_seed.records("end_users")
    assert first.records("end_users") == fewer_conversations.records("end_users")
    assert DixaEmulator(config(end_users=500)).conversations() == first.conversations()


def test_added_and_changed_records_are_served(emulator: DixaEmulator, session: requests.Session) -> None:
    at_ms = END_MS + 5 * DAY_MS + 7
    new_events = emulator.add_activity_events(4, at_ms)
    assert emulator.expected_activity_ids(at_ms, at_ms + 1) == set(new_events)
    served = get(emulator, session, ACTIVITY_PATH, fromDatetime=iso(at_ms), toDatetime=iso(at_ms + 1)).json()["data"]
    assert {r["id"] for r in served} == set(new_events)
    new_users = emulator.add_end_users(3)
    agent_id = emulator.add_agents(1)[0]
    emulator.update_record("agents", agent_id, displayName="Renamed Ø")
    emulator.remove_record("end_users", emulator.records("end_users")[0]["id"])
    emulator.config.page_cap = 1000
    users = get(emulator, session, "/v1/endusers", pageLimit=1000).json()["data"]
    assert [u["id"] for u in users][-3:] == new_users
    assert len(users) == 132
    agents = get(emulator, session, "/v1/agents", pageLimit=1000).json()["data"]
    assert agents[-1]["id"] == agent_id and agents[-1]["displayName"] == "Renamed Ø"
    with pytest.raises(KeyError):
        emulator.update_record("agents", "no-such-agent", displayName="x")
    with pytest.raises(KeyError):
        emulator.update_record("activity_logs", new_events[0], displayName="x")


def test_visibility_delay_hides_recent_records_until_due(emulator: DixaEmulator, session: requests.Session) -> None:
    now_ms = int(time.time() * 1000)
    new_events = set(emulator.add_activity_events(3, now_ms))
    new_conversations = emulator.add_conversations(2, now_ms)
    window = {"fromDatetime": iso(now_ms - DAY_MS), "toDatetime": iso(now_ms + DAY_MS)}
    exports = {"updated_after": now_ms - DAY_MS, "updated_before": now_ms + DAY_MS}
    bearer = {"Authorization": f"Bearer {TOKEN}"}

    def visible() -> tuple[bool, bool]:
        events = {r["id"] for r in get(emulator, session, ACTIVITY_PATH, **window).json()["data"]}
        served = requests.get(emulator.url + CONVERSATION_PATH, params=exports, headers=bearer, timeout=5).json()
        return new_events <= events, {c["id"] for c in served} >= set(new_conversations)

    assert visible() == (True, True)  # 0 = off
    emulator.config.visibility_delay_s = 1.0
    assert visible() == (False, False)
    time.sleep(max(0.0, now_ms / 1000 + 1.05 - time.time()))
    assert visible() == (True, True)
    emulator.config.visibility_delay_s = 3600
    assert visible() == (False, False)
    assert new_events <= emulator.expected_activity_ids(now_ms, now_ms + 1)  # ground truth ignores the delay


# ---- rate limit --------------------------------------------------------------------------------------------------


def test_token_bucket_bursts_then_refills_and_429s_take_no_token(
    emulator: DixaEmulator, session: requests.Session
) -> None:
    emulator.config.dixa_rate_per_s = 2.0
    emulator.config.dixa_burst = 4
    statuses = [get(emulator, session, "/v1/teams").status_code for _ in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    limited = emulator.request_log[-1]
    assert (limited.fault, limited.auth_ok, limited.api) == ("rate_limit", True, "dixa")
    response = get(emulator, session, "/v1/teams")
    assert set(response.json()) == {"message"} and "Retry-After" not in response.headers
    time.sleep(0.55)  # one token at 2/s; the 429s above took none
    assert [get(emulator, session, "/v1/teams").status_code for _ in range(2)] == [200, 429]
    # The Exports API has its own limiter: a drained bucket does not touch it.
    exports = {"updated_after": START_MS, "updated_before": END_MS}
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(emulator.url + CONVERSATION_PATH, params=exports, headers=bearer, timeout=5).status_code == 200


def test_exports_limiter_does_not_drain_the_bucket(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.rate_limit = 1
    emulator.config.dixa_rate_per_s = 0.001
    emulator.config.dixa_burst = 2
    exports = {"updated_after": START_MS, "updated_before": END_MS}
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    codes = [requests.get(emulator.url + CONVERSATION_PATH, params=exports, headers=bearer, timeout=5).status_code
             for _ in range(3)]  # fmt: skip
    assert codes == [200, 429, 429]
    assert [get(emulator, session, "/v1/tags").status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize(
    ("retry_after_s", "fractional", "expected"),
    [(None, False, None), (7, False, "7"), (2.2, False, "3"), (0.25, True, "0.25"), (0, False, "1"), (0, True, "0.5")],
)
def test_token_bucket_retry_after(
    emulator: DixaEmulator, session: requests.Session, retry_after_s: float | None, fractional: bool,
    expected: str | None,
) -> None:  # fmt: skip
    emulator.config.dixa_rate_per_s = 2.0
    emulator.config.dixa_burst = 1
    emulator.config.dixa_retry_after_s = retry_after_s
    emulator.config.retry_after_fractional = fractional
    assert get(emulator, session, "/v1/tags").status_code == 200
    response = get(emulator, session, "/v1/tags")
    assert response.status_code == 429
    value = response.headers.get("Retry-After")
    if fractional and retry_after_s == 0:
        assert value is not None and 0.2 < float(value) <= 0.5  # the time until the next token, counting down
    else:
        assert value == expected


# ---- faults ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["500", "502", "503", "504", "429", "401", "400"])
def test_status_faults_carry_a_message(emulator: DixaEmulator, session: requests.Session, fault: str) -> None:
    emulator.inject(fault)
    response = get(emulator, session, "/v1/agents")
    assert response.status_code == int(fault)
    assert set(response.json()) == {"message"}
    assert emulator.request_log[-1].fault == fault
    assert get(emulator, session, "/v1/agents").status_code == 200


def test_body_faults_on_the_dixa_api(emulator: DixaEmulator, session: requests.Session) -> None:
    normal = get(emulator, session, ACTIVITY_PATH, pageLimit=20)
    emulator.inject("truncate")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(emulator, session, ACTIVITY_PATH, pageLimit=20)
    emulator.inject("wrong_content_type", "not_json", "json_object", "missing_cursor")
    odd = get(emulator, session, ACTIVITY_PATH, pageLimit=20)
    assert (odd.headers["Content-Type"], odd.content) == ("text/plain", normal.content)
    assert get(emulator, session, ACTIVITY_PATH).headers["Content-Type"] == "text/html"
    assert get(emulator, session, "/v1/agents/presence").json() == {"message": "unexpected"}
    broken = get(emulator, session, ACTIVITY_PATH, pageLimit=20).json()["data"]
    assert [r for r in broken if "activityTimestamp" not in r] == [
        {k: v for k, v in normal.json()["data"][10].items() if k != "activityTimestamp"}
    ]
    emulator.inject("reset")
    with pytest.raises(requests.exceptions.ConnectionError):
        get(emulator, session, "/v1/teams")
    assert [(r.fault, r.status) for r in emulator.request_log[1:]] == [
        ("truncate", 200), ("wrong_content_type", 200), ("not_json", 200), ("json_object", 200),
        ("missing_cursor", 200), ("reset", 0),
    ]  # fmt: skip


def test_faults_aimed_at_a_path_wait_for_it(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.inject("none", "503", path_prefix="/v1/endusers")
    emulator.inject("502")
    assert get(emulator, session, "/v1/teams").status_code == 502  # the untargeted one
    assert get(emulator, session, "/v1/agents").status_code == 200
    assert get(emulator, session, "/v1/endusers").status_code == 200  # "none"
    assert emulator.pending_faults() == [("503", "/v1/endusers")]
    assert get(emulator, session, "/v1/agents").status_code == 200
    assert get(emulator, session, "/v1/endusers").status_code == 503
    assert emulator.pending_faults() == []
    assert [r.fault for r in emulator.request_log] == ["502", None, None, None, "503"]


def test_random_faults_can_be_kept_to_some_paths(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.fault_rate = 1.0
    emulator.config.fault_kinds = ("503",)
    assert get(emulator, session, "/v1/teams").status_code == 503
    emulator.config.fault_paths = ("/v1/conversations/",)
    assert get(emulator, session, "/v1/teams").status_code == 200
    assert get(emulator, session, ACTIVITY_PATH).status_code == 503


def test_foreign_next_points_at_another_origin(emulator: DixaEmulator, session: requests.Session) -> None:
    with DixaEmulator(config(conversations=1, end_users=5, activity_events=5)) as foreign:
        emulator.config.foreign_origin = foreign.url
        emulator.config.page_cap = 10
        emulator.inject("none", "foreign_next", path_prefix="/v1/endusers")
        first = get(emulator, session, "/v1/endusers").json()
        second = http_next(emulator, session, first)
        assert second["meta"]["next"].startswith(foreign.url + "/v1/endusers?pageKey=")
        assert http_next(emulator, session, first)["meta"]["next"].startswith("/v1/endusers?pageKey=")
        emulator.inject("foreign_next")
        only_page = get(emulator, session, "/v1/teams").json()  # even where the real answer has no next
        assert only_page["meta"]["next"] == foreign.url + "/v1/teams"
        assert foreign.request_log == []
    with pytest.raises(ValueError, match="foreign_origin"):
        DixaEmulator(config(foreign_origin="http://example.com"))
    emulator.config.foreign_origin = "http://example.com"  # set at runtime: refused when used, never linked to
    emulator.inject("foreign_next")
    refused = get(emulator, session, "/v1/teams")
    assert refused.status_code == 500 and "foreign_origin" in refused.json()["message"]


def test_looping_next_points_back_at_the_page_served(emulator: DixaEmulator, session: requests.Session) -> None:
    emulator.config.page_cap = 10
    first = get(emulator, session, "/v1/agents").json()
    key = first["meta"]["next"].split("pageKey=")[1]
    emulator.inject("looping_next")
    looped = get(emulator, session, "/v1/agents", pageKey=key).json()
    assert looped["meta"]["next"] == f"/v1/agents?pageKey={key}"
    assert get(emulator, session, "/v1/agents", pageKey=key).json()["meta"]["next"] != looped["meta"]["next"]
    emulator.inject("looping_next")
    assert get(emulator, session, "/v1/teams").json()["meta"] == {"next": "/v1/teams"}


def test_forbidden_paths_answer_403_per_endpoint(emulator: DixaEmulator, session: requests.Session) -> None:
    team_id = emulator.records("teams")[0]["id"]
    emulator.config.forbidden_paths = ("/v1/teams/{teamId}/agents", "/v1/endusers")
    emulator.inject("500")  # not consumed by the 403s
    for path in (f"/v1/teams/{team_id}/agents", "/v1/endusers"):
        response = get(emulator, session, path)
        assert (response.status_code, set(response.json())) == (403, {"message"})
        assert emulator.request_log[-1].fault == "forbidden"
    assert get(emulator, session, "/v1/teams").status_code == 500
    assert get(emulator, session, "/v1/teams").status_code == 200
    emulator.config.forbidden_paths = (f"/v1/teams/{team_id}/agents",)
    assert get(emulator, session, f"/v1/teams/{team_id}/agents").status_code == 403
    assert get(emulator, session, f"/v1/teams/{emulator.records('teams')[1]['id']}/agents").status_code == 200


def test_gone_member_lists_answer_404(emulator: DixaEmulator, session: requests.Session) -> None:
    team_id, queue_id = emulator.records("teams")[0]["id"], emulator.records("queues")[0]["id"]
    members_before = emulator.records("team_members")
    emulator.config.gone_team_ids = (team_id,)
    emulator.config.gone_queue_ids = (queue_id,)
    assert team_id in {t["id"] for t in get(emulator, session, "/v1/teams").json()["data"]}
    for path in (f"/v1/teams/{team_id}/agents", f"/v1/queues/{queue_id}/members"):
        response = get(emulator, session, path)
        assert (response.status_code, set(response.json())) == (404, {"message"})
        assert emulator.request_log[-1].fault == "gone"
    assert emulator.records("team_members") == [m for m in members_before if m["team_id"] != team_id]
    assert all(m["queue_id"] != queue_id for m in emulator.records("queue_members"))


# ---- scale -------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_large_lists_page_fast() -> None:
    with DixaEmulator(config(conversations=10, end_users=30_000, activity_events=40_000, page_cap=10_000)) as emu:
        with requests.Session() as http:
            http.headers["Authorization"] = TOKEN
            started = time.monotonic()
            users = walk(emu, http, "/v1/endusers", pageLimit=10_000)
            events = walk(emu, http, ACTIVITY_PATH, pageLimit=10_000)
            elapsed = time.monotonic() - started
        assert (len(ids(users)), len(ids(events))) == (30_000, 40_000)
        assert elapsed < 10
