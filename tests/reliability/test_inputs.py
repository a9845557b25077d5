"""Plausible but wrong inputs: refused with one line before any work, or accepted with nothing lost
(docs/reliability.md, "Header and physics")."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lesionseg.errors import InputError
from lesionseg.inference.batch import BatchOptions, run_batch
from lesionseg.inference.predictor import Predictor
from lesionseg.io.nifti import load_image

GOOD = "sub-001/anat/sub-001_T2w.nii.gz"


@pytest.fixture(scope="module")
def predictor(trained_tiny_model: Path) -> Predictor:
    return Predictor.from_model(trained_tiny_model, device="cpu")


def _copy_with(source: Path, destination: Path, *, data: np.ndarray | None = None, zooms=None, codes=None, dtype=None) -> Path:  # noqa: ANN001
    image = nib.load(source)
    header = image.header.copy()
    values = np.asanyarray(image.dataobj) if data is None else data
    if dtype is not None:
        header.set_data_dtype(dtype)
    out = nib.Nifti1Image(values, image.affine, header)
    if zooms is not None:
        affine = image.affine.copy()
        affine[:3, :3] = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0) * np.asarray(zooms)
        out = nib.Nifti1Image(values, affine, header)
        out.set_qform(affine, code=1)
        out.set_sform(affine, code=1)
    if codes is not None:
        qform, sform = codes
        out.set_qform(image.affine if qform else None, code=qform)
        out.set_sform(image.affine if sform else None, code=sform)
    nib.save(out, destination)
    return destination


def test_no_orientation_is_refused_or_accepted_on_request(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    path = _copy_with(phantom_dataset / GOOD, tmp_path / "no_orientation_T2w.nii.gz", codes=(0, 0))
    with pytest.raises(InputError, match="no orientation in the header.*--accept-no-orientation"):
        load_image(path)
    refused = run_batch(predictor, [path], tmp_path / "out")
    assert refused[0].status == "failed" and str(path) in refused[0].error
    accepted = run_batch(predictor, [path], tmp_path / "out", options=BatchOptions(accept_no_orientation=True))
    assert accepted[0].status == "ok" and "taken as RAS" in accepted[0].warning
    only_qform = _copy_with(phantom_dataset / GOOD, tmp_path / "qform_only_T2w.nii.gz", codes=(1, 0))
    assert load_image(only_qform).warnings == ()


@pytest.mark.parametrize(("zooms", "why"), [
    ((0.0009, 0.0009, 0.003), "outside 0.05-20 mm"),  # metres
    ((30.0, 10.0, 10.0), "outside 0.05-20 mm"),  # a slab, or cm read as mm x 10
    ((0.01, 1.0, 1.0), "outside 0.05-20 mm"),
])
def test_implausible_voxel_sizes_are_refused_from_the_header(phantom_dataset: Path, tmp_path: Path, zooms, why) -> None:  # noqa: ANN001
    path = _copy_with(phantom_dataset / GOOD, tmp_path / "odd_T2w.nii.gz", zooms=zooms)
    with pytest.raises(InputError, match=why):
        load_image(path)


def test_working_grid_too_large_is_refused_before_allocation(predictor: Predictor, tmp_path: Path) -> None:
    affine = np.diag([19.0, 19.0, 19.0, 1.0])  # plausible per axis, but 64 voxels of 19 mm at 1 mm is 1216^3
    image = nib.Nifti1Image(np.random.default_rng(0).normal(100, 10, (64, 64, 64)).astype(np.float32), affine)
    image.set_qform(affine, code=1)
    nib.save(image, tmp_path / "big_T2w.nii.gz")
    records = run_batch(predictor, [tmp_path / "big_T2w.nii.gz"], tmp_path / "out")
    assert records[0].status == "failed" and "resampled to the model's" in records[0].error and "voxels (limit" in records[0].error


def test_duplicated_dicom_slice_is_refused(phantom_dataset: Path, tmp_path: Path) -> None:
    from lesionseg.io.dicom import find_series, load_series
    from tests.dicom_helpers import write_dicom_series

    folder = tmp_path / "dicom"
    write_dicom_series(phantom_dataset / GOOD, folder)
    files = sorted(folder.iterdir())
    import pydicom

    copy = pydicom.dcmread(files[3])
    copy.SOPInstanceUID = pydicom.uid.generate_uid()
    copy.InstanceNumber = 999
    copy.save_as(folder / "zz_duplicate.dcm")
    series = find_series(folder)
    with pytest.raises(InputError, match="occur twice"):
        load_series(series[0])


@pytest.mark.parametrize(("dtype", "scale"), [(np.float32, 2.0**110), (np.float64, 2.0**900), (np.float32, 2.0**-110)])
def test_extreme_intensities_give_the_same_mask(predictor: Predictor, phantom_dataset: Path, tmp_path: Path, dtype, scale) -> None:  # noqa: ANN001
    image = nib.load(phantom_dataset / GOOD)
    data = np.asanyarray(image.dataobj).astype(np.float64)
    reference = run_batch(predictor, [phantom_dataset / GOOD], tmp_path / "ref")[0]
    path = _copy_with(phantom_dataset / GOOD, tmp_path / "extreme_T2w.nii.gz", data=(data * scale).astype(dtype), dtype=dtype)
    loaded = load_image(path)
    assert np.isfinite(loaded.data).all() and float(np.abs(loaded.data).max()) < 1e7
    extreme = run_batch(predictor, [path], tmp_path / "out")[0]
    assert extreme.status == "ok"
    reference_mask = np.asanyarray(nib.load(reference.output).dataobj)
    np.testing.assert_array_equal(np.asanyarray(nib.load(extreme.output).dataobj), reference_mask)


def test_header_text_and_extensions_never_reach_outputs(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    image = nib.load(phantom_dataset / GOOD)
    image.header["descrip"] = b"DOE^JANE 1970-01-01"
    image.header["aux_file"] = b"ACC12345"
    image.header["intent_name"] = b"MRN42"
    image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"PatientName=DOE^JANE"))
    nib.save(image, tmp_path / "tagged_T2w.nii.gz")
    records = run_batch(predictor, [tmp_path / "tagged_T2w.nii.gz"], tmp_path / "out", options=BatchOptions(soft=True))
    assert records[0].status == "ok"
    for output in (tmp_path / "out").glob("*.nii.gz"):
        raw = output.read_bytes()
        import gzip

        raw = gzip.decompress(raw)
        for identifier in (b"DOE^JANE", b"ACC12345", b"MRN42"):
            assert identifier not in raw, output.name
        assert len(nib.load(output).header.extensions) == 0


@pytest.mark.parametrize("shape", [(1, 30, 30), (30, 30, 1), (2, 3, 30)])
def test_one_voxel_thick_volumes_finish_the_batch(predictor: Predictor, phantom_dataset: Path, tmp_path: Path, shape) -> None:  # noqa: ANN001
    from lesionseg.reporting.inference_html import ReportWriter

    affine = np.eye(4)
    thin = nib.Nifti1Image(np.random.default_rng(0).normal(100, 10, shape).astype(np.float32), affine)
    thin.set_qform(affine, code=1)
    inputs = tmp_path / "in"
    inputs.mkdir()
    nib.save(thin, inputs / "a_thin_T2w.nii.gz")
    shutil.copy(phantom_dataset / GOOD, inputs / "b_T2w.nii.gz")
    out = tmp_path / "out"
    records = run_batch(predictor, [inputs], out, writers=[ReportWriter("tiny", "test")])
    assert [r.status for r in records] == ["ok", "ok"]
    assert (out / "a_thin_T2w_report.html").is_file() and (out / "summary.csv").is_file()


def test_dicom_slices_of_different_orientations_are_refused(phantom_dataset: Path, tmp_path: Path) -> None:
    import pydicom

    from lesionseg.io.dicom import find_series, load_series
    from tests.dicom_helpers import write_dicom_series

    folder = tmp_path / "dicom"
    write_dicom_series(phantom_dataset / GOOD, folder)
    last = sorted(folder.iterdir())[-1]
    tilted = pydicom.dcmread(last)
    tilted.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]  # a localiser's other plane, same series
    tilted.save_as(last)
    with pytest.raises(InputError, match="different orientations"):
        load_series(find_series(folder)[0])


def test_a_symlinked_alias_of_an_input_is_one_input(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(phantom_dataset / GOOD, inputs / "a_T2w.nii.gz")
    (inputs / "b_T2w.nii.gz").symlink_to(inputs / "a_T2w.nii.gz")
    records = run_batch(predictor, [inputs], tmp_path / "out")
    assert [Path(r.input).name for r in records] == ["a_T2w.nii.gz"] and records[0].status == "ok"
