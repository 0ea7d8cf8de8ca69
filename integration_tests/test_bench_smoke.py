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
