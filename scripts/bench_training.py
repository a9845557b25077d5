"""Training on the nnU-Net comparison volumes, timed as a user runs it: ``../shared/bench/make_toy_dataset.py``
(20 training and 4 test volumes of 64 x 192 x 192 at 1 mm, bright lesions in a cord) -> BIDS (symbolic links) ->
``lesionseg train CONFIG`` (the whole command timed) -> ``lesionseg infer`` on the test volumes ->
``lesionseg evaluate``. Writes ``OUT/bench_training.json``: wall seconds of the training command, seconds per step,
data-wait fraction, lesion Dice on each test volume, and validation Dice against minutes (from TensorBoard).

    python scripts/bench_training.py --out runs/bench-training [--config bench] [--seed 12345] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "make_toy_dataset.py"


def lesionseg(*arguments: str) -> str:
    """Run ``python -m lesionseg ARGUMENTS``; its stderr (logs) on success."""
    result = subprocess.run([sys.executable, "-m", "lesionseg", *arguments], capture_output=True, encoding="utf-8",
                            errors="replace", check=False)
    if result.returncode != 0:
        raise SystemExit(f"lesionseg {arguments[0]} failed: {result.stderr.strip().splitlines()[-1:]}")
    return result.stderr


def make_bids(out: Path, seed: int, sizes: list[str]) -> Path:
    """The toy volumes in nnU-Net's raw layout under ``out/raw``, linked as two BIDS datasets ``out/bids/{train,test}``."""
    subprocess.run([sys.executable, str(BENCH), "--out", str(out / "raw"), "--seed", str(seed), *sizes], check=True,
                   capture_output=True)
    raw = next((out / "raw").glob("Dataset*"))
    for split, subset in (("Tr", "train"), ("Ts", "test")):
        root = out / "bids" / subset
        for image in sorted((raw / f"images{split}").glob("*_0000.nii.gz")):
            subject = "sub-" + subset + image.name.removesuffix("_0000.nii.gz").split("_")[-1]
            anat, labels = root / subject / "anat", root / "derivatives" / "labels" / subject / "anat"
            anat.mkdir(parents=True, exist_ok=True)
            labels.mkdir(parents=True, exist_ok=True)
            os.symlink(image, anat / f"{subject}_T2w.nii.gz")
            os.symlink(raw / f"labels{split}" / image.name.replace("_0000", ""), labels / f"{subject}_T2w_lesion-manual.nii.gz")
        (root / "dataset_description.json").write_text('{"Name": "nnU-Net comparison volumes", "BIDSVersion": "1.9.0"}\n')
    return out / "bids"


def validation_curve(run: Path) -> list[dict[str, float]]:
    """Validation Dice at each validation, with the minutes since the first training step (TensorBoard)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((run / "tensorboard").glob("events.out.tfevents.*"))))
    events.Reload()
    start = events.Scalars("train/loss")[0].wall_time
    return [{"minutes": round((e.wall_time - start) / 60, 2), "step": e.step, "val_dice": round(e.value, 4)}
            for e in events.Scalars("val/dice")]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", default="bench")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--toy-args", default="", help="extra make_toy_dataset.py arguments, e.g. '--n-train 4'")
    args = parser.parse_args(argv)
    if not BENCH.is_file():
        raise SystemExit(f"{BENCH}: not found (the comparison volumes' generator lives in ../shared/bench)")
    bids = make_bids(args.out, args.seed, args.toy_args.split())
    run = args.out / "run"
    overrides = [part for item in args.overrides for part in ("--set", item)]
    started = time.perf_counter()
    log = lesionseg("train", args.config, "--data", str(bids / "train"), "--out", str(run), *overrides)
    wall = time.perf_counter() - started
    step_seconds, wait = (float(v) for v in re.search(r"\(([\d.]+) s/step, data wait ([\d.]+)%\)", log).groups())
    lesionseg("infer", str(bids / "test"), "--model", str(run / "model"), "--out", str(args.out / "pred"), "--no-report")
    lesionseg("evaluate", "--gt", str(bids / "test"), "--pred", str(args.out / "pred"), "--out", str(args.out / "eval"))
    metrics = json.loads((args.out / "eval" / "metrics.json").read_text())
    results = {
        "config": args.config, "overrides": args.overrides, "seed": args.seed, "train_command_seconds": round(wall, 1),
        "seconds_per_step": step_seconds, "data_wait_fraction": round(wait / 100, 4),
        "test_lesion_dice": [round(image["dice"], 4) for image in metrics["images"]],
        "test_lesion_dice_mean": round(metrics["summary"]["dice"]["mean"], 4), "curve": validation_curve(run),
    }
    (args.out / "bench_training.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
