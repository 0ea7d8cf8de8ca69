"""The emulator as a process: `python -m integration_tests.emulator [options]` (from the repository root).

Prints one JSON line `{"url", "token", "conversations", "messages", <Dixa API stream>: count, ...}` once it serves,
then serves until SIGTERM/SIGINT and exits 0. `python integration_tests/emulator` (the directory) works too.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

if not __package__:  # run as `python integration_tests/emulator`: make the package importable, then re-enter it
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from integration_tests.emulator.__main__ import main as _main

    sys.exit(_main())

from .config import ACTIVITY_ORDERS, EmulatorConfig
from .core import DixaEmulator


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m integration_tests.emulator",
        description="Serve a local emulator of the Dixa Exports API and the Dixa API on 127.0.0.1 (one port).",
    )
    parser.add_argument("--conversations", type=int, default=defaults.conversations)
    parser.add_argument("--messages-per-conversation", type=float, default=defaults.messages_per_conversation)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--port", type=int, default=0, help="0 lets the OS choose")
    parser.add_argument("--token", default=defaults.token)
    parser.add_argument("--start-ms", type=int, default=defaults.start_ms)
    parser.add_argument("--end-ms", type=int, default=defaults.end_ms)
    parser.add_argument("--after-inclusive", action="store_true")
    parser.add_argument("--before-inclusive", action="store_true")
    parser.add_argument("--rate-limit", type=int, default=None, help="Exports API: requests per --rate-window-s")
    parser.add_argument("--rate-window-s", type=float, default=defaults.rate_window_s)
    parser.add_argument("--retry-after-s", type=float, default=None)
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate)
    parser.add_argument("--fault-seed", type=int, default=defaults.fault_seed)
    dixa = parser.add_argument_group("Dixa API")
    for name in ("agents", "end_users", "teams", "queues", "tags", "custom_attributes", "contact_endpoints",
                 "activity_events"):  # fmt: skip
        dixa.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    dixa.add_argument("--page-cap", type=int, default=defaults.page_cap)
    dixa.add_argument("--default-page-limit", type=int, default=defaults.default_page_limit)
    dixa.add_argument("--dixa-rate-per-s", type=float, default=None, help="token bucket rate; off when absent")
    dixa.add_argument("--dixa-burst", type=int, default=defaults.dixa_burst)
    dixa.add_argument("--dixa-retry-after-s", type=float, default=None)
    dixa.add_argument("--absolute-next", action="store_true", help="meta.next as an absolute URL")
    dixa.add_argument("--activity-order", choices=ACTIVITY_ORDERS, default=defaults.activity_order)
    dixa.add_argument("--activity-from-exclusive", action="store_true")
    dixa.add_argument("--activity-to-inclusive", action="store_true")
    parser.add_argument("--visibility-delay-s", type=float, default=defaults.visibility_delay_s)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    config = EmulatorConfig(
        token=args.token,
        seed=args.seed,
        conversations=args.conversations,
        messages_per_conversation=args.messages_per_conversation,
        start_ms=args.start_ms,
        end_ms=args.end_ms,
        after_inclusive=args.after_inclusive,
        before_inclusive=args.before_inclusive,
        rate_limit=args.rate_limit,
        rate_window_s=args.rate_window_s,
        retry_after_s=args.retry_after_s,
        fault_rate=args.fault_rate,
        fault_seed=args.fault_seed,
        agents=args.agents,
        end_users=args.end_users,
        teams=args.teams,
        queues=args.queues,
        tags=args.tags,
        custom_attributes=args.custom_attributes,
        contact_endpoints=args.contact_endpoints,
        activity_events=args.activity_events,
        page_cap=args.page_cap,
        default_page_limit=args.default_page_limit,
        dixa_rate_per_s=args.dixa_rate_per_s,
        dixa_burst=args.dixa_burst,
        dixa_retry_after_s=args.dixa_retry_after_s,
        absolute_next=args.absolute_next,
        activity_order=args.activity_order,
        activity_from_inclusive=not args.activity_from_exclusive,
        activity_to_inclusive=args.activity_to_inclusive,
        visibility_delay_s=args.visibility_delay_s,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator = DixaEmulator(config, port=args.port)
    url = emulator.start()
    counts = emulator.counts()
    summary = {
        "url": url,
        "token": config.token,
        "conversations": counts.pop("conversation_export"),
        "messages": counts.pop("message_export"),
        **counts,
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()
    try:
        # Wake up regularly: a plain wait() can miss a signal that arrives before it starts blocking.
        while not stop.wait(0.2):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
