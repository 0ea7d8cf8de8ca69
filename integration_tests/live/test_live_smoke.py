"""Opt-in smoke test against the real Dixa Exports API: `pytest -m live`, with secrets/config.json in place."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from integration_tests.conftest import ROOT, Workspace

SECRETS = ROOT / "secrets" / "config.json"

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not SECRETS.exists(), reason="needs secrets/config.json with a real Dixa token"),
]


@pytest.fixture
def live_workspace(tmp_path: Path) -> Workspace:
    config: dict[str, Any] = json.loads(SECRETS.read_text(encoding="utf-8"))
    # One small window per stream: the last day.
    config["start_date"] = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86_400))
    config["batch_size"] = 1
    return Workspace(tmp_path, config)


def test_live_check(live_workspace: Workspace) -> None:
    assert live_workspace.run("check").connection_status()["status"] == "SUCCEEDED"


def test_live_read_one_day_of_both_streams(live_workspace: Workspace) -> None:
    result = live_workspace.run("read", catalog=live_workspace.catalog(("conversation_export", "message_export")))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.errors() == []
    assert {s["stream"]["stream_descriptor"]["name"] for s in result.state_messages()} == {
        "conversation_export",
        "message_export",
    }
