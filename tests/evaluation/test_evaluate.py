"""evaluate_folder pairs predictions with ground truth by stem and reports failures without stopping."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lesionseg.errors import InputError
from lesionseg.evaluation.evaluate import evaluate_folder


def _save(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.uint8), np.diag([1.0, 1.0, 2.0, 1.0]) if affine is None else affine), path)


def test_pairs_by_stem_and_summarises(tmp_path: Path) -> None:
    gt_root, pred_root = tmp_path / "gt", tmp_path / "pred"
    lesion = np.zeros((8, 8, 8))
    lesion[2:4, 2:4, 2:4] = 1
    _save(gt_root / "derivatives/labels/sub-01/anat/sub-01_T2w_lesion-manual.nii.gz", lesion)
    _save(gt_root / "derivatives/labels/sub-02/anat/sub-02_T2w_lesion-manual.nii.gz", np.zeros((8, 8, 8)))
    _save(gt_root / "derivatives/labels/sub-03/anat/sub-03_T2w_lesion-manual.nii.gz", lesion)
    _save(pred_root / "sub-01/anat/sub-01_T2w_lesionseg.nii.gz", lesion)
    _save(pred_root / "sub-02/anat/sub-02_T2w_lesionseg.nii.gz", np.zeros((8, 8, 8)))
    _save(pred_root / "sub-03_T2w_lesionseg.nii.gz", lesion, affine=np.eye(4))  # wrong grid

    report = evaluate_folder(pred_root, gt_root, tmp_path / "report")
    by_stem = {image.stem: image for image in report.images}
    assert by_stem["sub-01_T2w"].metrics.dice == 1.0
    assert by_stem["sub-02_T2w"].metrics.dice == 1.0  # empty vs empty
    assert by_stem["sub-03_T2w"].metrics is None and "affine differs" in by_stem["sub-03_T2w"].error
    assert by_stem["sub-01_T2w"].subject == "sub-01" and by_stem["sub-01_T2w"].contrast == "T2w"
    assert report.summary["dice"]["mean"] == 1.0 and report.summary["dice"]["n"] == 2

    payload = json.loads((tmp_path / "report/metrics.json").read_text())
    assert len(payload["images"]) == 3
    assert (tmp_path / "report/metrics.csv").read_text().startswith("stem,subject,contrast,dice")


def test_missing_prediction_is_reported(tmp_path: Path) -> None:
    lesion = np.zeros((4, 4, 4))
    _save(tmp_path / "gt/sub-01_T2w_lesion-manual.nii.gz", lesion)
    _save(tmp_path / "gt/sub-02_T2w_lesion-manual.nii.gz", lesion)
    _save(tmp_path / "pred/sub-01_T2w_lesionseg.nii.gz", lesion)
    report = evaluate_folder(tmp_path / "pred", tmp_path / "gt")
    assert [i.error.endswith("no prediction") for i in report.images] == [False, True]


def test_no_pairs_is_an_error(tmp_path: Path) -> None:
    _save(tmp_path / "gt/sub-01_T2w_lesion-manual.nii.gz", np.zeros((4, 4, 4)))
    (tmp_path / "pred").mkdir()
    with pytest.raises(InputError, match="no prediction"):
        evaluate_folder(tmp_path / "pred", tmp_path / "gt")


def test_lesion_free_images_are_summarised_apart(tmp_path: Path) -> None:
    lesion = np.zeros((8, 8, 8))
    lesion[2:4, 2:4, 2:4] = 1
    false = np.zeros((8, 8, 8))
    false[6, 6, 6] = 1
    _save(tmp_path / "gt/sub-01_T2w_lesion-manual.nii.gz", lesion)
    _save(tmp_path / "pred/sub-01_T2w_lesionseg.nii.gz", lesion)
    for subject, prediction in (("02", false), ("03", np.zeros((8, 8, 8)))):  # two healthy subjects, one false lesion
        _save(tmp_path / f"gt/sub-{subject}_T2w_lesion-manual.nii.gz", np.zeros((8, 8, 8)))
        _save(tmp_path / f"pred/sub-{subject}_T2w_lesionseg.nii.gz", prediction)
    summary = evaluate_folder(tmp_path / "pred", tmp_path / "gt").summary
    assert summary["dice_images_with_lesions"] == {"mean": 1.0, "median": 1.0, "n": 1}
    assert summary["lesion_free_with_false_lesion"]["mean"] == 0.5 and summary["lesion_free_with_false_lesion"]["n"] == 2
    assert summary["lesion_free_false_lesions"]["mean"] == 0.5
    assert summary["lesion_free_false_volume_mm3"]["mean"] == 1.0  # one 1 x 1 x 2 mm voxel over two images
