"""Training on the nnU-Net comparison volumes, timed as a user runs it: ``../shared/bench/make_toy_dataset.py``
(20 training and 4 test volumes of 64 x 192 x 192 at 1 mm, bright lesions in a cord) -> BIDS (symbolic links) ->
``lesionseg train CONFIG`` (the whole command timed) -> ``lesionseg infer`` on the test volumes -> lesion Dice
(``lesionseg.benchmark_nnunet.run_lesionseg``, lesionseg's half of ``lesionseg benchmark --nnunet``). Writes ``OUT/bench_training.json``: wall seconds of the training command, seconds per step,
data-wait fraction, lesion Dice on each test volume, and validation Dice against minutes (from TensorBoard).

    python scripts/bench_training.py --out runs/bench-training [--config bench] [--seed 12345] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from lesionseg.benchmark_nnunet import run_lesionseg

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "make_toy_dataset.py"


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
    subprocess.run([sys.executable, str(BENCH), "--out", str(args.out / "raw"), "--seed", str(args.seed),
                    *args.toy_args.split()], check=True, capture_output=True)
    results = {"seed": args.seed} | run_lesionseg(next((args.out / "raw").glob("Dataset*")), args.out, args.config,
                                                   args.overrides)
    dice = results["infer"]["torch"]["dice"]
    results["test_lesion_dice_mean"] = round(sum(dice.values()) / len(dice), 4)
    (args.out / "bench_training.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
