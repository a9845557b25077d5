"""scripts/bench_training.py end to end on a few small comparison volumes (a smoke run: a few steps)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_training.py"
spec = importlib.util.spec_from_file_location("bench_training", SCRIPT)
bench_training = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_training)


def test_trains_infers_and_reports_dice_and_curve(tmp_path: Path) -> None:
    if not bench_training.BENCH.is_file():
        pytest.skip(f"{bench_training.BENCH} not available")
    results = bench_training.main([
        "--out", str(tmp_path), "--toy-args", "--n-train 3 --n-test 2 --shape 32 64 64",
        "--set", "train.steps=8", "--set", "train.val_every=4", "--set", "data.split.val_fraction=0.34",
    ])
    assert json.loads((tmp_path / "bench_training.json").read_text()) == results
    dice = results["infer"]["torch"]["dice"]
    assert sorted(dice) == ["case_003", "case_004"] and all(0.0 <= d <= 1.0 for d in dice.values())
    assert results["infer"]["torch"]["in_batch_seconds_per_volume"] > 0
    assert [point["step"] for point in results["curve"]] == [4, 8]
    assert results["train_command_seconds"] > 0 and 0.0 <= results["data_wait_fraction"] <= 1.0
    assert len(list((tmp_path / "bids" / "test" / "derivatives").rglob("*_lesion-manual.nii.gz"))) == 2
