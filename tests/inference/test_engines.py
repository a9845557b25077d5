"""Other engines and precisions keep the reference path's Dice (within 0.005): ONNX Runtime (exported model) and
bf16 autocast on the CPU. The model is the tiny cord model (cord Dice about 0.75), so the masks are not empty."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lesionseg.cli.main import app
from lesionseg.errors import ModelError
from lesionseg.evaluation.metrics import voxel_metrics
from lesionseg.inference.predictor import Predictor
from lesionseg.inference.segmenter import InferenceSettings
from lesionseg.io.nifti import load_image

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(trained_tiny_cord_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(shutil.copytree(trained_tiny_cord_model, tmp_path_factory.mktemp("onnx") / "model"))
    result = CliRunner().invoke(app, ["export", str(folder), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    return folder


def _scans(phantom_dataset: Path) -> list[Path]:
    return sorted(phantom_dataset.glob("sub-00*/anat/sub-00*_T2w.nii.gz"))


def _dice(predictor: Predictor, scan: Path, phantom_dataset: Path) -> tuple[float, np.ndarray]:
    """Cord Dice of ``predictor`` on ``scan`` against the phantom's ground truth, and the probabilities."""
    prediction = predictor.predict(scan)
    truth = load_image(next(phantom_dataset.rglob(scan.name.replace(".nii.gz", "_seg-manual.nii.gz"))), kind="label")
    return voxel_metrics(prediction.mask, truth.data, truth.spacing_mm).dice, prediction.probabilities


def test_onnxruntime_keeps_dice(exported: Path, phantom_dataset: Path) -> None:
    reference = Predictor.from_model(exported, device="cpu")
    onnx = Predictor.from_model(exported, device="cpu", engine="onnxruntime")
    for scan in _scans(phantom_dataset):
        expected, expected_probabilities = _dice(reference, scan, phantom_dataset)
        got, probabilities = _dice(onnx, scan, phantom_dataset)
        assert expected > 0.5
        np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-4)
        assert abs(got - expected) <= 0.005


def test_onnx_engine_without_export_is_one_line_error(trained_tiny_model: Path) -> None:
    with pytest.raises(ModelError, match="lesionseg export"):
        Predictor.from_model(trained_tiny_model, device="cpu", engine="onnxruntime")


def test_cli_infers_with_onnxruntime(exported: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    scan = str(_scans(phantom_dataset)[0])
    result = CliRunner().invoke(app, ["infer", scan, "--model", str(exported), "--engine", "onnxruntime",
                                      "--out", str(tmp_path), "--no-report"])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*_lesionseg.nii.gz"))) == 1


def test_bf16_keeps_dice_within_0_005_of_fp32(trained_tiny_cord_model: Path, phantom_dataset: Path) -> None:
    reference = Predictor.from_model(trained_tiny_cord_model, device="cpu")
    fast = reference.with_settings(InferenceSettings(precision="bf16"))
    for scan in _scans(phantom_dataset):
        expected, expected_probabilities = _dice(reference, scan, phantom_dataset)
        got, probabilities = _dice(fast, scan, phantom_dataset)
        assert expected > 0.5
        assert not np.array_equal(probabilities, expected_probabilities)  # bf16 really ran
        assert abs(got - expected) <= 0.005


def test_memory_budget_processes_slabs_and_keeps_dice(trained_tiny_cord_model: Path, phantom_dataset: Path) -> None:
    reference = Predictor.from_model(trained_tiny_cord_model, device="cpu")
    for scan in _scans(phantom_dataset):
        shape = load_image(scan).data.shape
        budget = float(np.prod(shape) * Predictor.BYTES_PER_VOXEL / 2**20 / 2)
        budgeted = reference.with_settings(InferenceSettings(memory_budget_mb=budget))
        slabs = budgeted.slabs(shape, load_image(scan).affine)
        assert slabs is not None and len(slabs) >= 2
        covered = np.concatenate([np.arange(start, stop) for _, start, stop, _ in slabs])
        assert np.array_equal(covered, np.arange(shape[slabs[0][0]]))  # every slice exactly once
        expected, expected_probabilities = _dice(reference, scan, phantom_dataset)
        got, probabilities = _dice(budgeted, scan, phantom_dataset)
        assert abs(got - expected) <= 0.02
        assert np.abs(probabilities - expected_probabilities).mean() < 0.01
