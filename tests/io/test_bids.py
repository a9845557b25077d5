"""BIDS discovery (sessions, labels, contrasts) and subject-level splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lesionseg.errors import InputError
from lesionseg.io.bids import discover, split_subjects
from tests.conftest import write_nifti


def _touch_nifti(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_nifti(path, np.zeros((2, 2, 2), np.uint8))


def _make_tree(root: Path) -> None:
    for subject in ("sub-01", "sub-02"):
        _touch_nifti(root / subject / "anat" / f"{subject}_T2w.nii.gz")
        _touch_nifti(root / "derivatives/labels" / subject / "anat" / f"{subject}_T2w_lesion-manual.nii.gz")
    _touch_nifti(root / "derivatives/labels/sub-01/anat/sub-01_T2w_seg-manual.nii.gz")
    _touch_nifti(root / "sub-03/ses-01/anat/sub-03_ses-01_acq-sag_T2w.nii.gz")
    _touch_nifti(root / "derivatives/labels/sub-03/ses-01/anat/sub-03_ses-01_acq-sag_T2w_seg-manual.nii.gz")
    _touch_nifti(root / "sub-03/ses-01/anat/sub-03_ses-01_T1w.nii.gz")
    _touch_nifti(root / "sub-01/anat/.sub-01_T2w.nii.gz.part.nii.gz")  # an unfinished write: ignored


def test_discover_finds_images_sessions_and_labels(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    images = discover(tmp_path, ["T2w"])
    assert [i.stem for i in images] == ["sub-01_T2w", "sub-02_T2w", "sub-03_ses-01_acq-sag_T2w"]
    first, second, third = images
    assert first.lesion is not None and first.cord is not None
    assert second.lesion is not None and second.cord is None
    assert third.session == "ses-01" and third.lesion is None and third.cord is not None
    assert {i.contrast for i in discover(tmp_path, ["T2w", "T1w"])} == {"T2w", "T1w"}


def test_discover_custom_suffix(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    _touch_nifti(tmp_path / "derivatives/labels/sub-02/anat/sub-02_T2w_lesion-expert.nii.gz")
    images = discover(tmp_path, ["T2w"], lesion_suffix="lesion-expert")
    assert [i.lesion is not None for i in images] == [False, True, False]


def test_discover_refuses_a_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        discover(tmp_path / "nothing")


def test_split_is_by_subject_reproducible_and_disjoint(phantom_dataset: Path) -> None:
    images = discover(phantom_dataset, ["T2w", "T1w", "PSIR"])
    split = split_subjects(images, val_fraction=0.25, test_fraction=0.25, seed=3)
    parts = [{i.subject for i in part} for part in (split.train, split.val, split.test)]
    assert all(parts)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(len(p) for p in (split.train, split.val, split.test)) == len(images)
    for part in (split.train, split.val, split.test):  # every contrast of a subject stays together
        assert len(part) == 3 * len({i.subject for i in part})
    assert split_subjects(images, val_fraction=0.25, test_fraction=0.25, seed=3) == split
    other_seeds = {split_subjects(images, val_fraction=0.25, test_fraction=0.25, seed=s).test for s in range(8)}
    assert len(other_seeds) > 1


def test_split_keeps_a_training_subject() -> None:
    from lesionseg.io.bids import BidsImage

    images = [BidsImage(f"sub-{i}", None, "T2w", Path(f"sub-{i}_T2w.nii.gz"), None, None) for i in range(2)]
    split = split_subjects(images, val_fraction=0.5, test_fraction=0.4, seed=0)
    assert len(split.train) >= 1


def test_bids_names_are_taken_apart_and_given_derivative_names() -> None:
    from lesionseg.io.bids import parse_bids_name, source_stem

    name = parse_bids_name(Path("/data/sub-01/ses-2/anat/sub-01_ses-2_acq-MToff_MTS.nii.gz"))
    assert name is not None and name.entities == (("sub", "01"), ("ses", "2"), ("acq", "MToff")) and name.suffix == "MTS"
    assert name.folder == Path("sub-01/ses-2/anat")
    lesion = name.derivative("lesionseg", ".nii.gz")
    assert lesion == "sub-01_ses-2_acq-MToff_label-lesion_desc-MTS_mask.nii.gz"
    assert name.derivative("seg", ".json") == "sub-01_ses-2_acq-MToff_label-SC_desc-MTS_mask.json"
    assert name.derivative("lesions-labeled", ".tsv") == "sub-01_ses-2_acq-MToff_desc-MTSlesions_dseg.tsv"
    assert name.derivative("lesions", ".csv") is None  # no BIDS name: keeps its lesionseg name
    assert source_stem(lesion) == "sub-01_ses-2_acq-MToff_MTS" and source_stem("t2_lesionseg.nii.gz") is None
    # outside a datatype folder the outputs still go to anat
    assert parse_bids_name(Path("sub-01_T2w.nii")).folder == Path("sub-01/anat")


@pytest.mark.parametrize("file_name", ["t2.nii.gz", "sub-01_T2w_seg-manual.nii.gz", "ses-1_sub-01_T2w.nii.gz",
                                       "sub-01_acq-a_b_T2w.nii.gz", "sub-0.1_T2w.nii.gz"])
def test_names_that_are_not_bids_are_refused(file_name: str) -> None:
    from lesionseg.io.bids import parse_bids_name

    assert parse_bids_name(Path(file_name)) is None
