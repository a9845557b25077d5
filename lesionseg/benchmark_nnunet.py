"""lesionseg and nnU-Net v2 side by side (``lesionseg benchmark --nnunet DATASET``) on one nnU-Net raw dataset
(``imagesTr``, ``labelsTr``, ``imagesTs``, ``labelsTs``, ``dataset.json``; one channel, binary labels), such as the
comparison volumes of ``../shared/bench/make_toy_dataset.py``. Both tools run as a user runs them, one after the
other (never sharing the CPU), each command timed from process start:

1. lesionseg: the dataset linked as BIDS (symbolic links; channel 0 read as T2w), ``lesionseg train CONFIG``,
   ``lesionseg infer`` on the test images.
2. nnU-Net: plan and preprocess ``3d_fullres``, the plain ``nnUNetTrainer`` for as many wall seconds as lesionseg's
   training command took (equal training minutes), then ``nnUNetPredictor`` without and with its mirroring TTA.
   nnU-Net runs in ``nnunet_python`` (a Python with ``nnunetv2``: the ``[nnunet]`` extra or its own environment)
   through :mod:`lesionseg.nnunet_runner`.
3. Lesion Dice of every test case, computed the same way for both (:func:`lesionseg.evaluation.metrics.dice`).

Writes ``nnunet-side-by-side.json`` and ``.md``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lesionseg.errors import LesionsegError
from lesionseg.outputs.tables import read_csv

RUNNER = Path(__file__).with_name("nnunet_runner.py")
IMAGE_SUFFIX = "_0000.nii.gz"
NNUNET_INSTALL = "pip install -c constraints.txt 'lesionseg[nnunet]' (constraints pin your torch; see the README)"


def run_command(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str, str]:
    """Wall seconds, stdout and stderr of a command.

    Raises:
        LesionsegError: it failed (its last line of stderr in the message).
    """
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", env=env, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise LesionsegError(f"benchmark: {' '.join(Path(c).name for c in command[:4])} failed: {last}")
    return wall, result.stdout, result.stderr


def lesionseg(*arguments: str) -> tuple[float, str]:
    """Wall seconds and stderr (the logs) of ``python -m lesionseg ARGUMENTS``."""
    wall, _, stderr = run_command([sys.executable, "-m", "lesionseg", *arguments])
    return wall, stderr


def read_dataset(dataset: Path) -> tuple[int, dict[str, Any]]:
    """The nnU-Net dataset id (from ``DatasetNNN_Name``) and ``dataset.json``.

    Raises:
        LesionsegError: not an nnU-Net raw dataset with one channel, binary labels and a test split.
    """
    match = re.fullmatch(r"Dataset(\d{3})_\w+", dataset.name)
    if match is None:
        raise LesionsegError(f"{dataset}: an nnU-Net raw dataset folder is named DatasetNNN_Name")
    missing = [name for name in ("dataset.json", "imagesTr", "labelsTr", "imagesTs", "labelsTs")
               if not (dataset / name).exists()]
    if missing:
        raise LesionsegError(f"{dataset}: not an nnU-Net raw dataset with a test split (no {', '.join(missing)})")
    description = json.loads((dataset / "dataset.json").read_text())
    if len(description.get("channel_names", {})) != 1 or len(description.get("labels", {})) != 2:
        raise LesionsegError(f"{dataset}: the side-by-side benchmark takes one channel and binary labels")
    return int(match.group(1)), description


def test_cases(dataset: Path) -> list[str]:
    """The test case identifiers (``imagesTs/CASE_0000.nii.gz``)."""
    return sorted(p.name.removesuffix(IMAGE_SUFFIX) for p in (dataset / "imagesTs").glob(f"*{IMAGE_SUFFIX}"))


def bids_subject(split: str, case: str) -> str:
    """The BIDS subject of an nnU-Net case (``Ts``, ``case_021`` -> ``sub-testcase021``)."""
    return "sub-" + {"Tr": "train", "Ts": "test"}[split] + re.sub(r"[^A-Za-z0-9]", "", case)


def link_as_bids(dataset: Path, out: Path) -> Path:
    """The dataset as two BIDS datasets ``out/{train,test}`` of symbolic links (images as T2w, labels as
    ``derivatives/labels/..._lesion-manual``); returns ``out``."""
    for split, subset in (("Tr", "train"), ("Ts", "test")):
        root = out / subset
        for image in sorted((dataset / f"images{split}").glob(f"*{IMAGE_SUFFIX}")):
            case = image.name.removesuffix(IMAGE_SUFFIX)
            subject = bids_subject(split, case)
            anat, labels = root / subject / "anat", root / "derivatives" / "labels" / subject / "anat"
            anat.mkdir(parents=True, exist_ok=True)
            labels.mkdir(parents=True, exist_ok=True)
            os.symlink(image.resolve(), anat / f"{subject}_T2w.nii.gz")
            os.symlink((dataset / f"labels{split}" / f"{case}.nii.gz").resolve(),
                       labels / f"{subject}_T2w_lesion-manual.nii.gz")
        (root / "dataset_description.json").write_text('{"Name": "nnU-Net raw dataset", "BIDSVersion": "1.9.0"}\n')
    return out


def validation_curve(run: Path) -> list[dict[str, float]]:
    """Validation Dice at each validation of a ``lesionseg train`` run, with minutes since its first step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((run / "tensorboard").glob("events.out.tfevents.*"))))
    events.Reload()
    start = events.Scalars("train/loss")[0].wall_time
    return [{"minutes": round((e.wall_time - start) / 60, 2), "step": e.step, "val_dice": round(e.value, 4)}
            for e in events.Scalars("val/dice")]


