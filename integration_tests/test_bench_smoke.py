"""`bench/run_bench.py` still runs end to end on a tiny account: both scenarios, exit 0, every record read.

Timing is never asserted here: the benchmark reports its targets, it does not gate on them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = 2000


@pytest.mark.slow
def test_bench_both_scenarios_exit_zero_with_the_emulators_record_count(tmp_path: Path) -> None:
    results_path = tmp_path / "bench.json"
    process = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_bench.py"), "--conversations", str(CONVERSATIONS),
         "--scenario", "both", "--json", str(results_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    results = json.loads(results_path.read_text(encoding="utf-8"))
    assert results["ok"] is True
    assert set(results["scenarios"]) == {"multi", "single"}
    for name, scenario in results["scenarios"].items():
        assert scenario["expected_records"] == CONVERSATIONS, name
        readers = {run["reader"]: run for run in scenario["runs"]}
        assert set(readers) == {"connector", "floor"}, name
        assert readers["connector"]["records"] == CONVERSATIONS, name
        assert readers["connector"]["state_record_count"] == CONVERSATIONS, name
        assert readers["floor"]["records"] == CONVERSATIONS, name
    assert results["scenarios"]["single"]["planned_windows"] == 1
    assert f"single   {CONVERSATIONS:>8}" in process.stdout


@pytest.mark.slow
def test_dixa_api_bench_all_parts_exit_zero_with_the_emulators_record_counts(tmp_path: Path) -> None:
    """`bench/dixa_api_bench.py` on a tiny account: throughput, rss and pacing (22 pages at 10/s), about 15 s."""
    results_path = tmp_path / "dixa_api_bench.json"
    process = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dixa_api_bench.py"), "--end-users", "2000", "--activity-events", "3000",
         "--page-cap", "100", "--pacing-end-users", "100", "--pacing-activity-events", "100",
         "--pacing-page-cap", "10", "--json", str(results_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    results = json.loads(results_path.read_text(encoding="utf-8"))
    assert results["ok"] is True
    parts = results["parts"]
    assert set(parts) == {"throughput", "rss", "pacing"}
    expected = {
        "throughput": {"end_users": 2000, "activity_logs": 3000},
        "rss": {"end_users": 500, "activity_logs": 750},
        "pacing": {"end_users": 100, "activity_logs": 100},
    }
    for name, part in parts.items():
        assert part["expected"] == expected[name], name
        readers = [run["reader"] for run in part["runs"]]
        assert readers == (["floor", "connector"] if name == "throughput" else ["connector"]), name
        for run in part["runs"]:
            assert run["records"] == expected[name], (name, run["reader"])
            assert run["pages"]["end_users"] == -(-expected[name]["end_users"] // part["data"]["page_cap"])
            assert run["http_429"] == 0, name
    floor, connector = parts["throughput"]["runs"]
    assert floor["pages"] == connector["pages"]  # the floor walks the connector's windows
    assert connector["state_record_count"] == 5000
    pacing = parts["pacing"]["summary"]
    assert pacing["http_429"] == 0
    assert pacing["ideal_s"] == [sum(parts["pacing"]["runs"][0]["pages"].values()) / 10]
    assert {target["part"] for target in results["targets"]} == {"rss", "pacing"}
    assert "throughput" in process.stdout
