"""Fault kinds, the queue of injected faults, the seeded random draw, and Retry-After formatting."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from .config import EmulatorConfig

# Every fault `inject()` accepts; `EmulatorConfig.fault_kinds` draws from the same names.
FAULT_KINDS: tuple[str, ...] = (
    "500",
    "502",
    "503",
    "504",
    "429",
    "401",
    "400",
    "reset",
    "truncate",
    "slow",
    "not_json",
    "json_object",
    "missing_cursor",
    "wrong_content_type",
    # Dixa API only (served as a normal answer on the Exports API and on the bare presence array):
    "foreign_next",  # meta.next on config.foreign_origin
    "looping_next",  # meta.next points back at the page just served
    # A placeholder: the request it lands on is served normally (lets a queue hit the 2nd, 3rd, ... request).
    "none",
)
NO_FAULT = "none"
# Faults answered with a bare status: an empty body on the Exports API, `{"message": ...}` on the Dixa API.
STATUS_FAULTS = frozenset({"500", "502", "503", "504", "429", "401", "400"})
# Faults that need a valid query because they distort an otherwise normal 200 answer.
BODY_FAULTS = frozenset({"truncate", "missing_cursor", "wrong_content_type", "foreign_next", "looping_next"})

# Log markers for responses that are not caused by an injected/random fault.
RATE_LIMIT_FAULT = "rate_limit"
SPAN_FAULT = "span"
FORBIDDEN_FAULT = "forbidden"
GONE_FAULT = "gone"


def check_kinds(kinds: Iterable[str]) -> None:
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; expected some of {FAULT_KINDS}")


def format_retry_after(seconds: float, fractional: bool) -> str:
    if fractional:
        return f"{max(seconds, 0.001):.3f}".rstrip("0").rstrip(".")
    return str(max(1, math.ceil(seconds)))


class FaultSource:
    """Injected faults (a queue, optionally aimed at a path prefix), then seeded random ones. Not thread-safe: the
    emulator calls it under its lock."""

    def __init__(self, seed: int) -> None:
        self._queue: list[tuple[str, str | None]] = []  # (kind, path prefix or None for any path)
        self._seed = seed
        self._rng = random.Random(seed)

    def push(self, kinds: Iterable[str], path_prefix: str | None) -> None:
        kinds = list(kinds)
        check_kinds(kinds)
        self._queue.extend((kind, path_prefix) for kind in kinds)

    def pending(self) -> list[tuple[str, str | None]]:
        return list(self._queue)

    def clear(self) -> None:
        self._queue.clear()

    def draw(self, path: str, config: EmulatorConfig) -> str | None:
        """The fault for a request to `path`: the oldest queued one aimed at it, else a random one, else None.

        Returns "none" for a queued placeholder (no fault, and no random draw either).
        """
        for index, (kind, prefix) in enumerate(self._queue):
            if prefix is None or path.startswith(prefix):
                del self._queue[index]
                return kind
        if config.fault_seed != self._seed:
            self._seed = config.fault_seed
            self._rng = random.Random(config.fault_seed)
        if config.fault_paths is not None and not any(path.startswith(prefix) for prefix in config.fault_paths):
            return None
        if config.fault_rate > 0 and config.fault_kinds and self._rng.random() < config.fault_rate:
            return self._rng.choice(config.fault_kinds)
        return None
