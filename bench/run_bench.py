"""`make bench`: read throughput and peak memory of `source-dixa read` against a large emulated account.

For each scenario the benchmark starts the emulator (`python -m integration_tests.emulator`) as its own process with a
seeded data set (100,000 conversations by default), then runs, one after the other and never at the same time:

- the connector: the real CLI, `source-dixa read` with a full_refresh catalog of `conversation_export`;
- the floor: `bench/floor_reader.py`, the same requests with `requests` + `response.json()` and one
  `json.dumps(record)` line per record, no CDK.

Each reader is a child process of this script; its wall time runs from spawn to exit (interpreter start and imports
included) and its peak RSS is the kernel's high-water mark for that process alone (`os.wait4` -> `ru_maxrss`).

Scenarios (all data lies in [start_date, today 00:00 UTC), so every emulated conversation must be read):
- `multi`:  the data spread over the 371 days before today, `batch_size` 31 -> 12 requests of ~8.3k records each.
- `single`: the data in the 30 days before today, start_date 30 days ago -> 1 request holding every record.

Record counts: the floor reports its own. The connector writes its stdout to an unlinked temporary file in /tmp
(page cache only in practice); once the clock has stopped, its RECORD lines are counted with `bytes.count` and
compared with the emulator's total and with the STATE messages' `sourceStats.recordCount`. Measured here, that costs
the connector ~0.15 s of kernel time per 100k records (~3 %) against /dev/null; `--sink devnull` sends the output
straight to /dev/null instead, for comparison, and then cannot check the count.
A wrong count, a crash or an error trace exits non-zero; a missed performance target does not.

    .venv/bin/python bench/run_bench.py [--conversations N] [--scenario multi|single|both] [--repeat K]
                                        [--json PATH] [--profile] [--sink file|devnull]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import pstats
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
EMULATOR = ["-m", "integration_tests.emulator"]  # run with cwd=ROOT, so the package is importable
FLOOR = BENCH / "floor_reader.py"
sys.path.insert(0, str(BENCH))

from floor_reader import windows as plan_windows  # noqa: E402  (bench/ is not a package)

sys.path.insert(0, str(ROOT))
from integration_tests.cli import cli_command  # noqa: E402  (standard library only: no CDK in the bench process)

DAY_MS = 86_400_000
STREAM = "conversation_export"
CURSOR = "updated_at"
TOKEN = "bench-token"
# At most a request per 6 ms: the connector's own pacing never shows in the timing.
REQUESTS_PER_MINUTE = 10_000
MB = 1_000_000

# Targets from the issue: checked and printed, never fatal.
MAX_RATIO = 1.5
PROFILE_RATIO = 2.0
MAX_SINGLE_RSS_MB = 150.0
MAX_SINGLE_OVER_MULTI = 1.20

RECORD_PREFIX = b'{"type":"RECORD"'
NL_RECORD_PREFIX = b"\n" + RECORD_PREFIX
WINDOW_LOG = re.compile(rf"{STREAM}: window \d+(?:/\d+)? ")


# ------------------------------------------------------------------------------------------------------------------
# Plan and results
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    start_ms: int  # start_date (UTC midnight) and the lower bound of every emulated updated_at
    end_ms: int  # today 00:00 UTC: every emulated updated_at is below it, and below "now"
    batch_days: int = 31

    @property
    def start_date(self) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(self.start_ms / 1000))


def scenarios(today_ms: int) -> dict[str, Scenario]:
    # 371 days = 11 windows of 31 days minus 1 ms, plus a 12th that reaches past "now" (until tomorrow 00:00).
    return {
        "multi": Scenario("multi", "371 days of data, 31-day windows", today_ms - 371 * DAY_MS, today_ms),
        "single": Scenario("single", "30 days of data, one 31-day window", today_ms - 30 * DAY_MS, today_ms),
    }


@dataclass
class Run:
    reader: str  # "connector" | "floor"
    repeat: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    returncode: int
    records: int | None  # None: not counted (--sink devnull)
    requests: int | None = None
    state_record_count: int | None = None
    errors: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    name: str
    description: str
    conversations: int
    start_date: str
    data_start_ms: int
    data_end_ms: int
    planned_windows: int
    expected_records: int
    emulator_start_s: float
    runs: list[Run] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    errors: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------------------
# Processes
# ------------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def emulator(conversations: int, scenario: Scenario, messages_per_conversation: float) -> Iterator[dict[str, Any]]:
    """The emulator as its own process; yields its summary line (url, token, counts)."""
    command = [
        sys.executable, *EMULATOR,
        "--conversations", str(conversations),
        "--messages-per-conversation", str(messages_per_conversation),
        "--start-ms", str(scenario.start_ms),
        "--end-ms", str(scenario.end_ms),
        "--port", "0",
        "--token", TOKEN,
    ]  # fmt: skip
    # Generating 100k conversations takes 4-8 s here; allow a slow machine plenty more.
    with serve(command, 60 + conversations / 1000) as summary:
        yield summary


@contextlib.contextmanager
def serve(command: list[str], start_timeout_s: float) -> Iterator[dict[str, Any]]:
    """Run an emulator command line until the block ends; yields the JSON summary line it prints once it serves."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT)
        try:
            assert process.stdout is not None
            watchdog = _watchdog(process, start_timeout_s)
            line = process.stdout.readline()
            watchdog.cancel()
            if not line:
                process.wait()
                stderr.seek(0)
                tail = stderr.read().decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"the emulator exited with {process.returncode} before serving:\n{tail}")
            yield json.loads(line)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _watchdog(process: subprocess.Popen[bytes], timeout_s: float) -> threading.Timer:
    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()

    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    return timer


