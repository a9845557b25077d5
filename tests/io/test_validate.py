"""Each bad input raises InputError with one line naming the file and the cause."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lesionseg.errors import InputError
from lesionseg.io.nifti import load_image, load_label_for
from tests.conftest import write_nifti


def _volume() -> np.ndarray:
    return np.random.default_rng(0).normal(100, 10, size=(6, 7, 8)).astype(np.float32)


def _expect(path: Path, cause: str, *, kind: str = "image") -> None:
    with pytest.raises(InputError) as info:
        load_image(path, kind=kind)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert cause in message


def test_missing_file(tmp_path: Path) -> None:
    _expect(tmp_path / "absent.nii.gz", "no such file")


def test_truncated_gzip(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).normal(size=(40, 40, 40)).astype(np.float32)
    path = write_nifti(tmp_path / "full.nii.gz", noise)
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    _expect(truncated, "truncated or corrupt")


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "garbage.nii.gz"
    path.write_bytes(gzip.compress(b"this is not a nifti header" * 20))
    _expect(path, "not a readable NIfTI")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.nii"
    path.write_bytes(b"")
    _expect(path, "not a readable NIfTI")


def test_two_dimensional_image(tmp_path: Path) -> None:
    _expect(write_nifti(tmp_path / "slice.nii.gz", _volume()[:, :, 0]), "2D image")


def test_four_dimensional_image_with_several_volumes(tmp_path: Path) -> None:
    _expect(write_nifti(tmp_path / "dwi.nii.gz", np.stack([_volume()] * 3, axis=-1)), "3 volumes")


def test_nan_voxels(tmp_path: Path) -> None:
    data = _volume()
    data[1, 2, 3] = np.nan
    data[2, 2, 2] = np.inf
    _expect(write_nifti(tmp_path / "nan.nii.gz", data), "2 voxel(s) are NaN or infinite")


@pytest.mark.parametrize("pixdim", [0.0, -1.0])
def test_zero_or_negative_spacing(tmp_path: Path, pixdim: float) -> None:
    image = nib.Nifti1Image(_volume(), None)
    image.header["pixdim"][1:4] = [1.0, pixdim, 1.0]
    image.header["qform_code"] = 0
    image.header["sform_code"] = 0
    path = tmp_path / "spacing.nii"
    nib.save(image, path)
    _expect(path, "zero or negative")


def test_constant_image(tmp_path: Path) -> None:
    _expect(write_nifti(tmp_path / "blank.nii.gz", np.zeros((4, 5, 6), dtype=np.int16)), "image is constant")


def test_complex_voxels(tmp_path: Path) -> None:
    _expect(write_nifti(tmp_path / "complex.nii", _volume().astype(np.complex64)), "complex voxel type")


def test_label_with_other_values(tmp_path: Path) -> None:
    label = np.zeros((6, 7, 8), dtype=np.uint8)
    label[1, 1, 1], label[2, 2, 2] = 1, 5
    _expect(write_nifti(tmp_path / "multiclass.nii.gz", label), "values other than 0 and 1 (5)", kind="label")


def test_empty_label_is_valid(tmp_path: Path) -> None:
    label = load_image(write_nifti(tmp_path / "empty.nii.gz", np.zeros((3, 3, 3), np.uint8)), kind="label")
    assert label.data.sum() == 0 and label.data.dtype == np.uint8


def test_label_on_another_grid_shape(tmp_path: Path) -> None:
    image = load_image(write_nifti(tmp_path / "img.nii.gz", _volume()))
    label_path = write_nifti(tmp_path / "lab.nii.gz", np.zeros((6, 7, 9), np.uint8))
    with pytest.raises(InputError, match=r"lab\.nii\.gz: label shape \(6, 7, 9\) differs from image img\.nii\.gz"):
        load_label_for(image, label_path)


def test_label_on_another_grid_affine(tmp_path: Path) -> None:
    image = load_image(write_nifti(tmp_path / "img.nii.gz", _volume()))
    label_path = write_nifti(tmp_path / "lab.nii.gz", np.zeros((6, 7, 8), np.uint8), np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(InputError, match="label affine differs from image img.nii.gz"):
        load_label_for(image, label_path)


def test_not_a_nifti_name(tmp_path: Path) -> None:
    path = tmp_path / "scan.mha"
    path.write_bytes(b"x")
    _expect(path, "not a NIfTI file name")
