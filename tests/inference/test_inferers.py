"""Inferer strategies: composed and passed in; the predictor averages their samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lesionseg.inference.inferers import TTA_FLIPS, Ensemble, FlipTTA, mean_and_variance
from lesionseg.inference.predictor import Predictor


class _Recorder:
    """An inferer that returns its network's id as a constant map and records the images it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, torch.Tensor]] = []

    def samples(self, image, networks):  # noqa: ANN001, ANN202
        self.seen.append((id(networks[0]), image))
        yield torch.full_like(image, float(len(self.seen)))


def test_ensemble_of_flips_runs_every_member_on_every_mirroring() -> None:
    image = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)
    recorder = _Recorder()
    members = [torch.nn.Identity(), torch.nn.Identity()]
    samples = list(Ensemble(FlipTTA(recorder)).samples(image, members))
    assert len(samples) == len(members) * len(TTA_FLIPS)
    assert [network for network, _ in recorder.seen] == [id(members[0])] * 8 + [id(members[1])] * 8
    assert torch.equal(recorder.seen[1][1], torch.flip(image, (1,)))  # the second sample saw the first mirroring


def test_mean_and_variance_match_numpy() -> None:
    rng = np.random.default_rng(0)
    maps = [torch.from_numpy(rng.random((1, 4, 5, 6), dtype=np.float32)) for _ in range(5)]
    mean, variance = mean_and_variance(iter(maps))
    stacked = torch.stack(maps)
    torch.testing.assert_close(mean, stacked.mean(0))
    torch.testing.assert_close(variance, stacked.var(0, unbiased=False), atol=1e-6, rtol=1e-5)
    single, none = mean_and_variance(iter(maps[:1]))
    assert torch.equal(single, maps[0]) and none is None


def test_an_inferer_passed_in_is_the_one_that_runs(trained_tiny_model: Path, phantom_dataset: Path) -> None:
    loaded = Predictor.from_model(trained_tiny_model, device="cpu")
    recorder = _Recorder()
    custom = Predictor(loaded.members, loaded.config, device="cpu", metadata=loaded.metadata, inferer=recorder)
    prediction = custom.predict(phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz")
    assert len(recorder.seen) == 1 and np.allclose(prediction.probabilities[prediction.probabilities > 0], 1.0, atol=1e-4)
