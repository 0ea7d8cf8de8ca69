"""The emulator's settings and its request log entries."""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import DAY_MS

ACTIVITY_ORDERS = ("asc", "desc", "shuffled")


@dataclass
class EmulatorConfig:
    """Emulator settings.

    The data fields (`seed`, `start_ms`, `end_ms`, `conversations`, `messages_per_conversation` and the Dixa API sizes
    `agents` ... `activity_events`) are read once, when `DixaEmulator` is constructed. Everything else is read on every
    request, so tests may change it at runtime.

    Retry-After on 429 responses (rate-limit 429s and injected "429" faults). `retry_after_s` is the Exports API's,
    `dixa_retry_after_s` the Dixa API's:
    - `None`: no header (nothing documents one).
    - `0`: dynamic, the seconds until the limiter would admit a request again (1 if it would now).
    - `>0`: that fixed value.
    The value is sent as whole seconds rounded up, minimum 1, unless `retry_after_fractional` is set; then it is
    sent with up to 3 decimals (minimum 0.001), which lets tests keep retries in the millisecond range.

    New fields are appended at the end, so positional construction of the old fields keeps working.
    """

    # ---- shared / Exports API (the original fields, in their original order) ----
    token: str = "emulator-token"
    seed: int = 7
    conversations: int = 500
    messages_per_conversation: float = 3.0
    start_ms: int = 1704067200000  # 2024-01-01T00:00:00Z
    end_ms: int = 1735689600000  # 2025-01-01T00:00:00Z
    after_inclusive: bool = False
    before_inclusive: bool = False
    max_span_ms: int = 31 * DAY_MS
    rate_limit: int | None = None  # Exports API: at most this many requests per `rate_window_s` (sliding window)
    rate_window_s: float = 60.0
    retry_after_s: float | None = None
    retry_after_fractional: bool = False
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("500", "503", "429", "reset", "truncate", "slow")
    fault_seed: int = 1
    slow_s: float = 2.0
    fail_span_over_ms: int | None = None

    # ---- Dixa API data sizes (read once) ----
    agents: int = 25
    end_users: int = 300
    teams: int = 4
    queues: int = 6  # >= the 6 queues the Exports records name, so every queue_id joins
    tags: int = 12
    custom_attributes: int = 8
    contact_endpoints: int = 6
    activity_events: int = 1500

    # ---- Dixa API rules (read per request) ----
    # The documented auth is the raw token (`Authorization: <token>`). PostHog reports `Bearer <token>` working, which
    # Dixa does not confirm; it is refused unless this is set.
    dixa_accept_bearer: bool = False
    # Token bucket, "10 requests per second, burst 4" in the docs; None turns it off.
    dixa_rate_per_s: float | None = None
    dixa_burst: int = 4
    dixa_retry_after_s: float | None = None
    # Page size: `pageLimit` if given (capped at `page_cap`), else `default_page_limit` (also capped).
    page_cap: int = 100
    default_page_limit: int = 50
    # `meta.next` is a relative path (`/v1/agents?pageKey=...`) unless this makes it absolute on the same origin.
    absolute_next: bool = False
    # Where the `foreign_next` fault points `meta.next`. Must be an http:// origin on a loopback IP address.
    foreign_origin: str = "http://127.0.0.1:9"
    # Activity log bounds on activityTimestamp: fromDatetime inclusive?, toDatetime inclusive?
    activity_from_inclusive: bool = True
    activity_to_inclusive: bool = False
    # "asc" (time order), "desc", or "shuffled" (a fixed, seeded order unrelated to time).
    activity_order: str = "asc"
    # Paths answered 403 `{"message": ...}`: an exact path (`/v1/teams/<id>/agents`) or a route template
    # (`/v1/teams/{teamId}/agents`, `/v1/queues/{queueId}/members`). Exports paths get an empty 403.
    forbidden_paths: tuple[str, ...] = ()
    # Teams / queues still listed by /v1/teams and /v1/queues whose member lists answer 404 (deleted in between).
    gone_team_ids: tuple[str, ...] = ()
    gone_queue_ids: tuple[str, ...] = ()

    # ---- both APIs (read per request) ----
    # A record stamped t (conversation updated_at, message created_at, activity activityTimestamp) is served only once
    # the wall clock reaches t + this delay. 0 turns the check off (records stamped in the future are served).
    visibility_delay_s: float = 0.0
    # Random faults (`fault_rate`) hit only paths starting with one of these prefixes; None = every path.
    fault_paths: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it.

    `status` is 0 when the connection was reset before any response. `fault` is the injected or random fault kind,
    `"rate_limit"` for a 429 from a rate limiter, `"span"` for a 504 from `fail_span_over_ms`, `"forbidden"` for a 403
    from `forbidden_paths`, `"gone"` for a 404 from `gone_team_ids`/`gone_queue_ids`, else None. `params` holds the
    query parameters (the last value of each), so `params.get("pageKey")` shows which page was asked for. `api` is
    "exports", "dixa" or None (an unknown path).
    """

    time_s: float
    path: str
    params: dict[str, str]
    status: int
    fault: str | None
    auth_ok: bool
    api: str | None = field(default=None)
