"""Other engines and precisions keep the reference path's Dice (within 0.005): ONNX Runtime (exported model) and
bf16 autocast on the CPU. The model is the tiny cord model (cord Dice about 0.75), so the masks are not empty.
The NumPy sliding window gives MONAI's numbers; the shipped default runs on ONNX Runtime without importing torch,
MONAI or TorchIO, with the masks of PyTorch on real scans."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lesionseg.api import load_segmenter
from lesionseg.cli.main import app
from lesionseg.config import InferConfig
from lesionseg.errors import ModelError
from lesionseg.evaluation.metrics import voxel_metrics
from lesionseg.inference.engines import TorchEngine
from lesionseg.inference.inferers import SlidingWindow
from lesionseg.inference.predictor import Predictor
from lesionseg.inference.segmenter import InferenceSettings
from lesionseg.io.checkpoint import verify_model_folder
from lesionseg.io.nifti import load_image
from tests.conftest import real_path

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
    reference = Predictor.from_model(exported, device="cpu", engine="torch")
    onnx = Predictor.from_model(exported, device="cpu", engine="onnxruntime")
    assert Predictor.from_model(exported, device="cpu").network.name == "onnxruntime"  # what auto picks
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


@pytest.mark.parametrize("mode", ["gaussian", "constant"])
def test_sliding_window_gives_monai_numbers(mode: str) -> None:
    """An image larger than the window on two axes and smaller on one (padded), through a random network."""
    from monai.inferers import sliding_window_inference

    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, 1, 3, padding=1))
    image = np.random.default_rng(0).normal(size=(37, 70, 20)).astype(np.float32)
    config = InferConfig(overlap=0.25, sw_batch_size=3, mode=mode)
    ours = SlidingWindow((32, 32, 32), config)(image, TorchEngine(network, torch.device("cpu")))
    with torch.inference_mode():
        batch = torch.from_numpy(image)[None, None]
        logits = sliding_window_inference(batch, roi_size=(32, 32, 32), sw_batch_size=3, predictor=network, overlap=0.25,
                                          mode=mode, padding_mode="constant", cval=float(batch.min()))
    np.testing.assert_allclose(ours, torch.sigmoid(logits)[0, 0].numpy(), atol=1e-5)


REAL_SCANS = ["sct-errsm30/t2/t2.nii.gz", "sct-errsm30/t2s/t2s.nii.gz", "../real-fullfov/sub-mt_acq-MToff_MTS.nii.gz"]


@pytest.mark.slow
def test_shipped_default_engines_give_the_same_masks_on_real_scans() -> None:
    onnx, reference = load_segmenter(device="cpu"), load_segmenter(device="cpu", engine="torch")
    assert {stage.network.name for stage in onnx.stages} == {"onnxruntime"}
    assert {stage.network.name for stage in reference.stages} == {"torch"}
    for name in REAL_SCANS:
        image = load_image(real_path(name))
        expected, got = reference.segment(image), onnx.segment(image)
        for mask, reference_mask in ((got.lesion_mask, expected.lesion_mask), (got.cord_mask, expected.cord_mask)):
            differing = int(np.count_nonzero(mask != reference_mask))
            assert differing <= max(1, 0.001 * int(reference_mask.sum())), f"{name}: {differing} voxels differ"


def test_inference_does_not_import_torch_monai_or_torchio(phantom_dataset: Path, tmp_path: Path) -> None:
    """`lesionseg infer` with the shipped default (ONNX Runtime) writes its outputs without importing them (nor
    scipy.signal, 0.9 s, which only a disc stage needs)."""
    scan = next(phantom_dataset.glob("sub-*/anat/*_T2w.nii.gz"))
    code = (
        "import json, sys\n"
        "from lesionseg.cli.main import app\n"
        f"app(['infer', {str(scan)!r}, '--out', {str(tmp_path)!r}], standalone_mode=False)\n"
        "print(json.dumps(sorted(m for m in ('torch', 'monai', 'torchio', 'scipy.signal') if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                            encoding="utf-8", errors="replace", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert len(list(tmp_path.glob("*_lesionseg.nii.gz"))) == 1


def test_a_replaced_onnx_file_is_refused(exported: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(exported, tmp_path / "model"))
    assert verify_model_folder(folder)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-100] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="model.onnx: SHA-256 differs"):
        verify_model_folder(folder)
