"""Dixa API benchmark: `source-dixa read` of end_users + activity_logs against a floor reader and a paced emulator.

Three parts, each with its own emulator process (`bench/dixa_emulator_logged.py`: the emulator's CLI plus a request
log with monotonic timestamps), readers run one after the other as child processes of this script:

- `throughput`: 200k end users + 300k activity events over the 30 days before today, page cap 1000, no rate limit.
  The real CLI (full_refresh catalog of both streams, `dixa_api_requests_per_second` 1000) against
  `bench/dixa_api_floor.py` (the same requests with `requests` + `response.json()`, one `json.dumps` line a record),
  alternating, `--repeat` times each. Wall time from spawn to exit, peak RSS from `os.wait4` (`ru_maxrss`).
- `rss`: the connector alone on a quarter of that data (same page cap, so a quarter of the pages); its peak RSS is
  compared with the `throughput` runs': it must not grow with the number of pages.
- `pacing`: the emulator's Dixa API token bucket at 10/s, burst 4; the connector at its default pace (10/s, the
  setting omitted), 10k end users + 10k events, page cap 50 (~410 pages). From the emulator's log: the time from the
  first page request to the last plus one interval, against pages / 10 s, and the 429s.

The connector's stdout goes to an unlinked temp file; its RECORD lines are counted per stream after the clock stops
and checked against the emulator's counts and the STATE messages' `sourceStats.recordCount`. A wrong count, a crash
or an error trace exits 1; a missed target does not (it is a measurement, not a gate).

    .venv/bin/python bench/dixa_api_bench.py [--part throughput,rss,pacing] [--repeat K] [--json PATH] [sizes...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dixa_api_runs import DAY_MS, STREAMS, Data, Run, emulator, progress, run_connector, run_floor
from run_bench import _loadavg, machine_info  # bench/ is not a package

PACE_PER_S = 10.0
# Targets from the issue: checked and printed, never fatal.
MAX_PACED_OVER_IDEAL = 1.15
MAX_RSS_GROWTH = 1.10


@dataclass
class Part:
    name: str
    data: Data
    expected: dict[str, int] = field(default_factory=dict)
    emulator_start_s: float = 0.0
    runs: list[Run] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------------------
# Parts
# ------------------------------------------------------------------------------------------------------------------


def catalog() -> dict[str, Any]:
    def entry(name: str, cursor: str | None) -> dict[str, Any]:
        modes = ["full_refresh", "incremental"] if cursor else ["full_refresh"]
        stream: dict[str, Any] = {
            "name": name,
            "json_schema": {},
            "supported_sync_modes": modes,
            "source_defined_primary_key": [["id"]],
        }
        if cursor:
            stream.update(source_defined_cursor=True, default_cursor_field=[cursor])
        return {"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "append"}

    return {"streams": [entry("end_users", None), entry("activity_logs", "activityTimestamp")]}


def run_part(part: Part, readers: tuple[str, ...], args: argparse.Namespace, today_ms: int, workdir: Path) -> None:
    data, log_path = part.data, workdir / f"{part.name}_requests.jsonl"
    timeout_s = 120 + (data.end_users + data.activity_events) * (0.002 if data.rate_per_s is None else 0.05)
    started = time.perf_counter()
    with emulator(data, today_ms, log_path) as served:
        part.emulator_start_s = time.perf_counter() - started
        part.expected = {name: int(served[name]) for name in STREAMS}
        config: dict[str, Any] = {
            "api_token": served["token"],
            "start_date": time.strftime("%Y-%m-%d", time.gmtime((today_ms - data.days * DAY_MS) / 1000)),
            "api_url": served["url"],
            "dixa_api_url": served["url"],
            "requests_per_minute": 10_000,
            "safety_lag_minutes": 0,
        }
        if data.rate_per_s is None:  # pacing off; in `pacing` the connector keeps its default of 10/s
            config["dixa_api_requests_per_second"] = 1000
        config_path, catalog_path = workdir / f"{part.name}_config.json", workdir / f"{part.name}_catalog.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        catalog_path.write_text(json.dumps(catalog()), encoding="utf-8")
        progress(
            f"[{part.name}] emulator up in {part.emulator_start_s:.1f} s: {part.expected}, page cap {data.page_cap}"
        )
        for repeat in range(args.repeat):
            # Alternate the order so a slow drift (a neighbour's load) does not favour one reader.
            for reader in readers if repeat % 2 == 0 else readers[::-1]:
                if reader == "floor":
                    run = run_floor(config_path, log_path, repeat, timeout_s)
                else:
                    run = run_connector(config_path, catalog_path, log_path, repeat, timeout_s)
                part.runs.append(run)
                check(part, run)


def check(part: Part, run: Run) -> None:
    label = f"{run.reader} run {run.repeat + 1}"
    progress(
        f"[{part.name}] {label:<15}: {run.wall_s:6.2f} s wall, {run.cpu_s:6.2f} s CPU, peak RSS "
        f"{run.peak_rss_mb:6.1f} MB, records {run.records}, pages {run.pages}, {run.http_429} x 429"
    )
    part.errors.extend(f"{label}: {error}" for error in run.errors)
    if run.records != part.expected:
        part.errors.append(f"{label} wrote {run.records} records; the emulator has {part.expected}")
    total = sum(part.expected.values())
    if run.state_record_count is not None and run.state_record_count != total:
        part.errors.append(f"{label}: its STATE messages count {run.state_record_count} records, not {total}")
    if run.reported_requests and run.reported_requests != run.pages:
        part.warnings.append(f"{label} counted requests {run.reported_requests}; the emulator served {run.pages}")
    if run.pages != part.runs[0].pages:
        part.warnings.append(f"{label} read pages {run.pages}, {part.runs[0].reader} run 1 {part.runs[0].pages}")


def median(runs: list[Run], key: str) -> float:
    values = [getattr(run, key) for run in runs if getattr(run, key) is not None]
    return statistics.median(values) if values else float("nan")


def summarize(parts: dict[str, Part]) -> list[dict[str, Any]]:
    """Per-part summaries, and the targets (measurements, not gates)."""
    targets: list[dict[str, Any]] = []

    def target(part: str, what: str, value: str, passed: bool) -> None:
        targets.append({"part": part, "target": what, "value": value, "passed": passed})

    for part in parts.values():
        connector = [run for run in part.runs if run.reader == "connector"]
        floor = [run for run in part.runs if run.reader == "floor"]
        records = sum(part.expected.values())
        s = part.summary
        s["records"] = records
        s["pages"] = connector[0].pages if connector else {}
        s["connector_wall_s"] = median(connector, "wall_s")
        s["connector_cpu_s"] = median(connector, "cpu_s")
        s["connector_records_per_s"] = records / s["connector_wall_s"]
        s["connector_startup_s"] = median(connector, "first_request_s")
        s["connector_peak_rss_mb"] = max((run.peak_rss_mb for run in connector), default=float("nan"))
        if floor:
            s["floor_wall_s"] = median(floor, "wall_s")
            s["floor_cpu_s"] = median(floor, "cpu_s")
            s["floor_records_per_s"] = records / s["floor_wall_s"]
            s["floor_startup_s"] = median(floor, "first_request_s")
            s["floor_peak_rss_mb"] = max(run.peak_rss_mb for run in floor)
            s["ratio"] = s["connector_wall_s"] / s["floor_wall_s"]
            s["ratio_after_startup"] = (s["connector_wall_s"] - s["connector_startup_s"]) / (
                s["floor_wall_s"] - s["floor_startup_s"]
            )
        if part.data.rate_per_s is not None:
            paced = [(run.pages_span_s or 0.0) + 1 / PACE_PER_S for run in connector]
            ideal = [sum(run.pages.values()) / PACE_PER_S for run in connector]
            s["paced_s"], s["ideal_s"] = paced, ideal
            s["paced_over_ideal"] = [p / i if i else float("nan") for p, i in zip(paced, ideal, strict=True)]
            s["http_429"] = sum(run.http_429 for run in connector)
            worst = max(s["paced_over_ideal"])
            target(part.name, f"pages take <= {MAX_PACED_OVER_IDEAL}x pages / 10 s", f"{worst:.3f}x (worst run)",
                   worst <= MAX_PACED_OVER_IDEAL)  # fmt: skip
            target(part.name, "0 x 429", f"{s['http_429']} x 429", s["http_429"] == 0)
    if "throughput" in parts and "rss" in parts:
        full, small = parts["throughput"].summary, parts["rss"].summary
        growth = full["connector_peak_rss_mb"] / small["connector_peak_rss_mb"]
        pages = sum(full["pages"].values()) / max(1, sum(small["pages"].values()))
        full["rss_growth_over_rss_part"] = growth
        target(
            "rss", f"peak RSS x{pages:.1f} pages <= {MAX_RSS_GROWTH:.2f}x", f"{growth:.3f}x", growth <= MAX_RSS_GROWTH
        )
    return targets


# ------------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------------


def render(parts: dict[str, Part], targets: list[dict[str, Any]], machine: dict[str, Any], repeat: int) -> str:
    header = (
        f"{'part':<10} {'records':>7} {'pages':>5} {'cap':>4} | {'conn s':>6} {'conn rec/s':>10} {'start s':>7} "
        f"{'RSS MB':>6} | {'floor s':>7} {'floor rec/s':>11} {'RSS MB':>6} | {'ratio':>6} {'net':>6}"
    )
    lines = [header, "-" * len(header)]
    for part in parts.values():
        s = part.summary
        row = (
            f"{part.name:<10} {s['records']:>7} {sum(s['pages'].values()):>5} {part.data.page_cap:>4} | "
            f"{s['connector_wall_s']:>6.2f} {s['connector_records_per_s']:>10,.0f} {s['connector_startup_s']:>7.2f} "
            f"{s['connector_peak_rss_mb']:>6.1f} | "
        )
        if "floor_wall_s" in s:
            row += (
                f"{s['floor_wall_s']:>7.2f} {s['floor_records_per_s']:>11,.0f} {s['floor_peak_rss_mb']:>6.1f} | "
                f"{s['ratio']:>5.2f}x {s['ratio_after_startup']:>5.2f}x"
            )
        else:
            row += f"{'-':>7} {'-':>11} {'-':>6} | {'-':>6} {'-':>6}"
        lines.append(row)
    pacing = parts.get("pacing")
    if pacing is not None:
        s = pacing.summary
        lines += ["", "pacing (emulator 10/s burst 4, connector default pace): per connector run"]
        for run, paced, ideal, over in zip(
            (r for r in pacing.runs if r.reader == "connector"), s["paced_s"], s["ideal_s"], s["paced_over_ideal"],
            strict=True,
        ):  # fmt: skip
            lines.append(
                f"  run {run.repeat + 1}: {sum(run.pages.values())} pages {run.pages}; first to last request + 0.1 s "
                f"= {paced:.2f} s vs pages / 10 = {ideal:.2f} s -> {over:.3f}x; {run.http_429} x 429 (connector says "
                f"{run.reported_429}); CLI wall {run.wall_s:.2f} s, of it {run.first_request_s or 0:.2f} s before the "
                "first request"
            )
    lines += ["", "targets (measurements, not gates):"]
    for t in targets:
        lines.append(f"  [{'PASS' if t['passed'] else 'MISS'}] {t['part']:<10} {t['target']:<38} {t['value']}")
    warnings = [warning for part in parts.values() for warning in part.warnings]
    lines += [f"  warning: {warning}" for warning in warnings]
    lines += [
        "",
        "notes:",
        f"  conn s, floor s = wall time, spawn to exit, median of {repeat}; rec/s = records / s; RSS = the highest "
        "peak (ru_maxrss) of the runs, MB = 10^6 B.",
        "  pages = 200s the emulator logged for one connector run; start s = spawn to the connector's first request.",
        "  net = the ratio once each reader's spawn-to-first-request time is taken off.",
        f"  machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['arch']}, Python {machine['python']}, "
        f"airbyte-cdk {machine['airbyte_cdk']}; load average {machine['loadavg_start']} at start, "
        f"{machine['loadavg_end']} at end.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="throughput,rss,pacing", help="comma-separated: throughput, rss, pacing")
    parser.add_argument("--repeat", type=int, default=1, help="runs per reader and part (medians, highest RSS)")
    parser.add_argument("--json", metavar="PATH", help="also write every measurement as JSON to PATH")
    parser.add_argument("--end-users", type=int, default=200_000)
    parser.add_argument("--activity-events", type=int, default=300_000)
    parser.add_argument("--page-cap", type=int, default=1000)
    parser.add_argument("--rss-fraction", type=float, default=0.25, help="`rss`: this share of the data and pages")
    parser.add_argument("--pacing-end-users", type=int, default=10_000)
    parser.add_argument("--pacing-activity-events", type=int, default=10_000)
    parser.add_argument("--pacing-page-cap", type=int, default=50)
    args = parser.parse_args(argv)
    args.parts = [name.strip() for name in args.part.split(",") if name.strip()]
    if not args.parts or set(args.parts) - {"throughput", "rss", "pacing"} or args.repeat < 1:
        parser.error("--part takes throughput, rss, pacing; --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = machine_info()
    today_ms = time.time_ns() // 1_000_000 // DAY_MS * DAY_MS
    fraction = args.rss_fraction
    plan = {
        "throughput": (Data(args.end_users, args.activity_events, args.page_cap), ("floor", "connector")),
        "rss": (Data(int(args.end_users * fraction), int(args.activity_events * fraction), args.page_cap),
                ("connector",)),
        "pacing": (Data(args.pacing_end_users, args.pacing_activity_events, args.pacing_page_cap, PACE_PER_S, 4),
                   ("connector",)),
    }  # fmt: skip
    parts: dict[str, Part] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dixa-api-bench-") as workdir:
        try:
            for name in ("throughput", "rss", "pacing"):
                if name in args.parts:
                    parts[name] = Part(name, plan[name][0])
                    run_part(parts[name], plan[name][1], args, today_ms, Path(workdir))
                    failures.extend(f"[{name}] {error}" for error in parts[name].errors)
        except Exception as error:  # report it like any other failure, then exit non-zero
            failures.append(f"the benchmark crashed: {type(error).__name__}: {error}")
    machine["loadavg_end"] = _loadavg()
    complete = len(parts) == len(args.parts) and all(part.runs for part in parts.values())
    targets = summarize(parts) if complete else []
    if complete:
        print(render(parts, targets, machine, args.repeat))
    if args.json:
        payload = {
            "command": " ".join(["python", *sys.argv]),
            "machine": machine,
            "args": vars(args),
            "parts": {name: asdict(part) for name, part in parts.items()},
            "targets": targets,
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
