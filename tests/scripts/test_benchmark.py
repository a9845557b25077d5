"""scripts/benchmark.py runs and writes its JSON and Markdown (a smoke run; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "benchmark.py"


@pytest.mark.slow
def test_quick_benchmark_writes_results(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], capture_output=True, encoding="utf-8", errors="replace", timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads((tmp_path / "benchmark.json").read_text())
    entry = results["inference"]["small_t2w"]
    assert entry["whole"]["total"]["median"] > 0 and entry["cascade"]["total"]["median"] > 0
    assert set(entry["whole"]) >= {"load", "preprocess", "network", "postprocess", "write", "total"}
    assert "| small_t2w |" in (tmp_path / "benchmark.md").read_text()
