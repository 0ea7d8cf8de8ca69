"""`DixaEmulator`: one loopback server for both APIs, the request pipeline, the request log, ground truth and
the changes tests make between syncs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from .common import dumps
from .config import EmulatorConfig, RequestRecord
from .dixa_api import DIXA_STREAMS, DixaApi
from .exports import ExportsApi
from .faults import BODY_FAULTS, FORBIDDEN_FAULT, NO_FAULT, RATE_LIMIT_FAULT, STATUS_FAULTS, FaultSource, check_kinds
from .server import Exchange, Handler, Headers, Server, check_loopback

STREAMS = ("conversation_export", "message_export", *DIXA_STREAMS)


class _Api(Protocol):
    name: str

    def owns(self, path: str) -> bool: ...
    def template(self, path: str) -> str: ...
    def auth_ok(self, header: str | None, config: EmulatorConfig) -> bool: ...
    def admit(self, config: EmulatorConfig, now: float) -> bool: ...
    def retry_after(self, config: EmulatorConfig, now: float) -> list[tuple[str, str]]: ...
    def send_error(self, handler: Handler, status: int, headers: Headers = ()) -> None: ...
    def serve(self, exchange: Exchange, config: EmulatorConfig, fault: str | None) -> None: ...


class DixaEmulator:
    """A local Dixa Exports API and Dixa API on one 127.0.0.1 port, routed by path. See `EmulatorConfig`."""

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config if config is not None else EmulatorConfig()
        check_loopback(host)
        if self.config.start_ms >= self.config.end_ms:
            raise ValueError("start_ms must be before end_ms")
        check_kinds(self.config.fault_kinds)
        self._host = host
        self._port = port
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

        # One lock guards the data, the fault queue/rng and the rate limiters.
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self.request_log: list[RequestRecord] = []
        self._faults = FaultSource(self.config.fault_seed)
        self.exports = ExportsApi(self.config, self._lock)
        ids = range(1000, 1000 + len(self.exports.conversations))
        self.dixa = DixaApi(self.config, self._lock, self.exports.pools, ids)
        self._apis: tuple[_Api, ...] = (self.exports, self.dixa)

    # ---- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._server = Server((self._host, self._port), self._handle)
        port = self._server.server_address[1]
        self._url = f"http://{self._host}:{port}"
        # stop() waits up to one poll interval; tests start and stop many emulators, so keep it short.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="dixa-emulator", daemon=True
        )
        self._thread.start()
        return self._url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> DixaEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL of both APIs: use it as the connector's `api_url` and `dixa_api_url`."""
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    # ---- faults and log ------------------------------------------------------------------------------------------

    def inject(self, *faults: str, path_prefix: str | None = None) -> None:
        """Queue faults, one per request, in order: for the next requests whatever they are, or, with `path_prefix`,
        for the next requests whose path starts with it (others pass them by). "none" is a placeholder.

        Only requests that pass authentication, the rate limiter and `forbidden_paths` consume a queued fault.
        """
        with self._lock:
            self._faults.push(faults, path_prefix)

    def pending_faults(self) -> list[tuple[str, str | None]]:
        """Queued faults not yet served, as (kind, path prefix)."""
        with self._lock:
            return self._faults.pending()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_log(self) -> None:
        with self._log_lock:
            self.request_log.clear()

    def requests(self, path_prefix: str = "", page_key: str | None = None) -> list[RequestRecord]:
        """Logged requests whose path starts with `path_prefix` (and that carried `pageKey=page_key`, if given)."""
        with self._log_lock:
            log = list(self.request_log)
        return [
            record
            for record in log
            if record.path.startswith(path_prefix) and (page_key is None or record.params.get("pageKey") == page_key)
        ]

    # ---- ground truth (whatever visibility_delay_s hides) --------------------------------------------------------

    def conversations(self) -> list[dict[str, Any]]:
        """Copies of all conversations, ordered by id."""
        return self.exports.conversation_records()

    def messages(self) -> list[dict[str, Any]]:
        """Copies of all messages, in served order: by (created_at, id)."""
        return self.exports.message_records()

    def records(self, stream: str) -> list[dict[str, Any]]:
        """Copies of every record of a connector stream, exactly as served (timestamps raw, `...Z[GMT]` included).

        `conversation_export` is ordered by id, everything else in served order (activity_logs by time). `tags`
        includes Inactive tags; `team_members` / `queue_members` get `team_id` / `queue_id` (as the connector adds
        them) and leave out the lists of `gone_team_ids` / `gone_queue_ids`. Streams: see `STREAMS`.
        """
        if stream == "conversation_export":
            return self.conversations()
        if stream == "message_export":
            return self.messages()
        if stream not in DIXA_STREAMS:
            raise KeyError(f"unknown stream {stream!r}; expected one of {STREAMS}")
        return self.dixa.records(stream, self.config)

    def expected_conversation_ids(self, start_ms: int, end_ms: int) -> set[int]:
        """Ids with `start_ms <= updated_at < end_ms`."""
        with self._lock:
            return set(self.exports.conversations.keys_between(start_ms, end_ms))

    def expected_message_ids(self, start_ms: int, end_ms: int) -> set[str]:
        """Ids with `start_ms <= created_at < end_ms`."""
        with self._lock:
            return set(self.exports.messages.keys_between(start_ms, end_ms))

    def expected_activity_ids(self, start_ms: int, end_ms: int) -> set[str]:
        """Activity event ids with `start_ms <= activityTimestamp (in ms) < end_ms`."""
        return self.dixa.expected_activity_ids(start_ms, end_ms)

    def counts(self) -> dict[str, int]:
        """Record counts per stream."""
        with self._lock:
            counts = {
                "conversation_export": len(self.exports.conversations),
                "message_export": len(self.exports.messages),
            }
        return {**counts, **self.dixa.counts()}

    # ---- changing data between syncs -----------------------------------------------------------------------------

    def update_conversations(self, ids: Iterable[int], updated_at_ms: int) -> None:
        """Touch conversations: set `updated_at`, close them at that time and bump `emulator_extra_field.revision`.

        `updated_at` only moves forward in a real account, so a value below a conversation's current `updated_at`
        raises ValueError (use `add_conversations` to place records anywhere in time). Unknown ids raise KeyError.
        """
        self.exports.update_conversations(ids, updated_at_ms)

    def reply_to_conversations(self, ids: Iterable[int], at_ms: int) -> list[str]:
        """A new outbound message in each conversation, created at `at_ms`, which also updates the conversation.

        This is how conversations change in a real account; returns the new message ids.
        """
        return self.exports.reply_to_conversations(ids, at_ms)

    def add_conversations(self, count: int, updated_at_ms: int) -> list[int]:
        """Create `count` conversations with `updated_at == updated_at_ms` (messages at or before it); return ids."""
        return self.exports.add_conversations(count, updated_at_ms)

    def add_activity_events(self, count: int, at_ms: int) -> list[str]:
        """Create `count` activity events stamped `at_ms` (random types, on exported conversations); return ids."""
        return self.dixa.add_activity_events(count, at_ms)

    def add_agents(self, count: int) -> list[str]:
        """Append `count` new agents to /v1/agents; return their ids."""
        return self.dixa.add_people("agents", count)

    def add_end_users(self, count: int) -> list[str]:
        """Append `count` new end users to /v1/endusers; return their ids."""
        return self.dixa.add_people("end_users", count)

    def update_record(self, stream: str, record_id: str, **changes: Any) -> dict[str, Any]:
        """Change fields of one record of agents, end_users, teams, queues, tags or custom_attributes in place (it
        keeps its position); returns the new record. Unknown ids raise KeyError."""
        return self.dixa.update_record(stream, record_id, changes)

    def remove_record(self, stream: str, record_id: str) -> None:
        """Delete one record of agents, end_users, teams, queues, tags or custom_attributes (a team or queue takes
        its member list with it)."""
        self.dixa.remove_record(stream, record_id)

    # ---- the request pipeline ------------------------------------------------------------------------------------

    def _append_log(self, record: RequestRecord) -> None:
        # Appended before the response is sent, so a client that has its answer always finds the entry.
        with self._log_lock:
            self.request_log.append(record)

    def _handle(self, handler: Handler) -> None:
        """Route, authenticate, rate-limit, check `forbidden_paths`, draw a fault, then let the API answer."""
        now = time.monotonic()
        config = self.config
        parts = urlsplit(handler.path)
        path = parts.path
        params = {name: values[-1] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        header = handler.headers.get("Authorization")
        api = next((candidate for candidate in self._apis if candidate.owns(path)), None)
        if api is None:
            auth_ok = any(candidate.auth_ok(header, config) for candidate in self._apis)
        else:
            auth_ok = api.auth_ok(header, config)

        def log(status: int, fault: str | None) -> None:
            self._append_log(RequestRecord(now, path, params, status, fault, auth_ok, api.name if api else None))

        if api is None:
            log(404, None)
            handler.send_bytes(404, "application/json", dumps({"message": f"No route for {path}"}))
            return
        if not auth_ok:
            log(401, None)  # Exports: "401 Invalid or missing credentials", no body; Dixa API: {"message": ...}
            api.send_error(handler, 401)
            return
        with self._lock:
            admitted = api.admit(config, now)
            retry_headers = [] if admitted else api.retry_after(config, now)
            forbidden = admitted and (path in config.forbidden_paths or api.template(path) in config.forbidden_paths)
            fault = self._faults.draw(path, config) if admitted and not forbidden else None
        if not admitted:
            log(429, RATE_LIMIT_FAULT)
            api.send_error(handler, 429, retry_headers)
            return
        if forbidden:
            log(403, FORBIDDEN_FAULT)
            api.send_error(handler, 403)
            return
        if fault == NO_FAULT:
            fault = None

        if fault == "reset":
            log(0, fault)
            handler.reset()
            return
        if fault is not None and fault in STATUS_FAULTS:
            headers: list[tuple[str, str]] = []
            if fault == "429":
                with self._lock:
                    headers = api.retry_after(config, now)
            log(int(fault), fault)
            api.send_error(handler, int(fault), headers)
            return
        if fault == "not_json":
            log(200, fault)
            handler.send_bytes(200, "text/html", b"<html>oops</html>")
            return
        if fault == "json_object":
            # A 200 that is not the documented shape: an object on the Exports API, no "data" on the Dixa API.
            log(200, fault)
            handler.send_bytes(200, "application/json", b'{"message": "unexpected"}')
            return
        if fault == "slow":
            time.sleep(config.slow_s)
        elif fault is not None and fault not in BODY_FAULTS:
            # An unknown kind set at runtime in config.fault_kinds: serve it as a generic server error.
            log(500, fault)
            api.send_error(handler, 500)
            return
        api.serve(Exchange(handler, path, params, now, log), config, fault)
