"""The benchmark runs and writes its JSON and Markdown (a smoke run; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "benchmark.py"


def test_quick_benchmark_writes_results(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], capture_output=True, encoding="utf-8",
        errors="replace", timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads((tmp_path / "benchmark.json").read_text())
    assert results["machine"]["fp32_matmul_peak_gflops"] > 0
    entry = results["inference"]["small_t2w"]
    assert set(entry["whole"]) >= {"load", "preprocess", "network", "postprocess", "write", "total", "network_forward"}
    assert entry["whole"]["gflop"] > 0 and 0 < entry["whole"]["percent_of_peak"]
    assert entry["cascade"]["total"]["median"] > 0 and entry["cascade-bf16"]["total"]["median"] > 0
    assert 0 <= entry["cascade"]["overhead_fraction"]["median"] <= 1
    assert set(results["training"]) == {"whole", "cascade"}
    assert 0 <= results["training"]["cascade"]["data_wait_fraction"] <= 1
    markdown = (tmp_path / "benchmark.md").read_text()
    assert "| small_t2w |" in markdown and "waiting for data" in markdown
