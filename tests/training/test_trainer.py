"""Training: it learns, it resumes, it writes checkpoints safely, and it stops clearly on bad settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lesionseg.config import load_config
from lesionseg.errors import ConfigError, TrainingError
from lesionseg.evaluation.metrics import voxel_metrics
from lesionseg.inference.predictor import Predictor
from lesionseg.io.bids import discover
from lesionseg.io.checkpoint import load_checkpoint
from lesionseg.io.nifti import load_image
from lesionseg.networks.factory import build_network
from lesionseg.training.trainer import train
from tests.conftest import CONFIGS


def _val_dice(predictor: Predictor, run_dir: Path, dataset: Path, target: str) -> float:
    val_images = set(json.loads((run_dir / "split.json").read_text())["val"])
    scores = []
    for item in discover(dataset, ["T2w"]):
        if str(item.image) not in val_images:
            continue
        truth = load_image(item.cord if target == "cord" else item.lesion, kind="label")
        scores.append(voxel_metrics(predictor.predict(item.image).mask, truth.data, truth.spacing_mm).dice)
    assert scores, "no validation image"
    return float(np.mean(scores))


@pytest.mark.slow
def test_training_beats_the_untrained_network(phantom_dataset: Path, tmp_path: Path) -> None:
    """A few dozen steps on the cord (large, easy target) must beat the same network before training."""
    config = load_config(
        CONFIGS / "tiny.yaml", ["data.target=cord", "train.steps=40", "train.val_every=20", "train.seed=1"]
    )
    torch.manual_seed(1)
    untrained = Predictor(build_network(config.model), config, device="cpu")
    result = train(config, data_root=phantom_dataset, run_dir=tmp_path)
    trained = Predictor.from_model(result.model_dir, device="cpu")
    before = _val_dice(untrained, tmp_path, phantom_dataset, "cord")
    after = _val_dice(trained, tmp_path, phantom_dataset, "cord")
    assert after > before + 0.2, (before, after)
    assert result.best_val_dice is not None and result.best_val_dice > 0.3
    assert (tmp_path / "tensorboard").is_dir() and any((tmp_path / "tensorboard").iterdir())
    metadata = json.loads((result.model_dir / "metadata.json").read_text())
    assert metadata["target"] == "cord" and metadata["orientation"] == "RAS" and metadata["steps"] == 40


def test_resume_continues_the_step_count(phantom_dataset: Path, tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tiny.yaml", ["train.steps=4", "train.val_every=2"])
    first = train(config, data_root=phantom_dataset, run_dir=tmp_path)
    assert first.steps == 4 and load_checkpoint(tmp_path / "last.pt")["step"] == 4
    longer = config.model_copy(update={"train": config.train.model_copy(update={"steps": 6})})
    second = train(longer, data_root=phantom_dataset, run_dir=tmp_path, resume=True)
    assert second.start_step == 4 and second.steps == 6
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 6 and state["config"]["train"]["steps"] == 6
    assert set(state) >= {"model", "optimizer", "scheduler", "seed", "best_val_dice"}
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_resume_without_checkpoint_is_an_error(phantom_dataset: Path, tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tiny.yaml", ["train.steps=2"])
    with pytest.raises(TrainingError, match="no last.pt to resume from"):
        train(config, data_root=phantom_dataset, run_dir=tmp_path, resume=True)


def test_nan_loss_stops_with_a_clear_message(phantom_dataset: Path, tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tiny.yaml", ["train.steps=50", "train.lr=1e30", "train.grad_clip=null", "train.warmup_steps=0"])
    with pytest.raises(TrainingError, match=r"step \d+: loss is (nan|inf)"):
        train(config, data_root=phantom_dataset, run_dir=tmp_path)


def test_patch_size_must_fit_the_network(phantom_dataset: Path, tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tiny.yaml", ["train.patch_size=[18, 16, 32]"])
    with pytest.raises(ConfigError, match=r"train.patch_size \(18, 16, 32\): every size must be a multiple of 4"):
        train(config, data_root=phantom_dataset, run_dir=tmp_path)


def test_no_labelled_images_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "sub-01/anat").mkdir(parents=True)
    config = load_config(CONFIGS / "tiny.yaml")
    with pytest.raises(TrainingError, match="no T2w image with a lesion label"):
        train(config, data_root=tmp_path, run_dir=tmp_path / "run")


def test_deterministic_mode_repeats_the_loss(phantom_dataset: Path, tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tiny.yaml", ["train.steps=3", "train.deterministic=true", "augment.enabled=true"])
    train(config, data_root=phantom_dataset, run_dir=tmp_path / "a")
    train(config, data_root=phantom_dataset, run_dir=tmp_path / "b")
    a = load_checkpoint(tmp_path / "a/last.pt")["model"]
    b = load_checkpoint(tmp_path / "b/last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_cascade_training_on_cord_crops(phantom_dataset: Path, tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tiny.yaml", ["cascade.enabled=true", "train.steps=6", "train.val_every=3"])
    result = train(config, data_root=phantom_dataset, run_dir=tmp_path)
    assert result.steps == 6 and result.best_val_dice is not None
    saved = load_config(result.model_dir / "config.yaml")
    assert saved.cascade.enabled is True


def test_fp_reduction_training_samples_candidates(phantom_dataset: Path, trained_tiny_model: Path, tmp_path: Path) -> None:
    config = load_config(
        CONFIGS / "tiny.yaml",
        [f"fp_reduction.first_model={trained_tiny_model}", "fp_reduction.candidate_threshold=0.05", "train.steps=4", "train.val_every=2"],
    )
    result = train(config, data_root=phantom_dataset, run_dir=tmp_path)
    assert result.steps == 4 and result.best_val_dice is not None
