"""Transfer learning across contrasts on phantoms: T2w -> T1w MPRAGE and PSIR with N labelled target volumes.

For each target contrast, N in --n, and seed, with the same step budget for every trained variant:

- ``scratch``: trained from random weights on the N target volumes;
- ``ft-full``, ``ft-frozen_encoder``, ``ft-progressive``, ``ft-discriminative``: fine-tuned from a T2w model
  (trained once per seed on T2w phantoms) on the same N volumes, in each ``transfer.mode``, its head kept and its
  input polarity aligned to the target's (``transfer.polarity: auto``: T1w and PSIR lesions are dark, T2w ones
  bright, so the T2w model reads the target images inverted);
- ``zero-shot``: the T2w model as it is;
- ``multi-contrast``: trained from random weights on the T2w volumes and the N target volumes together.

Every model is scored (lesion Dice per image, averaged) on held-out phantoms of the target contrast. Writes
``results.json``, ``transfer_table.md`` (mean +- std over seeds) and ``transfer_plot.png``::

    python scripts/transfer_experiment.py --out runs/transfer            # about 30 minutes on 2 CPU cores
    python scripts/transfer_experiment.py --out /tmp/transfer --quick    # seconds; a smoke run for CI
    python scripts/transfer_experiment.py --out runs/transfer-r --randomized-source --n 3   # contrast-agnostic source

One phantom dataset (seed ``--data-seed``) holds every subject: the first ``--source-subjects`` give the T2w
source data, the next ``max(N)`` the pool the N target volumes are drawn from (a different draw per seed), and the
last ``--test-subjects`` the held-out test images.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from lesionseg.config import AcquisitionConfig, SynthConfig, load_config
from lesionseg.evaluation.metrics import voxel_metrics
from lesionseg.inference.predictor import Predictor
from lesionseg.io.bids import discover
from lesionseg.io.nifti import load_image
from lesionseg.synth.dataset import make_dataset
from lesionseg.training.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / "lesionseg" / "configs"
MODES = ("full", "frozen_encoder", "progressive", "discriminative")
VARIANTS = ("scratch", *(f"ft-{mode}" for mode in MODES), "zero-shot", "multi-contrast")


def copy_images(dataset: Path, destination: Path, picks: list[tuple[str, str]]) -> Path:
    """A BIDS dataset holding only the (subject, contrast) images of ``picks``, with their labels."""
    if destination.exists():
        shutil.rmtree(destination)
    for subject, contrast in picks:
        for source in dataset.rglob(f"{subject}_{contrast}*"):
            target = destination / source.relative_to(dataset)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def score(model: Path, tests: list) -> float:  # noqa: ANN001
    """Mean lesion Dice of ``model`` over the test images (an empty truth with an empty prediction is 1)."""
    predictor = Predictor.from_model(model, device="cpu")
    dices = []
    for item in tests:
        prediction = predictor.predict(item.image)
        truth = load_image(item.lesion, kind="label")
        dices.append(voxel_metrics(prediction.mask, truth.data, truth.spacing_mm).dice)
    return float(np.mean(dices))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/transfer"))
    parser.add_argument("--targets", default="T1w,PSIR")
    parser.add_argument("--n", default="1,3,8", help="numbers of labelled target volumes")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=400, help="steps of every trained variant")
    parser.add_argument("--source-steps", type=int, default=1500)
    parser.add_argument("--source-subjects", type=int, default=12)
    parser.add_argument("--test-subjects", type=int, default=6)
    parser.add_argument("--data-seed", type=int, default=3)
    parser.add_argument("--config", type=Path, default=CONFIGS / "demo.yaml")
    parser.add_argument("--quick", action="store_true", help="tiny phantoms, 1 seed, N=1, a few steps")
    parser.add_argument("--randomized-source", action="store_true",
                        help="the source model trains on domain-randomised phantoms with random intensities only "
                             "(randomize.p_known_contrast=0: it never sees a T2w, T1w or PSIR phantom) instead of T2w")
    parser.add_argument("--polarity", default="auto", choices=["auto", "keep", "invert"],
                        help="transfer.polarity of the fine-tuned variants")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(n) for n in args.n.split(",")]
    targets = args.targets.split(",")
    synth = SynthConfig(subjects=args.source_subjects + max(sizes) + args.test_subjects, contrasts=["T2w", *targets],
                        seed=args.data_seed)
    base = ["data.split.val_fraction=0", "data.split.test_fraction=0", f"data.cache_dir={args.out / 'cache'}"]
    if args.quick:
        sizes, args.seeds, args.steps, args.source_steps = [1], 1, 4, 4
        args.source_subjects, args.test_subjects = 2, 1
        synth = synth.model_copy(update={
            "subjects": 4, "fov_mm": (30.0, 36.0, 60.0),
            "acquisition": {"T2w": AcquisitionConfig(spacing_mm=(3.0, 1.0, 1.0)),
                            "T1w": AcquisitionConfig(spacing_mm=(1.5, 1.5, 1.5)),
                            "PSIR": AcquisitionConfig(spacing_mm=(1.0, 1.0, 3.0))},
        })
        args.config = CONFIGS / "tiny.yaml"
    out = args.out
    started = time.perf_counter()
    dataset = out / "phantoms"
    if not (dataset / "dataset_description.json").is_file():
        make_dataset(dataset, synth)
    subjects = sorted({item.subject for item in discover(dataset, ["T2w"])})
    source_subjects = subjects[: args.source_subjects]
    pool = subjects[args.source_subjects : args.source_subjects + max(sizes)]
    test_subjects = subjects[args.source_subjects + max(sizes) :]

    results: list[dict] = []
    for seed in range(args.seeds):
        source_root = copy_images(dataset, out / "data" / f"source-{seed}", [(s, "T2w") for s in source_subjects])
        source_overrides = [*base, f"train.steps={args.source_steps}", f"train.seed={seed}"]
        if args.randomized_source:  # validation-free: the T2w source images are only needed to satisfy discovery
            source_overrides += ["randomize.enabled=true", "randomize.p_known_contrast=0.0", "randomize.subjects_per_epoch=16"]
        source_config = load_config(args.config, source_overrides)
        source = train(source_config, data_root=source_root, run_dir=out / "runs" / f"source-{seed}").model_dir
        order = list(np.random.default_rng(seed).permutation(pool))
        for target in targets:
            tests = [item for item in discover(dataset, [target]) if item.subject in test_subjects]
            zero_shot = score(source, tests)
            for n in sizes:
                picks = [(s, target) for s in order[:n]]
                root = copy_images(dataset, out / "data" / f"{target}-n{n}-{seed}", picks)
                mixed = copy_images(dataset, out / "data" / f"{target}-n{n}-{seed}-multi",
                                    [*((s, "T2w") for s in source_subjects), *picks])
                common = [f"train.seed={seed}", f"train.steps={args.steps}"]
                variants: dict[str, tuple[Path, list[str]]] = {
                    "scratch": (root, [f"data.contrasts=[{target}]"]),
                    **{
                        f"ft-{mode}": (root, [f"data.contrasts=[{target}]", f"transfer.init_from={source}",
                                              f"transfer.mode={mode}", f"transfer.polarity={args.polarity}",
                                              f"transfer.unfreeze_every={max(1, args.steps // 8)}"])
                        for mode in MODES
                    },
                    "multi-contrast": (mixed, [f"data.contrasts=[T2w,{target}]"]),
                }
                for variant, (data_root, overrides) in variants.items():
                    tick = time.perf_counter()
                    config = load_config(args.config, [*base, *common, *overrides])
                    model = train(config, data_root=data_root, run_dir=out / "runs" / f"{target}-n{n}-{seed}-{variant}").model_dir
                    dice = score(model, tests)
                    results.append({"target": target, "n": n, "seed": seed, "variant": variant, "dice": dice,
                                    "seconds": round(time.perf_counter() - tick, 1)})
                    print(f"{target} N={n} seed={seed} {variant}: Dice {dice:.3f}", flush=True)
                results.append({"target": target, "n": n, "seed": seed, "variant": "zero-shot", "dice": zero_shot,
                                "seconds": 0.0})
    elapsed = time.perf_counter() - started
    write_outputs(out, results, args, sizes, targets, elapsed)


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {spread:.3f}"


def write_outputs(out: Path, results: list[dict], args: argparse.Namespace, sizes: list[int], targets: list[str],
                  elapsed: float) -> None:
    """``results.json``, ``transfer_table.md`` and ``transfer_plot.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def values(target: str, n: int, variant: str) -> list[float]:
        return [r["dice"] for r in results if r["target"] == target and r["n"] == n and r["variant"] == variant]

    settings = {"steps": args.steps, "source_steps": args.source_steps, "seeds": args.seeds, "polarity": args.polarity,
                "source": "domain-randomised (random intensities only)" if args.randomized_source else "T2w phantoms",
                "source_subjects": args.source_subjects, "test_subjects": args.test_subjects,
                "config": str(args.config), "quick": args.quick, "seconds": round(elapsed, 1)}
    (out / "results.json").write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
    lines = [
        f"Lesion Dice on {args.test_subjects} held-out phantoms per contrast, mean +- std over {args.seeds} seed(s); "
        f"{args.steps} steps per trained variant, the source model {args.source_steps} steps on "
        + ("domain-randomised phantoms with random intensities" if args.randomized_source
           else f"{args.source_subjects} T2w phantoms") + f"; fine-tuning keeps the source's head, input polarity "
        f"{args.polarity}; {elapsed / 60:.1f} min in all.",
        "",
        "| target | N | " + " | ".join(VARIANTS) + " | fine-tuned (best mode) - scratch |",
        "|---|---|" + "---|" * len(VARIANTS) + "---|",
    ]
    for target in targets:
        for n in sizes:
            means = {v: statistics.mean(values(target, n, v)) for v in VARIANTS if values(target, n, v)}
            best = max((means[v] for v in means if v.startswith("ft-")), default=float("nan"))
            gain = best - means.get("scratch", float("nan"))
            lines.append(f"| {target} | {n} | " + " | ".join(_cell(values(target, n, v)) for v in VARIANTS) + f" | {gain:+.3f} |")
    (out / "transfer_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    figure, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 4), squeeze=False)
    for axis, target in zip(axes[0], targets, strict=True):
        for variant in VARIANTS:
            means = [statistics.mean(values(target, n, variant) or [float("nan")]) for n in sizes]
            errors = [statistics.stdev(values(target, n, variant)) if len(values(target, n, variant)) > 1 else 0.0 for n in sizes]
            axis.errorbar(sizes, means, yerr=errors, marker="o", capsize=3, label=variant)
        axis.set_title(f"{'randomised' if args.randomized_source else 'T2w'} -> {target}")
        axis.set_xlabel("labelled target volumes (N)")
        axis.set_ylabel("lesion Dice")
        axis.set_xticks(sizes)
        axis.set_ylim(0, 1)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(out / "transfer_plot.png", dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
