"""Inference writes masks on each input's native grid; bad files are reported and skipped."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lesionseg.config import load_config
from lesionseg.errors import ModelError
from lesionseg.inference.batch import run_batch
from lesionseg.inference.predictor import Predictor
from lesionseg.networks.factory import build_network
from tests.conftest import CONFIGS, REAL_SCANS, real_path


@pytest.fixture(scope="module")
def untrained_predictor() -> Predictor:
    config = load_config(CONFIGS / "tiny.yaml")
    return Predictor(build_network(config.model), config, device="cpu")


@pytest.mark.parametrize("image_rel", [s[0] for s in REAL_SCANS], ids=[s[0].split("/")[-1] for s in REAL_SCANS])
def test_outputs_are_on_the_native_grid_of_real_scans(untrained_predictor: Predictor, image_rel: str, tmp_path: Path) -> None:
    path = real_path(image_rel)
    prediction = untrained_predictor.predict(path)
    mask_path = prediction.save(tmp_path / "mask.nii.gz")
    soft_path = prediction.save(tmp_path / "soft.nii.gz", soft=True)
    source = nib.load(path)
    for written in (nib.load(mask_path), nib.load(soft_path)):
        assert written.shape == source.shape[:3]
        np.testing.assert_array_equal(written.affine, source.affine)
        assert int(written.header["sform_code"]) == int(source.header["sform_code"])
        assert int(written.header["qform_code"]) == int(source.header["qform_code"])
    assert nib.load(mask_path).get_data_dtype() == np.uint8
    assert set(prediction.seconds) >= {"load", "preprocess", "network", "postprocess", "write"}


def test_prediction_follows_the_image_in_any_orientation(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    """The same scan stored in two axis orders gives the same mask in world space."""
    predictor = Predictor.from_model(trained_tiny_model, device="cpu")
    source = phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz"
    image = nib.load(source)
    flipped = nib.as_closest_canonical(image)  # same world data, other axis order
    flipped_path = tmp_path / "canonical.nii.gz"
    nib.save(flipped, flipped_path)
    a = predictor.predict(source)
    b = predictor.predict(flipped_path)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)


def test_batch_skips_bad_files_and_writes_summary(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for subject in ("sub-001", "sub-002"):
        (inputs / f"{subject}_T2w.nii.gz").write_bytes((phantom_dataset / subject / "anat" / f"{subject}_T2w.nii.gz").read_bytes())
    (inputs / "broken_T2w.nii.gz").write_bytes(b"not a nifti")
    predictor = Predictor.from_model(trained_tiny_model, device="cpu")
    records = run_batch(predictor, [inputs, tmp_path / "missing.nii.gz"], tmp_path / "out", soft=True)
    status = {Path(r.input).name: r.status for r in records}
    assert status == {"missing.nii.gz": "failed", "broken_T2w.nii.gz": "failed", "sub-001_T2w.nii.gz": "ok", "sub-002_T2w.nii.gz": "ok"}
    broken = next(r for r in records if r.input.endswith("broken_T2w.nii.gz"))
    assert "broken_T2w.nii.gz" in broken.error and "\n" not in broken.error
    for subject in ("sub-001", "sub-002"):
        assert (tmp_path / "out" / f"{subject}_T2w_lesionseg.nii.gz").is_file()
        assert (tmp_path / "out" / f"{subject}_T2w_lesionseg-soft.nii.gz").is_file()
    rows = list(csv.DictReader((tmp_path / "out/summary.csv").open()))
    assert len(rows) == 4 and {row["status"] for row in rows} == {"ok", "failed"}


def test_bids_input_skips_derivatives(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    predictor = Predictor.from_model(trained_tiny_model, device="cpu")
    records = run_batch(predictor, [phantom_dataset / "sub-003"], tmp_path / "out")
    assert len(records) == 3 and all(r.status == "ok" for r in records)  # T2w, T1w, PSIR; no labels
    assert (tmp_path / "out/anat/sub-003_T2w_lesionseg.nii.gz").is_file()


def test_model_with_other_architecture_is_refused(trained_tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(trained_tiny_model, other)
    config = (other / "config.yaml").read_text().replace("- 8\n  - 16\n  - 32\n", "- 4\n  - 8\n  - 16\n")
    (other / "config.yaml").write_text(config)
    with pytest.raises(ModelError, match="weights do not fit the architecture"):
        Predictor.from_model(other, device="cpu")