def train_lesionseg(data: Path, run: Path, config: str, overrides: list[str]) -> dict[str, Any]:
    """``lesionseg train CONFIG --data DATA --out RUN`` timed: wall seconds, s/step, data wait, validation curve."""
    wall, log = lesionseg("train", config, "--data", str(data), "--out", str(run),
                          *[part for item in overrides for part in ("--set", item)])
    step, wait = (float(v) for v in re.search(r"\(([\d.]+) s/step, data wait ([\d.]+)%\)", log).groups())
    return {"config": config, "overrides": overrides, "train_command_seconds": round(wall, 1),
            "seconds_per_step": step, "data_wait_fraction": round(wait / 100, 4), "curve": validation_curve(run)}


def lesion_dice(predictions: dict[str, Path], dataset: Path) -> dict[str, float]:
    """Lesion Dice of each case's predicted mask against ``labelsTs/CASE.nii.gz``."""
    import nibabel as nib

    from lesionseg.evaluation.metrics import dice

    return {case: round(dice(np.asanyarray(nib.load(path).dataobj) > 0,
                             np.asanyarray(nib.load(dataset / "labelsTs" / f"{case}.nii.gz").dataobj) > 0), 4)
            for case, path in predictions.items()}


def infer_lesionseg(bids: Path, model: Path, out: Path, engine: str, dataset: Path) -> dict[str, Any]:
    """``lesionseg infer`` on the test images in one process (timed), seconds of each volume, Dice per case."""
    wall, _ = lesionseg("infer", str(bids / "test"), "--model", str(model), "--out", str(out), "--no-report",
                        "--engine", engine)
    _, rows = read_csv(out / "summary.csv")
    cases = test_cases(dataset)
    predictions = {case: next(out.glob(f"{bids_subject('Ts', case)}/anat/*_lesionseg.nii.gz")) for case in cases}
    return {"command_seconds": round(wall, 1), "seconds_per_volume": round(wall / len(cases), 2),
            "in_batch_seconds_per_volume": round(float(np.median([float(row["seconds"]) for row in rows])), 2),
            "dice": lesion_dice(predictions, dataset)}


def run_lesionseg(dataset: Path, out: Path, config: str, overrides: list[str]) -> dict[str, Any]:
    """lesionseg's side: train (timed); infer on the test images with PyTorch, and with ONNX Runtime after
    ``lesionseg export`` when the exporter (the ``[onnx]`` extra) is installed."""
    bids = link_as_bids(dataset, out / "bids")
    results = train_lesionseg(bids / "train", out / "run", config, overrides)
    model = out / "run" / "model"
    results["infer"] = {"torch": infer_lesionseg(bids, model, out / "pred-torch", "torch", dataset)}
    if importlib.util.find_spec("onnx") is not None:
        results["export_command_seconds"] = round(lesionseg("export", str(model))[0], 1)
        results["infer"]["onnxruntime"] = infer_lesionseg(bids, model, out / "pred-onnxruntime", "onnxruntime",
                                                          dataset)
    return results


def _nnunet(python: str, env: dict[str, str], *arguments: str) -> tuple[float, dict[str, Any]]:
    wall, stdout, _ = run_command([python, str(RUNNER), *arguments], env=env)
    return wall, json.loads(stdout.strip().splitlines()[-1])


