"""Seeded SIGKILL trials: a killed training run resumed with --resume, and a killed batch rerun with
--skip-existing, end exactly where an uninterrupted run ends; no partial file ever sits under a final name."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from lesionseg.io.checkpoint import load_checkpoint
from tests.conftest import CONFIGS

TRIALS = 10
TRAIN_SETTINGS = ["train.steps=24", "train.val_every=2", "train.deterministic=true", "train.num_workers=0"]
STEPS = 24


def _command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "lesionseg.cli.main", *arguments]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", timeout=300)


def _kill_after(command: list[str], delay: float, *, once: Callable[[], bool] | None = None) -> None:
    """Start ``command`` and SIGKILL it ``delay`` seconds later; with ``once``, the delay starts when ``once()``
    first holds (e.g. the first checkpoint exists), so that the kill lands in the working phase rather than
    during start-up."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if once is not None:
        deadline = time.time() + 120
        while process.poll() is None and not once() and time.time() < deadline:
            time.sleep(0.02)
    time.sleep(delay)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _random_kill(
    trial: int, command: list[str], rng: random.Random, duration: float, *, working: Callable[[], bool], window: float
) -> None:
    """Odd trials: a kill at any moment of the run; even trials: within ``window`` seconds after ``working()``
    first holds (the run has started its real work), so that some kills always land mid-run."""
    if trial % 2:
        _kill_after(command, rng.uniform(0.3, duration))
    else:
        _kill_after(command, rng.uniform(0.0, window), once=working)


def _no_partial_files(folder: Path) -> None:
    assert not list(folder.rglob(".*.part*")), "a temporary file was left behind"


@pytest.mark.slow
def test_killed_training_resumes_to_identical_weights(phantom_dataset: Path, tmp_path: Path) -> None:
    def train(out: Path, *extra: str) -> list[str]:
        settings = [arg for setting in TRAIN_SETTINGS for arg in ("--set", setting)]
        return _command("train", str(CONFIGS / "tiny.yaml"), "--data", str(phantom_dataset), "--out", str(out), "--device", "cpu", *settings, *extra)

    started = time.perf_counter()
    reference = _run(train(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr[-2000:]
    duration = time.perf_counter() - started
    expected = load_checkpoint(tmp_path / "reference" / "last.pt")["model"]

    rng = random.Random(20261122)
    resumed_from = []
    for trial in range(TRIALS):
        out = tmp_path / f"trial{trial}"
        _random_kill(trial, train(out), rng, duration, working=lambda out=out: (out / "last.pt").is_file(), window=2.0)
        _no_partial_files_or_complete(out)
        has_checkpoint = (out / "last.pt").is_file()
        resumed_from.append(load_checkpoint(out / "last.pt")["step"] if has_checkpoint else 0)
        finished = _run(train(out, "--resume") if has_checkpoint else train(out))
        assert finished.returncode == 0, finished.stderr[-2000:]
        _no_partial_files(out)
        weights = load_checkpoint(out / "last.pt")["model"]
        for key, value in expected.items():
            assert torch.equal(weights[key], value), f"trial {trial}: {key} differs after resuming from step {resumed_from[-1]}"
    assert any(0 < step < STEPS for step in resumed_from), f"no kill landed mid-training: {resumed_from}"


def _no_partial_files_or_complete(folder: Path) -> None:
    """Right after a kill: temporaries may exist, but every file under a final name is complete."""
    if (folder / "last.pt").is_file():
        load_checkpoint(folder / "last.pt")
    if (folder / "best.pt").is_file():
        load_checkpoint(folder / "best.pt")


@pytest.mark.slow
def test_killed_batch_reruns_to_identical_outputs(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    inputs = phantom_dataset / "sub-001"

    def infer(out: Path, *extra: str) -> list[str]:
        return _command("infer", str(inputs), str(phantom_dataset / "sub-002"), "--model", str(trained_tiny_model),
                        "--out", str(out), "--device", "cpu", *extra)

    started = time.perf_counter()
    reference = _run(infer(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr[-2000:]
    duration = time.perf_counter() - started
    masks = sorted(p.relative_to(tmp_path / "reference") for p in (tmp_path / "reference").rglob("*_lesionseg.nii.gz"))
    assert len(masks) == 6

    rng = random.Random(1122)
    done_at_kill = []
    for trial in range(TRIALS):
        out = tmp_path / f"trial{trial}"
        _random_kill(trial, infer(out), rng, duration, working=lambda out=out: any(out.rglob("*_lesionseg.nii.gz")), window=0.5)
        present = list(out.rglob("*_lesionseg.nii.gz")) if out.exists() else []
        done_at_kill.append(len(present))
        for mask in present:
            nib.load(mask).get_fdata()  # complete and loadable
        finished = _run(infer(out, "--skip-existing"))
        assert finished.returncode == 0, finished.stderr[-2000:]
        _no_partial_files(out)
        for relative in masks:
            np.testing.assert_array_equal(
                np.asanyarray(nib.load(out / relative).dataobj), np.asanyarray(nib.load(tmp_path / "reference" / relative).dataobj)
            )
    assert any(0 < n < 6 for n in done_at_kill), f"no kill landed mid-batch: {done_at_kill}"
