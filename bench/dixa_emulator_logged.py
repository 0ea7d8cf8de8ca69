"""The emulator's own CLI (`python -m integration_tests.emulator`), plus its request log streamed to a file.

    python bench/dixa_emulator_logged.py --request-log PATH [any `integration_tests.emulator` option ...]

Each request the emulator sees becomes one JSON line `[time_s, api, path, status, fault]` in PATH, written and
flushed before the response goes out, so once a client has exited every one of its requests is in the file.
`time_s` is the emulator's `time.monotonic()`: CLOCK_MONOTONIC is system-wide on Linux, so the benchmark compares
it with its own clock (a reader's spawn and exit). Used by `bench/dixa_api_bench.py` for page counts, 429s and the
time the paced pages take.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration_tests.emulator import __main__ as emulator_cli  # noqa: E402
from integration_tests.emulator.config import RequestRecord  # noqa: E402
from integration_tests.emulator.core import DixaEmulator  # noqa: E402


def logged_emulator(out: IO[str]) -> type[DixaEmulator]:
    lock = threading.Lock()

    class LoggedEmulator(DixaEmulator):
        def _append_log(self, record: RequestRecord) -> None:
            super()._append_log(record)
            line = json.dumps([record.time_s, record.api, record.path, record.status, record.fault])
            with lock:
                out.write(line + "\n")
                out.flush()

    return LoggedEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--request-log", required=True)
    args, rest = parser.parse_known_args(argv)
    with open(args.request_log, "w", encoding="utf-8") as out:
        # The CLI builds `DixaEmulator(config, port=...)` from its module globals: swap in the logged subclass.
        vars(emulator_cli)["DixaEmulator"] = logged_emulator(out)
        return emulator_cli.main(rest)


if __name__ == "__main__":
    sys.exit(main())
