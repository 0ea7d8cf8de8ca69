"""Local emulator of both Dixa APIs the connector reads, on one 127.0.0.1 port, routed by path.

- The Exports API (`exports.py`): `GET /v1/conversation_export` and `GET /v1/message_export`, written from
  `../shared/docs/dixa-exports-api.md`.
- The Dixa API (`dixa_api.py`): agents, end users, teams and members, queues and members, tags, custom attributes,
  contact endpoints, presence and the activity log, written from `../shared/docs/dixa-api.md`.

It serves seeded, deterministic data that looks like a real account, enforces each API's documented request rules
and auth, lets tests switch the undocumented parts (bound inclusiveness, page sizes, orders, rate limits,
Retry-After) and inject faults, and exposes the ground truth. It binds to loopback only and uses nothing outside
the standard library, so it also runs standalone:

    python -m integration_tests.emulator --conversations 1000

prints one JSON line `{"url": ..., "token": ..., "conversations": N, "messages": M, "agents": ..., ...}` and serves
until SIGTERM/SIGINT.

Modules: `config` (settings, log entries), `server` (HTTP, auth rules, loopback checks), `faults` (kinds, queue,
random draw), `limits` (sliding window, token bucket), `exports` + `exports_data`, `dixa_api` + `dixa_store` +
`dixa_data`, `core` (`DixaEmulator`), `__main__` (the CLI).
"""

from __future__ import annotations

from .common import DAY_MS, HOUR_MS, MINUTE_MS
from .config import ACTIVITY_ORDERS, EmulatorConfig, RequestRecord
from .core import STREAMS, DixaEmulator
from .dixa_api import ACTIVITY_PATH, DIXA_STREAMS
from .dixa_data import ACTIVITY_TYPES
from .exports import CONVERSATION_PATH, MESSAGE_PATH
from .faults import (
    BODY_FAULTS,
    FAULT_KINDS,
    FORBIDDEN_FAULT,
    GONE_FAULT,
    NO_FAULT,
    RATE_LIMIT_FAULT,
    SPAN_FAULT,
    STATUS_FAULTS,
)

__all__ = [
    "ACTIVITY_ORDERS",
    "ACTIVITY_PATH",
    "ACTIVITY_TYPES",
    "BODY_FAULTS",
    "CONVERSATION_PATH",
    "DAY_MS",
    "DIXA_STREAMS",
    "FAULT_KINDS",
    "FORBIDDEN_FAULT",
    "GONE_FAULT",
    "HOUR_MS",
    "MESSAGE_PATH",
    "MINUTE_MS",
    "NO_FAULT",
    "RATE_LIMIT_FAULT",
    "SPAN_FAULT",
    "STATUS_FAULTS",
    "STREAMS",
    "DixaEmulator",
    "EmulatorConfig",
    "RequestRecord",
]
