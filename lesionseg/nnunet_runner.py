"""nnU-Net v2 through its own Python API, one step per process, for ``lesionseg benchmark --nnunet``.

Runs in whichever Python has ``nnunetv2`` (``python nnunet_runner.py STEP ...``): it imports the standard library and
nnU-Net only, never lesionseg. nnU-Net reads ``nnUNet_raw``, ``nnUNet_preprocessed`` and ``nnUNet_results`` from the
environment when it is imported; the caller sets them. Each step prints one JSON line on stdout.

- ``plan ID``: fingerprint (with the dataset integrity check), plan and preprocess the ``3d_fullres`` configuration,
  as ``nnUNetv2_plan_and_preprocess -d ID -c 3d_fullres`` does.
- ``train ID --seconds S``: the plain ``nnUNetTrainer`` (its plan, loss, augmentation, optimiser and learning rate
  schedule) on all training cases (fold ``all``), one iteration per "epoch" so that it stops once a wall-time budget
  (counted from process start) is spent:
  no shipped trainer caps iterations, and nnU-Net's trainer lookup cannot load a custom class here (it imports a
  module that needs torchvision, broken next to a CPU torch). Validation passes are skipped (they cost iterations).
- ``predict ID INPUT OUTPUT [--tta]``: ``nnUNetPredictor`` (tile step 0.5, Gaussian weighting) with or without its
  mirroring test-time augmentation (nnU-Net's default is with).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

CONFIGURATION = "3d_fullres"
TRAINER, PLANS, FOLD = "nnUNetTrainer", "nnUNetPlans", "all"


def _peak_rss_gb() -> float:
    """Peak resident memory of this process and of its largest finished child (the data loaders), GB."""
    peak_kb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return round(peak_kb / 1024**2, 2)


def plan(dataset_id: int, processes: int) -> dict:
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments, preprocess
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    extract_fingerprints([dataset_id], num_processes=processes, check_dataset_integrity=True, show_progress_bar=False)
    plan_experiments([dataset_id])
    preprocess([dataset_id], configurations=(CONFIGURATION,), num_processes=(processes,), show_progress_bar=False)
    plans_file = Path(nnUNet_preprocessed) / maybe_convert_to_dataset_name(dataset_id) / f"{PLANS}.json"
    configuration = json.loads(plans_file.read_text())["configurations"][CONFIGURATION]
    return {"patch_size": configuration["patch_size"], "batch_size": configuration["batch_size"],
            "spacing": configuration["spacing"]}


def _trainer(dataset_id: int):
    import torch
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    folder = Path(nnUNet_preprocessed) / maybe_convert_to_dataset_name(dataset_id)
    plans = json.loads((folder / f"{PLANS}.json").read_text())
    plans["continue_training"] = False  # what nnU-Net's get_trainer_from_args adds before building the trainer
    dataset_json = json.loads((folder / "dataset.json").read_text())
    return nnUNetTrainer(plans, CONFIGURATION, FOLD, dataset_json, device=torch.device("cpu"))


def train(dataset_id: int, seconds: float, started: float) -> dict:
    """Iterations until ``seconds`` after ``started`` are spent (the last one may end past them)."""
    trainer = _trainer(dataset_id)
    trainer.num_iterations_per_epoch = 1  # the default schedule (1000 epochs) is kept: its learning rate at the start
    trainer.on_train_start()
    ready = time.perf_counter()
    losses: list[float] = []
    while trainer.current_epoch < trainer.num_epochs:
        trainer.on_epoch_start()
        trainer.on_train_epoch_start()
        output = trainer.train_step(next(trainer.dataloader_train))
        trainer.on_train_epoch_end([output])
        losses.append(float(output["loss"]))
        trainer.current_epoch += 1
        if time.perf_counter() - started >= seconds:
            break
    trainer.on_train_end()
    return {"iterations": len(losses), "setup_seconds": round(ready - started, 1),
            "seconds_per_iteration": round((time.perf_counter() - ready) / len(losses), 1),
            "losses": [round(loss, 4) for loss in losses], "peak_rss_gb": _peak_rss_gb()}


def predict(dataset_id: int, images: Path, output: Path, tta: bool) -> dict:
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    model = get_output_folder(maybe_convert_to_dataset_name(dataset_id), TRAINER, PLANS, CONFIGURATION)
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=tta,
                                perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(model, use_folds=(FOLD,), checkpoint_name="checkpoint_final.pth")
    started = time.perf_counter()
    predictor.predict_from_files(str(images), str(output), save_probabilities=False, overwrite=True,
                                 num_processes_preprocessing=1, num_processes_segmentation_export=1)
    return {"tta": tta, "prediction_seconds": round(time.perf_counter() - started, 1), "peak_rss_gb": _peak_rss_gb()}


def main(argv: list[str] | None = None) -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    for name in ("plan", "train", "predict"):
        step = steps.add_parser(name)
        step.add_argument("dataset_id", type=int)
    steps.choices["plan"].add_argument("--processes", type=int, default=2)
    steps.choices["train"].add_argument("--seconds", type=float, required=True)
    steps.choices["predict"].add_argument("images", type=Path)
    steps.choices["predict"].add_argument("output", type=Path)
    steps.choices["predict"].add_argument("--tta", action="store_true")
    args = parser.parse_args(argv)
    if args.step == "plan":
        result = plan(args.dataset_id, args.processes)
    elif args.step == "train":
        result = train(args.dataset_id, args.seconds, started)
    else:
        result = predict(args.dataset_id, args.images, args.output, args.tta)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
