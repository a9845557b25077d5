"""Inferer strategies: composed and passed in; the predictor averages their samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lesionseg.config import InferConfig
from lesionseg.inference.inferers import TTA_FLIPS, Ensemble, FlipTTA, SlidingWindow, mean_and_variance
from lesionseg.inference.predictor import Predictor


class _Recorder:
    """An inferer that returns its network's id as a constant map and records the images it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, np.ndarray]] = []

    def samples(self, image, networks):  # noqa: ANN001, ANN202
        self.seen.append((id(networks[0]), image))
        yield np.full_like(image, float(len(self.seen)))


class _Identity:
    """An engine whose logits are its input."""

    name = "identity"

    def __init__(self) -> None:
        self.batches: list[tuple[int, ...]] = []

    def __call__(self, batch: np.ndarray, *, bf16: bool = False) -> np.ndarray:
        self.batches.append(batch.shape)
        return batch.copy()


def test_sliding_window_blends_windows_back_to_the_image() -> None:
    """Windows that overlap, an axis shorter than the window (padded) and a partial last batch: an engine that
    returns its input gives back sigmoid(image) exactly, as the blending weights sum to one."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=(40, 23, 70)).astype(np.float32)
    engine = _Identity()
    window = SlidingWindow((32, 32, 32), InferConfig(overlap=0.25, sw_batch_size=4, mode="gaussian"))
    probabilities = window(image, engine)
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-image)), atol=1e-5)
    assert all(shape[1:] == (1, 32, 32, 32) and shape[0] <= 4 for shape in engine.batches)
    assert sum(shape[0] for shape in engine.batches) == 2 * 1 * 3  # 40 -> 2 windows, 23 -> 1 (padded), 70 -> 3


def test_ensemble_of_flips_runs_every_member_on_every_mirroring() -> None:
    image = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    recorder = _Recorder()
    members = [_Identity(), _Identity()]
    samples = list(Ensemble(FlipTTA(recorder)).samples(image, members))
    assert len(samples) == len(members) * len(TTA_FLIPS)
    assert [network for network, _ in recorder.seen] == [id(members[0])] * 8 + [id(members[1])] * 8
    assert np.array_equal(recorder.seen[1][1], np.flip(image, 0))  # the second sample saw the first mirroring


def test_mean_and_variance_match_numpy() -> None:
    rng = np.random.default_rng(0)
    maps = [rng.random((4, 5, 6), dtype=np.float32) for _ in range(5)]
    mean, variance = mean_and_variance(iter(maps))
    stacked = np.stack(maps)
    np.testing.assert_allclose(mean, stacked.mean(0), rtol=1e-6)
    np.testing.assert_allclose(variance, stacked.var(0), atol=1e-6, rtol=1e-5)
    single, none = mean_and_variance(iter(maps[:1]))
    assert np.array_equal(single, maps[0]) and none is None


def test_an_inferer_passed_in_is_the_one_that_runs(trained_tiny_model: Path, phantom_dataset: Path) -> None:
    loaded = Predictor.from_model(trained_tiny_model, device="cpu")
    recorder = _Recorder()
    custom = Predictor(loaded.members, loaded.config, device="cpu", metadata=loaded.metadata, inferer=recorder)
    prediction = custom.predict(phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz")
    assert len(recorder.seen) == 1 and np.allclose(prediction.probabilities[prediction.probabilities > 0], 1.0, atol=1e-4)
