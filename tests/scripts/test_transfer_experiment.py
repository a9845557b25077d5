"""scripts/transfer_experiment.py --quick runs every variant and writes its table, JSON and plot (a smoke run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "transfer_experiment.py"


def test_quick_transfer_experiment(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True, encoding="utf-8", errors="replace", timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    variants = {(r["target"], r["variant"]) for r in results}
    assert {v for _, v in variants} == {"scratch", "ft-full", "ft-frozen_encoder", "ft-progressive", "ft-discriminative",
                                        "zero-shot", "multi-contrast"}
    assert {t for t, _ in variants} == {"T1w", "PSIR"}
    assert all(0.0 <= r["dice"] <= 1.0 for r in results)
    table = (tmp_path / "transfer_table.md").read_text()
    assert "| T1w | 1 |" in table and "| PSIR | 1 |" in table
    assert (tmp_path / "transfer_plot.png").stat().st_size > 1000
    # each fine-tuned model records where it came from
    metadata = json.loads(next((tmp_path / "runs").glob("PSIR-n1-0-ft-full/model/metadata.json")).read_text())
    assert metadata["transfer"]["source_contrasts"] == ["T2w"] and metadata["contrasts"] == ["PSIR"]
    assert metadata["transfer"]["polarity"]["chosen"] == "invert"  # PSIR lesions are dark, the source's T2w bright


def test_quick_transfer_from_a_randomized_source(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--randomized-source", "--out", str(tmp_path)],
        capture_output=True, encoding="utf-8", errors="replace", timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    settings = json.loads((tmp_path / "results.json").read_text())["settings"]
    assert settings["source"].startswith("domain-randomised")
    source = json.loads((tmp_path / "runs" / "source-0" / "model" / "metadata.json").read_text())
    assert source["contrast_agnostic"] and source["train_images"] == []
    tuned = json.loads(next((tmp_path / "runs").glob("PSIR-n1-0-ft-full/model/metadata.json")).read_text())
    assert tuned["transfer"]["polarity"]["chosen"] == "keep"  # a source of any contrast needs no inversion
