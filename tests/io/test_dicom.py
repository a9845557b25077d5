"""DICOM series in (geometry identical to the NIfTI path) and DICOM SEG out (re-read voxel for voxel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from lesionseg.errors import InputError
from lesionseg.io.dicom import find_series, load_series, native_to_frames, select_series, write_dicom_seg
from lesionseg.io.nifti import load_image
from tests.dicom_helpers import write_dicom_series


@pytest.fixture(scope="module")
def dicom_folder(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dicom")
    write_dicom_series(phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz", folder, description="T2 SAG")
    write_dicom_series(phantom_dataset / "sub-001/anat/sub-001_PSIR.nii.gz", folder, description="PSIR AX")
    return folder


def test_series_are_found_and_selected(dicom_folder: Path) -> None:
    series = find_series(dicom_folder)
    assert sorted(s.description for s in series) == ["PSIR AX", "T2 SAG"]
    assert [s.description for s in select_series(series, description="t2")] == ["T2 SAG"]
    uid = series[0].uid
    assert [s.uid for s in select_series(series, uid=uid)] == [uid]
    with pytest.raises(InputError, match="no series with description matching 'FLAIR'"):
        select_series(series, description="FLAIR")


@pytest.mark.parametrize("description, nifti", [("T2 SAG", "sub-001_T2w"), ("PSIR AX", "sub-001_PSIR")])
def test_dicom_geometry_matches_the_nifti_path(dicom_folder: Path, phantom_dataset: Path, description: str, nifti: str) -> None:
    series = select_series(find_series(dicom_folder), description=description)[0]
    from_dicom = load_series(series)
    from_nifti = load_image(phantom_dataset / "sub-001/anat" / f"{nifti}.nii.gz")
    assert from_dicom.data.shape == from_nifti.data.shape
    np.testing.assert_allclose(from_dicom.affine, from_nifti.affine, atol=1e-3)
    expected = np.trunc(from_nifti.data) if description == "PSIR AX" else from_nifti.data  # int16 cast in the writer
    np.testing.assert_array_equal(from_dicom.data, expected)


def test_missing_slice_is_refused(dicom_folder: Path, tmp_path: Path) -> None:
    series = select_series(find_series(dicom_folder), description="T2 SAG")[0]
    for index, path in enumerate(series.files):
        if index != len(series.files) // 2:
            (tmp_path / path.name).write_bytes(path.read_bytes())
    with pytest.raises(InputError, match="unevenly spaced"):
        load_series(find_series(tmp_path)[0])


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no DICOM series"):
        find_series(tmp_path)


def test_dicom_seg_round_trip(dicom_folder: Path, tmp_path: Path) -> None:
    import highdicom as hd

    series = select_series(find_series(dicom_folder), description="T2 SAG")[0]
    image = load_series(series)
    native_shape = image.geometry.shape
    rng = np.random.default_rng(0)
    lesion = (rng.random(native_shape) > 0.995).astype(np.uint8)
    cord = np.zeros(native_shape, dtype=np.uint8)
    cord[2:5, 10:20, :] = 1
    path = write_dicom_seg(series, {"lesion": lesion, "cord": cord}, tmp_path / "seg.dcm", software_version="0.1.0")
    seg = hd.seg.segread(path)
    source = pydicom.dcmread(series.files[0])
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.PatientID == source.PatientID
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["lesion", "cord"]
    referenced = {ref.ReferencedSOPInstanceUID for ref in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {pydicom.dcmread(f).SOPInstanceUID for f in series.files}
    volume = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[pydicom.dcmread(f).SOPInstanceUID for f in series.files],
        segment_numbers=[1, 2],
    )
    np.testing.assert_array_equal(volume[..., 0], native_to_frames(lesion))
    np.testing.assert_array_equal(volume[..., 1], native_to_frames(cord))
