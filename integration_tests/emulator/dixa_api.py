"""The Dixa API (dev.dixa.io) read endpoints of dixa-api.md §3-4: raw-token auth, the `{"data", "meta"}` envelope,
opaque `pageKey` pagination, the bare presence array, `{"message": ...}` errors and a token-bucket rate limit.

Paginated (`pageLimit`, `pageKey`, `meta.next` absent on the last page): /v1/agents, /v1/endusers,
/v1/conversations/activitylog. Not paginated (`{"data": [...]}`): /v1/teams, /v1/teams/{teamId}/agents, /v1/queues,
/v1/queues/{queueId}/members, /v1/tags, /v1/custom-attributes, /v1/contact-endpoints. Bare array: /v1/agents/presence.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from .common import drop_field, dumps, to_ms
from .config import ACTIVITY_ORDERS, EmulatorConfig
from .dixa_data import ACTIVITY_TYPES, DixaGenerator
from .dixa_store import EventLog, PageKeys, RecordList
from .exports_data import Pools
from .faults import GONE_FAULT, format_retry_after
from .limits import TokenBucket
from .server import Exchange, Handler, Headers, check_loopback_origin, dixa_auth_ok

ACTIVITY_PATH = "/v1/conversations/activitylog"
# (path pattern, route template, stream name); a template is what `forbidden_paths` may name.
_ROUTES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern), template, stream)
    for pattern, template, stream in (
        (r"/v1/agents", "/v1/agents", "agents"),
        (r"/v1/agents/presence", "/v1/agents/presence", "agent_presence"),
        (r"/v1/endusers", "/v1/endusers", "end_users"),
        (r"/v1/teams", "/v1/teams", "teams"),
        (r"/v1/teams/([^/]+)/agents", "/v1/teams/{teamId}/agents", "team_members"),
        (r"/v1/queues", "/v1/queues", "queues"),
        (r"/v1/queues/([^/]+)/members", "/v1/queues/{queueId}/members", "queue_members"),
        (r"/v1/tags", "/v1/tags", "tags"),
        (r"/v1/custom-attributes", "/v1/custom-attributes", "custom_attributes"),
        (r"/v1/contact-endpoints", "/v1/contact-endpoints", "contact_endpoints"),
        (ACTIVITY_PATH, ACTIVITY_PATH, "activity_logs"),
    )
)
DIXA_STREAMS = tuple(stream for _, _, stream in _ROUTES)
# The field `missing_cursor` drops from a record: the activity log's cursor, else the record's key.
_KEY_FIELDS = {"activity_logs": "activityTimestamp", "queue_members": "agentId", "agent_presence": "userId",
               "contact_endpoints": "_type"}  # fmt: skip
_MESSAGES = {
    400: "Invalid value in request", 401: "Invalid or missing credentials", 403: "Forbidden", 404: "Not found",
    429: "Too many requests", 500: "There was an internal server error while processing the request",
    502: "Bad gateway", 503: "Service unavailable", 504: "Gateway timeout",
}  # fmt: skip
# fromDatetime / toDatetime: `2024-05-01T12:30:00.000Z` or `2024-05-01T12:30:00Z`, UTC only.
_DATETIME_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{3}))?Z")
_ENDPOINT_TYPES = ("EmailEndpoint", "TelephonyEndpoint")


class _Refusal(Exception):
    def __init__(self, status: int, message: str, marker: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.marker = status, message, marker


@dataclass
class _Answer:
    payloads: list[bytes]
    envelope: bool = True  # False: a bare JSON array
    meta: dict[str, str] | None = None  # None: no "meta" at all (the unpaginated lists)
    fallback: bytes | None = None  # a record for `missing_cursor` to break when the page is empty
    loop_link: str = ""  # `looping_next`: the page just served
    foreign_path: str = ""  # `foreign_next`: path and query to put on config.foreign_origin


class DixaApi:
    """The Dixa API over one generated account. Callers hold `lock` for everything but `serve`."""

    name = "dixa"

    def __init__(self, config: EmulatorConfig, lock: Any, pools: Pools, conversation_ids: range) -> None:
        sizes = ("agents", "end_users", "teams", "queues", "tags", "custom_attributes", "contact_endpoints",
                 "activity_events")  # fmt: skip
        negative = [name for name in sizes if getattr(config, name) < 0]
        if negative:
            raise ValueError(f"{', '.join(negative)} must not be negative")
        if config.activity_order not in ACTIVITY_ORDERS:
            raise ValueError(f"activity_order must be one of {ACTIVITY_ORDERS}, got {config.activity_order!r}")
        check_loopback_origin(config.foreign_origin)
        self._lock = lock
        self._bucket = TokenBucket()
        self._keys = PageKeys(hashlib.sha256(f"dixa-emulator-page-keys-{config.seed}".encode()).digest())
        self._mutation_rng = random.Random(f"dixa-api-mutations-{config.seed}")
        gen = self.generator = DixaGenerator(
            random.Random(f"dixa-api-{config.seed}"), pools, config.start_ms, config.end_ms, conversation_ids
        )
        self.agents, self.end_users, self.teams, self.queues = RecordList(), RecordList(), RecordList(), RecordList()
        self.tags, self.custom_attributes = RecordList(), RecordList()
        self.contact_endpoints, self.presence = RecordList(key="\0none"), RecordList(key="userId")
        self.team_members: dict[str, RecordList] = {}
        self.queue_members: dict[str, RecordList] = {}
        agents = gen.agents(config.agents)
        self.agents.load(agents)
        for team, members in gen.teams(config.teams, agents):
            self.teams.put(team)
            self.team_members[team["id"]] = RecordList()
            self.team_members[team["id"]].load(members)
        for queue, queue_members in gen.queues(config.queues, agents):
            self.queues.put(queue)
            self.queue_members[queue["id"]] = RecordList(key="agentId")
            self.queue_members[queue["id"]].load(queue_members)
        self.tags.load(gen.tags(config.tags))
        self.custom_attributes.load(gen.custom_attributes(config.custom_attributes))
        self.contact_endpoints.load(gen.contact_endpoints(config.contact_endpoints))
        self.presence.load(gen.presence(agents))
        self.end_users.load(gen.end_user(gen.rng, index) for index in range(config.end_users))
        self.events = EventLog()
        events = gen.activity(config.activity_events)
        self.events.bulk_load([(at_ms, key, dumps(record)) for at_ms, key, record in events])

    # ---- the request pipeline (see DixaEmulator._handle) ----------------------------------------------------------

    @staticmethod
    def _route(path: str) -> tuple[str, str, str] | None:
        for pattern, template, stream in _ROUTES:
            match = pattern.fullmatch(path)
            if match:
                return template, stream, match.group(1) if match.groups() else ""
        return None

    def owns(self, path: str) -> bool:
        return self._route(path) is not None

    def template(self, path: str) -> str:
        route = self._route(path)
        return route[0] if route else path

    @staticmethod
    def auth_ok(header: str | None, config: EmulatorConfig) -> bool:
        return dixa_auth_ok(header, config.token, config.dixa_accept_bearer)

    def admit(self, config: EmulatorConfig, now: float) -> bool:
        return self._bucket.admit(config.dixa_rate_per_s, config.dixa_burst, now)

    def retry_after(self, config: EmulatorConfig, now: float) -> list[tuple[str, str]]:
        if config.dixa_retry_after_s is None:
            return []
        if config.dixa_retry_after_s == 0:
            wait_s = self._bucket.wait_s(config.dixa_rate_per_s, config.dixa_burst, now)
        else:
            wait_s = config.dixa_retry_after_s
        return [("Retry-After", format_retry_after(wait_s, config.retry_after_fractional))]

    @staticmethod
    def send_error(handler: Handler, status: int, headers: Headers = (), message: str | None = None) -> None:
        body = dumps({"message": message or _MESSAGES.get(status, "Error")})
        handler.send_bytes(status, "application/json", body, headers)

    def serve(self, exchange: Exchange, config: EmulatorConfig, fault: str | None) -> None:
        route = self._route(exchange.path)
        assert route is not None
        template, stream, arg = route
        try:
            answer = self._answer(exchange, config, template, stream, arg)
        except _Refusal as refusal:
            exchange.log(refusal.status, refusal.marker or fault)
            self.send_error(exchange.handler, refusal.status, message=refusal.message)
            return
        if fault == "foreign_next":
            try:  # re-checked here: tests may change it at runtime, and a followed link must stay on this machine
                check_loopback_origin(config.foreign_origin)
            except ValueError as error:
                exchange.log(500, fault)
                self.send_error(exchange.handler, 500, message=str(error))
                return
        payloads = answer.payloads
        if fault == "missing_cursor":
            payloads = drop_field(list(payloads), answer.fallback, _KEY_FIELDS.get(stream, "id"))
        meta = answer.meta
        if answer.envelope and fault in ("foreign_next", "looping_next"):
            meta = dict(meta or {})
            if fault == "foreign_next":
                meta["next"] = config.foreign_origin.rstrip("/") + answer.foreign_path
            else:
                meta["next"] = answer.loop_link
        prefix = suffix = b""
        if answer.envelope:
            prefix = b'{"data":'
            suffix = b"}" if meta is None else b',"meta":' + dumps(meta) + b"}"
        content_type = "text/plain" if fault == "wrong_content_type" else "application/json"
        exchange.log(200, fault)
        exchange.handler.send_array(payloads, content_type, fault == "truncate", prefix, suffix)

    def _answer(self, exchange: Exchange, config: EmulatorConfig, template: str, stream: str, arg: str) -> _Answer:
        params, path = exchange.params, exchange.path
        query = ("?" + urlencode(params)) if params else ""
        link_base = (exchange.handler.origin if config.absolute_next else "") + path
        with self._lock:
            if stream in ("agents", "end_users"):
                store = self.agents if stream == "agents" else self.end_users
                return self._paginate(template, params, config, link_base, path, lambda: {}, len(store),
                                      lambda offset, limit, _: store.payloads()[offset : offset + limit],
                                      store.payloads()[:1])  # fmt: skip
            if stream == "activity_logs":
                return self._activity(template, params, config, link_base, path)
            if stream == "agent_presence":
                return _Answer(list(self.presence.payloads()), envelope=False)
            payloads = self._list(stream, arg, params, config)
        return _Answer(payloads, fallback=payloads[0] if payloads else None, loop_link=link_base + query,
                       foreign_path=path + query)  # fmt: skip

    def _list(self, stream: str, arg: str, params: dict[str, str], config: EmulatorConfig) -> list[bytes]:
        if stream in ("team_members", "queue_members"):
            gone = config.gone_team_ids if stream == "team_members" else config.gone_queue_ids
            lists = self.team_members if stream == "team_members" else self.queue_members
            what = "Team" if stream == "team_members" else "Queue"
            if arg in gone:
                raise _Refusal(404, f"{what} {arg} not found", GONE_FAULT)
            if arg not in lists:
                raise _Refusal(404, f"{what} {arg} not found")
            return list(lists[arg].payloads())
        if stream == "tags":
            include = params.get("includeDeactivated", "false").lower()
            if include not in ("true", "false"):
                raise _Refusal(400, "Invalid value for: query parameter includeDeactivated")
            if include == "true":
                return list(self.tags.payloads())
            return [payload for payload in self.tags.payloads() if b'"state":"Active"' in payload]
        if stream == "contact_endpoints":
            wanted = params.get("_type")
            if wanted is None:
                return list(self.contact_endpoints.payloads())
            if wanted not in _ENDPOINT_TYPES:
                raise _Refusal(400, "Invalid value for: query parameter _type")
            marker = b'"_type":"' + wanted.encode() + b'"'
            return [payload for payload in self.contact_endpoints.payloads() if marker in payload]
        store = {"teams": self.teams, "queues": self.queues, "custom_attributes": self.custom_attributes}[stream]
        return list(store.payloads())

    def _activity(
        self, template: str, params: dict[str, str], config: EmulatorConfig, link_base: str, path: str
    ) -> _Answer:
        def filters_from_params() -> dict[str, Any]:
            order = config.activity_order if config.activity_order in ACTIVITY_ORDERS else "asc"
            return {"from": params.get("fromDatetime"), "to": params.get("toDatetime"), "order": order}

        def select(filters: dict[str, Any]) -> tuple[int, int]:
            from_ms, to_ms = (
                _parse_datetime(filters.get("from"), "fromDatetime"),
                _parse_datetime(filters.get("to"), "toDatetime"),
            )
            if from_ms is not None and to_ms is not None and from_ms > to_ms:
                raise _Refusal(400, "fromDatetime must not be after toDatetime")
            cutoff_ms = None
            if config.visibility_delay_s > 0:
                cutoff_ms = int(time.time() * 1000 - config.visibility_delay_s * 1000)
            return self.events.span(
                from_ms, config.activity_from_inclusive, to_ms, config.activity_to_inclusive, cutoff_ms
            )

        spans: dict[str, tuple[int, int]] = {}

        def total(filters: dict[str, Any]) -> int:
            spans["range"] = select(filters)
            return spans["range"][1] - spans["range"][0]

        def page(offset: int, limit: int, filters: dict[str, Any]) -> list[bytes]:
            lo, hi = spans["range"]
            order = filters.get("order") if filters.get("order") in ACTIVITY_ORDERS else "asc"
            return self.events.page(lo, hi, str(order), offset, limit)

        fallback = self.events.first_payload()
        return self._paginate(template, params, config, link_base, path, filters_from_params, total, page,
                              [fallback] if fallback else [])  # fmt: skip

    def _paginate(
        self,
        template: str,
        params: dict[str, str],
        config: EmulatorConfig,
        link_base: str,
        path: str,
        filters_from_params: Callable[[], dict[str, Any]],
        total: int | Callable[[dict[str, Any]], int],
        page: Callable[[int, int, dict[str, Any]], list[bytes]],
        fallback: list[bytes],
    ) -> _Answer:
        raw_key = params.get("pageKey")
        if raw_key is not None:
            decoded = self._keys.decode(raw_key, template)
            if decoded is None:
                raise _Refusal(400, "Invalid value for: query parameter pageKey")
            offset, limit, filters = decoded
        else:
            offset, limit, filters = 0, config.default_page_limit, filters_from_params()
        if "pageLimit" in params:
            text = params["pageLimit"]
            if not (text.isascii() and text.isdigit()) or int(text) < 1 or len(text) > 9:
                raise _Refusal(400, "Invalid value for: query parameter pageLimit")
            limit = int(text)
        limit = max(1, min(limit, config.page_cap))
        count = total(filters) if callable(total) else total
        payloads = page(offset, limit, filters)
        meta: dict[str, str] = {}
        next_key = self._keys.encode(template, offset + limit, limit, filters) if offset + limit < count else None
        if next_key is not None:
            meta["next"] = f"{link_base}?pageKey={next_key}"
        if offset > 0:
            previous_key = self._keys.encode(template, max(0, offset - limit), limit, filters)
            meta["previous"] = f"{link_base}?pageKey={previous_key}"
        loop_key = raw_key or self._keys.encode(template, 0, limit, filters)
        foreign_key = next_key or self._keys.encode(template, max(count, offset + limit), limit, filters)
        return _Answer(
            payloads,
            meta=meta,
            fallback=fallback[0] if fallback else None,
            loop_link=f"{link_base}?pageKey={loop_key}",
            foreign_path=f"{path}?pageKey={foreign_key}",
        )

    # ---- ground truth --------------------------------------------------------------------------------------------

    def records(self, stream: str, config: EmulatorConfig) -> list[dict[str, Any]]:
        """All records of a stream as served (raw, `[GMT]` suffixes kept), in served order; tags include Inactive
        ones. Team and queue members get `team_id` / `queue_id`, except those of `gone_team_ids`/`gone_queue_ids`."""
        with self._lock:
            if stream in ("team_members", "queue_members"):
                parents = self.teams if stream == "team_members" else self.queues
                lists = self.team_members if stream == "team_members" else self.queue_members
                gone = config.gone_team_ids if stream == "team_members" else config.gone_queue_ids
                parent_field = "team_id" if stream == "team_members" else "queue_id"
                return [
                    {**member, parent_field: parent_id}
                    for parent_id in parents.ids()
                    if parent_id not in gone and parent_id in lists
                    for member in lists[parent_id].records()
                ]
            if stream == "activity_logs":
                return self.events.records()
            stores = {"agents": self.agents, "end_users": self.end_users, "teams": self.teams, "queues": self.queues,
                      "tags": self.tags, "custom_attributes": self.custom_attributes,
                      "contact_endpoints": self.contact_endpoints, "agent_presence": self.presence}  # fmt: skip
            if stream not in stores:
                raise KeyError(f"unknown stream {stream!r}")
            return stores[stream].records()

    def expected_activity_ids(self, start_ms: int, end_ms: int) -> set[str]:
        with self._lock:
            return set(self.events.ids_between(start_ms, end_ms))

    # ---- changing data between syncs -----------------------------------------------------------------------------

    def add_activity_events(self, count: int, at_ms: int) -> list[str]:
        with self._lock:
            rng, gen, new_ids = self._mutation_rng, self.generator, []
            for _ in range(count):
                kind = rng.choice(ACTIVITY_TYPES)
                event_id, record = gen.event(rng, kind, at_ms, rng.choice(gen.conversation_ids))
                self.events.insert(at_ms, event_id, dumps(record))
                new_ids.append(event_id)
            return new_ids

    def add_people(self, stream: str, count: int) -> list[str]:
        with self._lock:
            store = self.agents if stream == "agents" else self.end_users
            new_ids = []
            for _ in range(count):
                index = len(store)
                record = (
                    self.generator.agent(self._mutation_rng, max(index, len(self.generator.pools.agents)))
                    if stream == "agents"
                    else self.generator.end_user(self._mutation_rng, index)
                )
                store.put(record)
                new_ids.append(record["id"])
            return new_ids

    def mutable(self, stream: str) -> RecordList:
        stores = {"agents": self.agents, "end_users": self.end_users, "teams": self.teams, "queues": self.queues,
                  "tags": self.tags, "custom_attributes": self.custom_attributes}  # fmt: skip
        if stream not in stores:
            raise KeyError(f"{stream!r} cannot be changed; expected one of {sorted(stores)}")
        return stores[stream]

    def update_record(self, stream: str, key: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            store = self.mutable(stream)
            record = store.get(key)
            record.update(changes)
            record["id"] = key
            store.put(record)
            return record

    def remove_record(self, stream: str, key: str) -> None:
        with self._lock:
            self.mutable(stream).remove(key)
            if stream == "teams":
                self.team_members.pop(key, None)
            elif stream == "queues":
                self.queue_members.pop(key, None)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "agents": len(self.agents), "end_users": len(self.end_users), "teams": len(self.teams),
                "team_members": sum(map(len, self.team_members.values())), "queues": len(self.queues),
                "queue_members": sum(map(len, self.queue_members.values())), "tags": len(self.tags),
                "custom_attributes": len(self.custom_attributes), "contact_endpoints": len(self.contact_endpoints),
                "agent_presence": len(self.presence), "activity_logs": len(self.events),
            }  # fmt: skip


def _parse_datetime(value: Any, name: str) -> int | None:
    if value is None:
        return None
    match = _DATETIME_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _Refusal(400, f"Invalid value for: query parameter {name}")
    year, month, day, hour, minute, second, millis = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError:
        raise _Refusal(400, f"Invalid value for: query parameter {name}") from None
    return to_ms(moment) + int(millis or 0)