def nnunet_environment(out: Path) -> dict[str, str]:
    """The process environment with nnU-Net's three folders under ``out`` (and data augmentation on 2 workers
    unless the user set ``nnUNet_n_proc_DA``)."""
    folders = {name: str(out / name) for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    return {"nnUNet_n_proc_DA": "2", **os.environ, **folders}


def run_nnunet(dataset: Path, out: Path, python: str, train_seconds: float, tta: bool) -> dict[str, Any]:
    """nnU-Net's side: plan + preprocess, train for ``train_seconds``, predict without (and with) TTA."""
    dataset_id, _ = read_dataset(dataset)
    env = nnunet_environment(out)
    (out / "nnUNet_raw").mkdir(parents=True, exist_ok=True)
    os.symlink(dataset.resolve(), out / "nnUNet_raw" / dataset.name)
    cases = test_cases(dataset)
    plan_wall, plan = _nnunet(python, env, "plan", str(dataset_id))
    train_wall, train = _nnunet(python, env, "train", str(dataset_id), "--seconds", str(train_seconds))
    results = {"plan_command_seconds": round(plan_wall, 1), "plan": plan,
               "train_command_seconds": round(train_wall, 1), "train": train, "predict": {}}
    for mode in ("no_tta", "tta") if tta else ("no_tta",):
        predictions = out / f"pred-{mode}"
        wall, answer = _nnunet(python, env, "predict", str(dataset_id), str(dataset / "imagesTs"), str(predictions),
                          *(["--tta"] if mode == "tta" else []))
        results["predict"][mode] = {
            "command_seconds": round(wall, 1), "seconds_per_volume": round(wall / len(cases), 2),
            "in_batch_seconds_per_volume": round(answer["prediction_seconds"] / len(cases), 2),
            "dice": lesion_dice({case: predictions / f"{case}.nii.gz" for case in cases}, dataset)}
    return results


def check_nnunet(python: str) -> None:
    """Raises:
        LesionsegError: ``python`` cannot import nnunetv2.
    """
    result = subprocess.run([python, "-c", "import nnunetv2"], capture_output=True, check=False)
    if result.returncode != 0:
        raise LesionsegError(f"benchmark --nnunet: {python} cannot import nnunetv2; {NNUNET_INSTALL}, "
                             "or pass --nnunet-python with nnU-Net's own environment")


def run_side_by_side(dataset: Path, out: Path, *, nnunet_python: str | None = None, config: str = "bench",
                     overrides: list[str] | None = None, tta: bool = True, log: Any = print) -> dict[str, Any]:
    """Both tools on ``dataset`` (lesionseg first: its training wall time is nnU-Net's budget); JSON + Markdown.

    Raises:
        LesionsegError: not a usable dataset, no nnU-Net, or a command failed.
    """
    dataset = Path(dataset)
    read_dataset(dataset)
    python = nnunet_python or sys.executable
    check_nnunet(python)
    if out.exists() and any(out.iterdir()):
        raise LesionsegError(f"{out}: not empty; the side-by-side benchmark writes into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"dataset": dataset.name, "test_cases": test_cases(dataset)}
    results["lesionseg"] = run_lesionseg(dataset, out / "lesionseg", config, overrides or [])
    log(f"lesionseg: {json.dumps(results['lesionseg']['infer'])}")
    budget = results["lesionseg"]["train_command_seconds"]
    results["nnunet"] = run_nnunet(dataset, out / "nnunet", python, budget, tta)
    log(f"nnU-Net: {json.dumps(results['nnunet']['predict'])}")
    results["speedup_vs_nnunet_no_tta"] = speedups(results)
    (out / "nnunet-side-by-side.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "nnunet-side-by-side.md").write_text(markdown(results))
    return results


def speedups(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """nnU-Net's seconds per volume without TTA over lesionseg's, per lesionseg engine: per command (process start
    included, divided by the volumes) and inside the batch."""
    theirs = results["nnunet"]["predict"]["no_tta"]
    return {engine: {key: round(theirs[key] / ours[key], 1)
                     for key in ("seconds_per_volume", "in_batch_seconds_per_volume")}
            for engine, ours in results["lesionseg"]["infer"].items()}


MODES = {"no_tta": "no TTA", "tta": "mirroring TTA (its default)"}


def _mean(values: dict[str, float]) -> float:
    return round(float(np.mean(list(values.values()))), 3)


def _cells(entry: dict[str, Any]) -> str:
    return (f"{_mean(entry['dice'])} | {', '.join(f'{v:.2f}' for v in entry['dice'].values())} | "
            f"{entry['seconds_per_volume']} | {entry['in_batch_seconds_per_volume']} |")


def markdown(results: dict[str, Any]) -> str:
    """One row per tool and inference mode: training minutes, test lesion Dice, seconds per volume."""
    ours, theirs = results["lesionseg"], results["nnunet"]
    lines = [
        (f"{results['dataset']}: {len(results['test_cases'])} test volumes, predicted in one command per row; "
         "\"per command\" is that command's wall time (process start included) over the volumes."),
        "",
        ("| tool | training command, min | training | test lesion Dice (mean) | per case | s / volume, per command "
         "| s / volume, inside the batch |"),
        "|---|---|---|---|---|---|---|",
    ]
    training = f"{ours['seconds_per_step']} s/step, data wait {ours['data_wait_fraction']:.0%}"
    for engine, entry in ours["infer"].items():
        lines.append(f"| lesionseg ({ours['config']}), {engine} | {ours['train_command_seconds'] / 60:.1f} | "
                     f"{training} | {_cells(entry)}")
    train = theirs["train"]
    for mode, entry in theirs["predict"].items():
        lines.append(f"| nnU-Net v2 3d_fullres, {MODES[mode]} | {theirs['train_command_seconds'] / 60:.1f} "
                     f"(+{theirs['plan_command_seconds'] / 60:.1f} planning) | {train['iterations']} iterations, "
                     f"{train['seconds_per_iteration']} s each | {_cells(entry)}")
    lines.append("")
    for engine, ratio in results["speedup_vs_nnunet_no_tta"].items():
        lines.append(f"lesionseg ({engine}) is {ratio['seconds_per_volume']}x faster per volume than nnU-Net without "
                     f"TTA per command, {ratio['in_batch_seconds_per_volume']}x inside the batch.")
    return "\n".join(lines) + "\n"
