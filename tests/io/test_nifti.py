"""Native-geometry round trips: canonical -> native must give back the input grid exactly."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lesionseg.io.nifti import as_loaded_image, contrast_from_name, load_image, load_label_for, save_mask
from lesionseg.synth.acquisition import ALL_AXCODES, reorient
from tests.conftest import REAL_SCANS, real_path


def _assert_same_header_geometry(written: Path, original: Path) -> None:
    out, ref = nib.load(written), nib.load(original)
    assert out.shape == ref.shape[:3]
    np.testing.assert_array_equal(out.affine, ref.affine)
    assert int(out.header["qform_code"]) == int(ref.header["qform_code"])
    assert int(out.header["sform_code"]) == int(ref.header["sform_code"])
    np.testing.assert_array_equal(out.header.get_sform(), ref.header.get_sform())
    np.testing.assert_allclose(out.header.get_qform(), ref.header.get_qform(), atol=1e-6)


@pytest.mark.parametrize("image_rel, mask_rel", REAL_SCANS, ids=[s[0].split("/")[-1] for s in REAL_SCANS])
def test_real_scan_round_trip_is_identical(image_rel: str, mask_rel: str, tmp_path: Path) -> None:
    image_path, mask_path = real_path(image_rel), real_path(mask_rel)
    scan = load_image(image_path)
    assert nib.aff2axcodes(scan.affine) == ("R", "A", "S")
    raw = np.asanyarray(nib.load(image_path).dataobj)
    np.testing.assert_array_equal(scan.geometry.to_native(scan.data), raw.astype(np.float32))

    mask = load_label_for(scan, mask_path)
    written = save_mask(mask.data, scan.geometry, tmp_path / "mask.nii.gz")
    _assert_same_header_geometry(written, image_path)
    raw_mask = np.asanyarray(nib.load(mask_path).dataobj)
    np.testing.assert_array_equal(np.asanyarray(nib.load(written).dataobj), (raw_mask > 0.5).astype(np.uint8))
    assert nib.load(written).get_data_dtype() == np.uint8


def test_canonical_arrays_agree_in_world_space() -> None:
    """The same world point has the same value in the canonical array as in the native one."""
    path = real_path("sct-errsm30/t2/t2.nii.gz")  # stored PSR
    scan = load_image(path)
    native = nib.load(path)
    raw = np.asanyarray(native.dataobj)
    ijk_native = np.array([10, 20, 30])
    world = native.affine @ np.append(ijk_native, 1)
    ijk_canonical = np.rint(np.linalg.inv(scan.affine) @ world)[:3].astype(int)
    assert scan.data[tuple(ijk_canonical)] == raw[tuple(ijk_native)]


@pytest.mark.parametrize("axcodes", ALL_AXCODES[::5])
def test_any_orientation_round_trips(axcodes: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 1000, size=(5, 6, 7)).astype(np.int16)
    affine = np.diag([0.5, 0.7, 3.0, 1.0])
    (stored,), stored_affine = reorient([data], affine, axcodes)
    path = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(stored, stored_affine), path)
    scan = load_image(path)
    np.testing.assert_array_equal(scan.data, data.astype(np.float32))  # canonical is the RAS original
    np.testing.assert_allclose(scan.affine, affine, atol=1e-5)
    written = save_mask(scan.data > 500, scan.geometry, tmp_path / "out.nii.gz")
    _assert_same_header_geometry(written, path)
    np.testing.assert_array_equal(nib.load(written).get_fdata() > 0, stored > 500)


def test_soft_mask_is_float32_in_unit_range(tmp_path: Path) -> None:
    path = tmp_path / "in.nii"
    nib.save(nib.Nifti1Image(np.arange(60, dtype=np.float32).reshape(3, 4, 5), np.diag([-1, 1, 2, 1])), path)
    scan = load_image(path)
    soft = scan.data / 59.0 * 1.5  # values above 1 must be clipped
    written = save_mask(soft, scan.geometry, tmp_path / "soft.nii.gz", soft=True)
    out = nib.load(written)
    assert out.get_data_dtype() == np.float32
    values = out.get_fdata()
    assert values.min() >= 0 and values.max() == pytest.approx(1.0)
    _assert_same_header_geometry(written, path)


def test_four_d_single_volume_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "one_volume.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4, 1), np.eye(4)), path)
    scan = load_image(path)
    assert scan.data.shape == (2, 3, 4)
    written = save_mask(scan.data > 5, scan.geometry, tmp_path / "mask.nii.gz")
    assert nib.load(written).shape == (2, 3, 4)


def test_save_mask_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.eye(4)), path)
    scan = load_image(path)
    save_mask(scan.data > 5, scan.geometry, tmp_path / "out" / "mask.nii.gz")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mask.nii.gz"]


@pytest.mark.parametrize(
    ("name", "contrast"),
    [("sub-01_T2w.nii.gz", "T2w"), ("sub-01_acq-medic_T2starw.nii", "T2starw"), ("sub-01_T2star.nii.gz", "T2starw"),
     ("sub-01_lesion.nii.gz", None), ("t2s.nii.gz", None)],
)
def test_the_bids_suffix_declares_the_contrast(name: str, contrast: str | None) -> None:
    assert contrast_from_name(name) == contrast  # the deprecated T2star is T2starw, whose lesion stage it gets


def test_a_declared_deprecated_contrast_is_renamed() -> None:
    """``--contrast T2star`` (or ``segment(..., contrast="T2star")``) is T2starw, as the file suffix is."""
    data = np.arange(64, dtype=np.float32).reshape(4, 4, 4)
    image = as_loaded_image(data, np.eye(4), contrast="T2star")
    assert image.contrast == "T2starw"
    assert as_loaded_image(image, contrast="PSIR").contrast == "PSIR"