def _reap(process: subprocess.Popen[bytes]) -> tuple[int, resource.struct_rusage]:
    """Wait for one child; return its exit code and its own rusage (`ru_maxrss`: its peak RSS in KiB)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage


def _timed(
    command: list[str], stdout: int | IO[bytes], stderr: IO[bytes], timeout_s: float
) -> tuple[float, int, resource.struct_rusage]:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT)
    watchdog = _watchdog(process, timeout_s)
    returncode, usage = _reap(process)
    wall_s = time.perf_counter() - started
    watchdog.cancel()
    return wall_s, returncode, usage


def warm_up(url: str, scenario: Scenario) -> None:
    """Fetch every window once and drop the bodies, so neither timed reader is the first to touch the data."""
    now_ms = time.time_ns() // 1_000_000
    for start_ms, end_ms in plan_windows(scenario.start_ms, now_ms, scenario.batch_days):
        request = urllib.request.Request(
            f"{url}/v1/{STREAM}?updated_after={start_ms - 1}&updated_before={end_ms}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            while response.read(1 << 20):
                pass


def count_output(fd: int) -> tuple[int, list[bytes]]:
    """Count the RECORD lines readable from `fd`; return the count and every other line (LOG, STATE, TRACE)."""
    records = 0
    others: list[bytes] = []
    carry = b""
    while chunk := os.read(fd, 1 << 20):
        buffer = carry + chunk if carry else chunk
        cut = buffer.rfind(b"\n") + 1
        complete, carry = buffer[:cut], buffer[cut:]
        # `complete` starts at a line start and ends with a newline; a JSON string cannot hold a raw newline.
        found = complete.count(NL_RECORD_PREFIX) + complete.startswith(RECORD_PREFIX)
        records += found
        if found != complete.count(b"\n"):
            others.extend(line for line in complete.split(b"\n")[:-1] if not line.startswith(RECORD_PREFIX))
    if carry.startswith(RECORD_PREFIX):
        records += 1
    elif carry:
        others.append(carry)
    return records, others


def run_connector(config_path: Path, catalog_path: Path, repeat: int, sink: str, timeout_s: float) -> Run:
    """One timed `source-dixa read`; with the file sink its output is counted after the clock has stopped."""
    command = [*cli_command(), "read", "--config", str(config_path), "--catalog", str(catalog_path)]
    records: int | None = None
    others: list[bytes] = []
    with tempfile.TemporaryFile() as stderr, tempfile.TemporaryFile(dir=config_path.parent) as out:
        stdout = subprocess.DEVNULL if sink == "devnull" else out
        wall_s, returncode, usage = _timed(command, stdout, stderr, timeout_s)
        if sink == "file":
            out.seek(0)
            records, others = count_output(out.fileno())
        stderr.seek(0)
        stderr_text = stderr.read().decode("utf-8", "replace")

    run = Run(
        "connector", repeat, wall_s, usage.ru_utime, usage.ru_stime, usage.ru_maxrss * 1024 / MB, returncode, records
    )
    windows = 0
    for line in others:
        try:
            message = json.loads(line)
        except ValueError:
            run.errors.append(f"unparseable output line: {line[:200]!r}")
            continue
        kind = message.get("type")
        if kind == "STATE":
            count = (message["state"].get("sourceStats") or {}).get("recordCount")
            if count is not None:
                run.state_record_count = (run.state_record_count or 0) + int(count)
        elif kind == "TRACE" and message["trace"].get("type") == "ERROR":
            run.errors.append(f"error trace: {message['trace']['error'].get('message')}")
        elif kind == "LOG" and WINDOW_LOG.match(message["log"].get("message", "")):
            windows += 1
    run.requests = windows or None
    if returncode != 0:
        run.errors.append(f"exit code {returncode}; stderr tail: {stderr_text[-1500:]}")
    return run


def run_floor(config_path: Path, repeat: int, timeout_s: float) -> Run:
    command = [sys.executable, str(FLOOR), "--config", str(config_path), "--stream", STREAM]
    with tempfile.TemporaryFile() as stderr:
        wall_s, returncode, usage = _timed(command, subprocess.DEVNULL, stderr, timeout_s)
        stderr.seek(0)
        stderr_text = stderr.read().decode("utf-8", "replace")
    run = Run("floor", repeat, wall_s, usage.ru_utime, usage.ru_stime, usage.ru_maxrss * 1024 / MB, returncode, None)
    try:
        summary = json.loads(stderr_text.strip().splitlines()[-1])
        run.records, run.requests = int(summary["records"]), int(summary["requests"])
    except (IndexError, KeyError, ValueError):
        run.errors.append("no summary line on stderr")
    if returncode != 0:
        run.errors.append(f"exit code {returncode}; stderr tail: {stderr_text[-1500:]}")
    return run


def startup_s(command: list[str], repeats: int = 3) -> float:
    """Median wall time of a trivial command: the interpreter start and imports that every run pays."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


