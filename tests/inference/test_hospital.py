"""Hospital use: DICOM in -> NIfTI + DICOM SEG + lesion table + HTML report out; TTA, ensembles, uncertainty,
minimum lesion size; resuming a killed batch with --skip-existing."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from lesionseg.inference.batch import BatchOptions, run_batch
from lesionseg.inference.predictor import Predictor
from lesionseg.inference.segmenter import InferenceSettings
from lesionseg.io.dicom import find_series, native_to_frames
from lesionseg.io.nifti import load_image
from tests.dicom_helpers import write_dicom_series


@pytest.fixture(scope="module")
def dicom_input(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hospital") / "PATIENT1"
    write_dicom_series(phantom_dataset / "sub-002/anat/sub-002_T2w.nii.gz", folder, description="T2 SAG")
    return folder


def test_dicom_in_gives_nifti_seg_table_and_report(trained_tiny_model: Path, phantom_dataset: Path, dicom_input: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lesionseg.cli.main import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["infer", str(dicom_input), "--model", str(trained_tiny_model), "--out", str(out), "--format", "dicom-seg",
              "--threshold", "0.2", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    stem = find_series(dicom_input)[0].name  # the description and a hash of patient, study and series
    assert stem.startswith("T2_SAG_") and len(stem) == len("T2_SAG_") + 10
    nifti_mask = out / f"{stem}_lesionseg.nii.gz"
    for name in (f"{stem}_seg.dcm", f"{stem}_lesions.csv", f"{stem}_lesions.json", f"{stem}_report.html", "index.html", "summary.csv"):
        assert (out / name).is_file(), name

    # the DICOM path gives the same mask, in world space, as the NIfTI path
    predictor = Predictor.from_model(trained_tiny_model, device="cpu").with_settings(InferenceSettings(threshold=0.2))
    from_nifti = predictor.predict(phantom_dataset / "sub-002/anat/sub-002_T2w.nii.gz")
    from_dicom = load_image(nifti_mask, kind="label")
    assert from_dicom.data.shape == from_nifti.mask.shape
    np.testing.assert_allclose(from_dicom.affine, from_nifti.affine, atol=1e-3)
    np.testing.assert_array_equal(from_dicom.data, from_nifti.mask)

    # the SEG holds the same mask, frame by frame
    import highdicom as hd

    series = find_series(dicom_input)[0]
    seg = hd.seg.segread(out / f"{stem}_seg.dcm")
    uids = [pydicom.dcmread(f).SOPInstanceUID for f in series.files]
    frames = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1])[..., 0]
    native = np.asanyarray(nib.load(nifti_mask).dataobj)
    np.testing.assert_array_equal(frames, native_to_frames(native))

    table = json.loads((out / f"{stem}_lesions.json").read_text())
    assert table["count"] == len(table["lesions"])
    assert table["total_volume_mm3"] == pytest.approx(float(native.sum()) * float(np.prod(nib.load(nifti_mask).header.get_zooms()[:3])), rel=1e-3)
    page = (out / f"{stem}_report.html").read_text()
    assert "Research use, not a diagnostic device" in page and "PHANTOM" not in page  # no patient identifiers


def test_dicom_seg_for_nifti_input_is_a_warning(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    predictor = Predictor.from_model(trained_tiny_model, device="cpu")
    records = run_batch(predictor, [phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz"], tmp_path, options=BatchOptions(dicom_seg=True))
    assert records[0].status == "ok" and "not a DICOM series" in records[0].warning


def test_tta_ensemble_and_uncertainty(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    image = phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz"
    single = Predictor.from_model(trained_tiny_model, device="cpu").predict(image)
    assert single.variance is None
    twice = Predictor.from_model([trained_tiny_model, trained_tiny_model], device="cpu").predict(image)
    np.testing.assert_allclose(twice.probabilities, single.probabilities, atol=1e-5)
    assert twice.variance is not None and float(twice.variance.max()) < 1e-6
    flipped = Predictor.from_model(trained_tiny_model, device="cpu", tta=True)
    records = run_batch(flipped, [image], tmp_path, options=BatchOptions(uncertainty=True))
    uncertainty = nib.load(tmp_path / "sub-001_T2w_lesionseg-uncertainty.nii.gz")
    assert records[0].status == "ok" and uncertainty.get_data_dtype() == np.float32
    assert float(uncertainty.get_fdata().max()) > 0  # flips disagree somewhere


def test_tta_by_the_models_config_and_overridden_by_the_user(trained_tiny_model: Path, phantom_dataset: Path) -> None:
    image = phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz"
    plain = Predictor.from_model(trained_tiny_model, device="cpu")
    by_config = copy.copy(plain)
    by_config.config = plain.config.model_copy(update={"infer": plain.config.infer.model_copy(update={"tta": True})})
    assert not plain.tta and by_config.tta
    flipped = by_config.predict(image)
    assert flipped.variance is not None  # the 8 mirrorings ran
    np.testing.assert_allclose(flipped.probabilities, Predictor.from_model(trained_tiny_model, device="cpu", tta=True)
                               .predict(image).probabilities, atol=1e-5)
    switched_off = by_config.with_settings(InferenceSettings(tta=False))
    assert not switched_off.tta and switched_off.predict(image).variance is None
    loaded_with = Predictor.from_model(trained_tiny_model, device="cpu", tta=False)
    assert not loaded_with.with_settings(InferenceSettings()).tta
    assert loaded_with.with_settings(InferenceSettings(tta=True)).tta


def test_minimum_lesion_size(trained_tiny_model: Path, phantom_dataset: Path) -> None:
    predictor = Predictor.from_model(trained_tiny_model, device="cpu")
    image = phantom_dataset / "sub-002/anat/sub-002_T2w.nii.gz"
    everything = predictor.with_settings(InferenceSettings(threshold=0.05)).predict(image).mask.sum()
    nothing = predictor.with_settings(InferenceSettings(threshold=0.05, min_lesion_mm3=1e9)).predict(image).mask.sum()
    assert everything > 0 and nothing == 0
    assert predictor.infer.threshold == predictor.config.infer.threshold  # the loaded model is unchanged


def test_killed_batch_resumes_with_skip_existing(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for index in range(8):
        shutil.copy(phantom_dataset / "sub-003/anat/sub-003_T2w.nii.gz", inputs / f"scan{index}_T2w.nii.gz")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "lesionseg.cli.main", "infer", str(inputs), "--model", str(trained_tiny_model), "--out", str(out), "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*_lesionseg.nii.gz"))) < 2:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    records = [json.loads(p.read_text()) for p in out.glob("*_lesionseg-record.json")]
    done_before = sum(1 for record in records if record["status"] == "done")
    assert 1 <= done_before < 8, "the kill should land mid-batch"
    for mask in out.glob("*_lesionseg.nii.gz"):
        nib.load(mask).get_fdata()  # every visible output is complete
    finished = subprocess.run([*command, "--skip-existing"], capture_output=True, encoding="utf-8", errors="replace", timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    masks = sorted(out.glob("*_lesionseg.nii.gz"))
    assert len(masks) == 8
    for mask in masks:
        nib.load(mask).get_fdata()
    assert not list(out.rglob(".*.part*"))
    assert f"{done_before} skipped" in finished.stderr  # a scan is skipped only when its record says done
    assert f"{8 - done_before} ok" in finished.stderr  # partial ones are redone


def test_levels_beside_the_input_fill_the_lesion_table(tmp_path: Path) -> None:
    from lesionseg.config import load_config
    from tests.conftest import CONFIGS, real_path
    from tests.inference.test_cascade import _ConstantLogits

    shutil.copy(real_path("pam50-small/PAM50_small_t2.nii.gz"), tmp_path / "pam_T2w.nii.gz")
    shutil.copy(real_path("pam50-small/PAM50_small_levels.nii.gz"), tmp_path / "pam_T2w_levels.nii.gz")
    everywhere = Predictor(_ConstantLogits(10.0), load_config(CONFIGS / "tiny.yaml"), device="cpu")
    records = run_batch(everywhere, [tmp_path], tmp_path / "out", options=BatchOptions(levels_suffix="levels"))
    assert [r.status for r in records] == ["ok"]  # the level map is not taken as a scan
    table = json.loads((tmp_path / "out/pam_T2w_lesions.json").read_text())
    assert table["lesions"][0]["vertebral_level"].startswith(("C", "T", "L"))
    assert table["per_level"] and table["level_source"] == "level map"
    labeled = nib.load(tmp_path / "out/pam_T2w_lesions-labeled.nii.gz")
    mask = nib.load(tmp_path / "out/pam_T2w_lesionseg.nii.gz")
    assert labeled.shape == mask.shape and np.allclose(labeled.affine, mask.affine)
    values = np.asarray(labeled.dataobj)
    assert values.dtype == np.uint16 and int(values.max()) == table["count"]
    assert np.array_equal(values > 0, np.asarray(mask.dataobj) > 0)


def test_point_labels_beside_the_input_are_read_in_the_kind_given(tmp_path: Path) -> None:
    """SCT's errsm30 T2w with its vertebral mid-height labels (C3, C5); a copy whose labels are taken for a level map
    fails with a one-line error and the other scan still runs."""
    from lesionseg.config import load_config
    from lesionseg.analysis.levels import LEVEL_FILE_KINDS
    from tests.conftest import CONFIGS, real_path
    from tests.inference.test_cascade import _ConstantLogits

    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("a_T2w", "b_T2w"):
        shutil.copy(real_path("sct-errsm30/t2/t2.nii.gz"), scans / f"{name}.nii.gz")
    shutil.copy(real_path("sct-errsm30/t2/labels.nii.gz"), scans / "a_T2w_labels.nii.gz")
    everywhere = Predictor(_ConstantLogits(10.0), load_config(CONFIGS / "tiny.yaml"), device="cpu")
    records = run_batch(everywhere, [scans], tmp_path / "out",
                        options=BatchOptions(levels_suffix="labels", levels_kind="vertebrae"))
    assert [r.status for r in records] == ["ok", "ok"]
    table = json.loads((tmp_path / "out/a_T2w_lesions.json").read_text())
    assert table["level_source"] == LEVEL_FILE_KINDS["vertebrae"]
    assert {row["vertebral_level"] for row in table["per_level"]} == {"C3", "C4", "C5"}
    assert json.loads((tmp_path / "out/b_T2w_lesions.json").read_text())["level_source"] == ""
    records = run_batch(everywhere, [scans], tmp_path / "out-map", options=BatchOptions(levels_suffix="labels"))
    assert [r.status for r in records] == ["failed", "ok"]
    assert "a_T2w_labels.nii.gz: point labels" in records[0].error and "\n" not in records[0].error


def test_outputs_in_the_input_folder_are_not_inputs(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    shutil.copy(phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz", tmp_path / "scan_T2w.nii.gz")
    predictor = Predictor.from_model(trained_tiny_model, device="cpu")
    first = run_batch(predictor, [tmp_path], tmp_path)
    second = run_batch(predictor, [tmp_path], tmp_path)
    assert [r.status for r in first] == ["ok"] and [r.status for r in second] == ["ok"]
    assert (tmp_path / "scan_T2w.nii.gz").is_file() and not list(tmp_path.glob("*_lesionseg_lesionseg*"))