# ------------------------------------------------------------------------------------------------------------------
# Profile (--profile)
# ------------------------------------------------------------------------------------------------------------------


def profile_connector(config_path: Path, catalog_path: Path, out: Path, timeout_s: float) -> str:
    """One extra, untimed connector run under cProfile; returns a readable summary."""
    command = [
        sys.executable, "-m", "cProfile", "-o", str(out),
        cli_command()[-1], "read", "--config", str(config_path), "--catalog", str(catalog_path),
    ]  # fmt: skip
    subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, timeout=timeout_s, check=True
    )
    return summarize_profile(out)


# Where a function's own time is attributed: the first of these found in its file path (or builtin name).
_AREAS = ("source_dixa", "airbyte_cdk", "serpyco_rs", "orjson", "ijson", "urllib3", "requests", "json", "socket")


def summarize_profile(path: Path, top: int = 15) -> str:
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    areas: dict[str, float] = {}
    for (filename, _, name), (_, _, own_s, _, _) in raw.items():
        where = name if filename == "~" else filename
        area = next((key for key in _AREAS if key in where), "builtins" if filename == "~" else "other (stdlib...)")
        areas[area] = areas.get(area, 0.0) + own_s
    lines = [
        f"cProfile of one more connector run: {path}, {total:.2f} s of own time in all (the profiler inflates",
        "  Python-heavy code; a C iterator such as ijson's yajl2_c parser counts as the own time of the Python",
        "  function looping over it, so parse_response's own time is mostly JSON parsing).",
        "  own time by area:",
    ]
    for area, seconds in sorted(areas.items(), key=lambda item: -item[1]):
        if seconds / total >= 0.01:
            lines.append(f"    {area:<18} {seconds:6.2f} s  {100 * seconds / total:5.1f} %")
    lines.append(f"  top {top} functions by own time:")
    for (filename, line, name), (_, calls, own_s, cum_s, _) in sorted(raw.items(), key=lambda item: -item[1][2])[:top]:
        where = "builtin" if filename == "~" else f"{_short_path(filename)}:{line}"
        lines.append(f"    {own_s:6.2f} s own {cum_s:6.2f} s cum {calls:>9} calls  {name}  ({where})")
    return "\n".join(lines)


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.replace(f"{ROOT}/", "")


# ------------------------------------------------------------------------------------------------------------------
# One scenario
# ------------------------------------------------------------------------------------------------------------------


def catalog() -> dict[str, Any]:
    return {
        "streams": [
            {
                "stream": {
                    "name": STREAM,
                    "json_schema": {},
                    "supported_sync_modes": ["full_refresh", "incremental"],
                    "source_defined_cursor": True,
                    "default_cursor_field": [CURSOR],
                    "source_defined_primary_key": [["id"]],
                },
                "sync_mode": "full_refresh",
                "destination_sync_mode": "append",
                "cursor_field": [CURSOR],
                "primary_key": [["id"]],
            }
        ]
    }


def run_scenario(
    scenario: Scenario, args: argparse.Namespace, workdir: Path, startup: dict[str, float]
) -> ScenarioResult:
    timeout_s = 120 + args.conversations * 0.005
    started = time.perf_counter()
    with emulator(args.conversations, scenario, args.messages_per_conversation) as served:
        result = ScenarioResult(
            name=scenario.name,
            description=scenario.description,
            conversations=args.conversations,
            start_date=scenario.start_date,
            data_start_ms=scenario.start_ms,
            data_end_ms=scenario.end_ms,
            planned_windows=len(plan_windows(scenario.start_ms, time.time_ns() // 1_000_000, scenario.batch_days)),
            expected_records=int(served["conversations"]),
            emulator_start_s=time.perf_counter() - started,
        )
        if result.expected_records != args.conversations:
            result.errors.append(
                f"the emulator serves {result.expected_records} conversations, not {args.conversations}"
            )
        config = {
            "api_token": served["token"],
            "start_date": scenario.start_date,
            "batch_size": scenario.batch_days,
            "api_url": served["url"],
            "requests_per_minute": REQUESTS_PER_MINUTE,
        }
        config_path = workdir / f"{scenario.name}_config.json"
        catalog_path = workdir / f"{scenario.name}_catalog.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        catalog_path.write_text(json.dumps(catalog()), encoding="utf-8")
        _progress(
            f"[{scenario.name}] emulator up in {result.emulator_start_s:.1f} s: {result.expected_records} "
            f"conversations, start_date {scenario.start_date}, {result.planned_windows} window(s)"
        )
        warm_up(served["url"], scenario)

        for repeat in range(args.repeat):
            # Alternate the order so a slow drift (a neighbour's load, the page cache) does not favour one reader.
            for reader in ("floor", "connector") if repeat % 2 == 0 else ("connector", "floor"):
                if reader == "floor":
                    run = run_floor(config_path, repeat, timeout_s)
                else:
                    run = run_connector(config_path, catalog_path, repeat, args.sink, timeout_s)
                result.runs.append(run)
                _check(result, run)

        if args.profile:
            _progress(f"[{scenario.name}] profiling one more connector run under cProfile (untimed)")
            out = Path(args.profile_dir) / f"{scenario.name}.prof"
            out.parent.mkdir(parents=True, exist_ok=True)
            result.profile = profile_connector(config_path, catalog_path, out, timeout_s * 3)
    result.summary = summarize(result, startup)
    return result


def _check(result: ScenarioResult, run: Run) -> None:
    label = f"{run.reader} run {run.repeat + 1}"
    counted = "not counted" if run.records is None else f"{run.records} records"
    _progress(
        f"[{result.name}] {label:<15}: {run.wall_s:6.2f} s wall, {run.user_s + run.sys_s:6.2f} s CPU, "
        f"peak RSS {run.peak_rss_mb:6.1f} MB, {counted}"
    )
    result.errors.extend(f"{label}: {error}" for error in run.errors)
    if run.records is not None and run.records != result.expected_records:
        result.errors.append(f"{label} wrote {run.records} records; the emulator has {result.expected_records}")
    if run.state_record_count is not None and run.state_record_count != result.expected_records:
        result.errors.append(
            f"{label}: its STATE messages count {run.state_record_count} records; "
            f"the emulator has {result.expected_records}"
        )


def summarize(result: ScenarioResult, startup: dict[str, float]) -> dict[str, Any]:
    def median(reader: str, key: str) -> float:
        values = [getattr(run, key) for run in result.runs if run.reader == reader and run.returncode == 0]
        return statistics.median(values) if values else float("nan")

    connector_s, floor_s = median("connector", "wall_s"), median("floor", "wall_s")
    n = result.expected_records
    return {
        "connector_wall_s": connector_s,
        "floor_wall_s": floor_s,
        "connector_cpu_s": median("connector", "user_s") + median("connector", "sys_s"),
        "floor_cpu_s": median("floor", "user_s") + median("floor", "sys_s"),
        "connector_records_per_s": n / connector_s,
        "floor_records_per_s": n / floor_s,
        "ratio": connector_s / floor_s,
        # Informational: the same ratio once each side's fixed start-up cost (measured separately) is taken off.
        "ratio_after_startup": (connector_s - startup["connector"]) / (floor_s - startup["floor"]),
        "connector_peak_rss_mb": max(run.peak_rss_mb for run in result.runs if run.reader == "connector"),
        "floor_peak_rss_mb": max(run.peak_rss_mb for run in result.runs if run.reader == "floor"),
        "connector_walls_s": [run.wall_s for run in result.runs if run.reader == "connector"],
        "floor_walls_s": [run.wall_s for run in result.runs if run.reader == "floor"],
    }


# ------------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------------


def targets(results: dict[str, ScenarioResult]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []

    def check(scenario: str, target: str, value: str, passed: bool) -> None:
        checks.append({"scenario": scenario, "target": target, "value": value, "passed": passed})

    for result in results.values():
        ratio = result.summary["ratio"]
        check(result.name, f"connector wall <= {MAX_RATIO}x floor", f"{ratio:.2f}x", ratio <= MAX_RATIO)
    single, multi = results.get("single"), results.get("multi")
    if single is not None:
        rss = single.summary["connector_peak_rss_mb"]
        check("single", f"connector peak RSS < {MAX_SINGLE_RSS_MB:.0f} MB", f"{rss:.1f} MB", rss < MAX_SINGLE_RSS_MB)
        if multi is not None:
            over = rss / multi.summary["connector_peak_rss_mb"]
            check(
                "single",
                f"peak RSS <= {MAX_SINGLE_OVER_MULTI:.2f}x multi's",
                f"{over:.3f}x",
                over <= MAX_SINGLE_OVER_MULTI,
            )
    return checks


def render(
    results: dict[str, ScenarioResult], checks: list[dict[str, Any]], machine: dict[str, Any], args: argparse.Namespace
) -> str:
    header = (
        f"{'scenario':<8} {'records':>8} {'reqs':>4} | {'conn s':>6} {'conn rec/s':>10} {'conn CPU s':>10} "
        f"{'conn RSS MB':>11} | {'floor s':>7} {'floor rec/s':>11} {'floor RSS MB':>12} | {'ratio':>6} {'net':>6}"
    )
    lines = [header, "-" * len(header)]
    for result in results.values():
        s = result.summary
        counted = next((run.records for run in result.runs if run.reader == "connector"), None)
        lines.append(
            f"{result.name:<8} {'n/c' if counted is None else counted:>8} {result.planned_windows:>4} | "
            f"{s['connector_wall_s']:>6.2f} {s['connector_records_per_s']:>10,.0f} {s['connector_cpu_s']:>10.2f} "
            f"{s['connector_peak_rss_mb']:>11.1f} | {s['floor_wall_s']:>7.2f} {s['floor_records_per_s']:>11,.0f} "
            f"{s['floor_peak_rss_mb']:>12.1f} | {s['ratio']:>5.2f}x {s['ratio_after_startup']:>5.2f}x"
        )
    lines += ["", "targets (measurements, not gates):"]
    for c in checks:
        lines.append(f"  [{'PASS' if c['passed'] else 'MISS'}] {c['scenario']:<7} {c['target']:<36} {c['value']}")
    repeats = f"median of {args.repeat} runs" if args.repeat > 1 else "one run"
    startup = (
        f"source-dixa spec {machine['connector_startup_s']:.2f} s, floor imports {machine['floor_startup_s']:.2f} s"
    )
    if args.sink == "devnull":
        sink = "connector stdout -> /dev/null: its record count was NOT checked (--sink devnull)."
    else:
        sink = "connector stdout -> temp file; RECORD lines counted after the clock stopped, checked against the "
        sink += "emulator and STATE sourceStats."
    lines += [
        "",
        "notes:",
        f"  conn s, floor s = wall time from spawn to exit of that reader's process ({repeats}); rec/s = records / s.",
        f"  ratio = conn s / floor s; net = the same after each side's start-up is taken off ({startup}).",
        "  reqs = windows requested; RSS = that process's own peak (ru_maxrss), highest of the runs, MB = 10^6 bytes.",
        f"  {sink}",
        "  floor stdout -> /dev/null; it reports its own count, checked against the emulator too.",
        f"  machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['arch']}, Python {machine['python']}, "
        f"airbyte-cdk {machine['airbyte_cdk']}; load average {machine['loadavg_start']} at start, "
        f"{machine['loadavg_end']} at end.",
    ]
    for result in results.values():
        if result.profile:
            lines += ["", f"[{result.name}] {result.profile}"]
        elif result.summary["ratio"] > PROFILE_RATIO:
            lines.append(
                f"[{result.name}] the connector is above {PROFILE_RATIO}x the floor: rerun with --profile "
                "to see where its time goes."
            )
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        cdk = version("airbyte-cdk")
    except PackageNotFoundError:
        cdk = "unknown"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "arch": platform.machine(),
        "python": platform.python_version(),
        "airbyte_cdk": cdk,
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Connector vs floor throughput and peak RSS on the Dixa emulator.")
    parser.add_argument("--conversations", type=int, default=100_000, help="emulated conversations (default 100000)")
    parser.add_argument("--scenario", choices=("multi", "single", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per reader and scenario (the median counts)")
    parser.add_argument("--json", metavar="PATH", help="also write every measurement as JSON to PATH")
    parser.add_argument(
        "--sink",
        choices=("file", "devnull"),
        default="file",
        help="connector stdout: a temp file counted after the run (default), or /dev/null (no count)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the timed runs, one more connector run per scenario under cProfile",
    )
    parser.add_argument("--profile-dir", default=str(BENCH / "output"), help="where --profile writes its .prof files")
    parser.add_argument(
        "--messages-per-conversation",
        type=float,
        default=0.0,
        help="emulated messages; the bench reads conversations only, and 0 halves the emulator's "
        "start-up without changing the conversation bodies' size",
    )
    args = parser.parse_args(argv)
    if args.conversations < 1 or args.repeat < 1:
        parser.error("--conversations and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = machine_info()
    today_ms = time.time_ns() // 1_000_000 // DAY_MS * DAY_MS
    names = ("multi", "single") if args.scenario == "both" else (args.scenario,)
    planned = scenarios(today_ms)
    results: dict[str, ScenarioResult] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dixa-bench-") as workdir:
        try:
            machine["connector_startup_s"] = startup_s([*cli_command(), "spec"])
            machine["floor_startup_s"] = startup_s([sys.executable, "-c", "import json, requests"])
            startup = {"connector": machine["connector_startup_s"], "floor": machine["floor_startup_s"]}
            for name in names:
                results[name] = run_scenario(planned[name], args, Path(workdir), startup)
                failures.extend(f"[{name}] {error}" for error in results[name].errors)
        except Exception as error:  # report it like any other failure, then exit non-zero
            failures.append(f"the benchmark crashed: {type(error).__name__}: {error}")
    machine["loadavg_end"] = _loadavg()

    complete = len(results) == len(names)
    checks = targets(results) if complete else []
    if complete:
        print(render(results, checks, machine, args))
    if args.json:
        payload = {
            "command": " ".join(["python", *sys.argv]),
            "machine": machine,
            "args": vars(args),
            "scenarios": {name: asdict(result) for name, result in results.items()},
            "targets": checks,
            "failures": failures,
            "ok": not failures,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if failures:
        print("\nFAILED:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
