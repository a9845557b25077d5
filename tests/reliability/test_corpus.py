"""A corpus of bad and odd inputs, each made here, each with its expected outcome (docs/reliability.md).

One batch holds every bad NIfTI case beside good scans: each bad one fails with one line naming the file and
the cause, the good ones are segmented, the batch goes on and exits 1, and no traceback is printed.
"""

from __future__ import annotations

import errno
import gzip
import os
import pickle
import shutil
import socket
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from lesionseg.cli.main import app
from lesionseg.errors import ModelError
from lesionseg.inference.batch import run_batch
from lesionseg.inference.predictor import Predictor
from lesionseg.io.nifti import load_image, save_mask

GOOD = "sub-001/anat/sub-001_T2w.nii.gz"


def _volume(shape=(12, 14, 16)) -> np.ndarray:
    return np.random.default_rng(0).normal(100, 10, size=shape).astype(np.float32)


def _save(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def _bad_corpus(folder: Path) -> dict[str, str]:
    """Write the bad files; returns file name -> expected cause (a substring of its one-line error)."""
    cases: dict[str, str] = {}
    good = _save(folder / "tmp_full.nii.gz", _volume((40, 40, 40)))
    (folder / "truncated_T2w.nii.gz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    good.unlink()
    cases["truncated_T2w.nii.gz"] = "truncated or corrupt"
    (folder / "wrong_magic_T2w.nii.gz").write_bytes(gzip.compress(b"not a nifti" * 50))
    cases["wrong_magic_T2w.nii.gz"] = "not a readable NIfTI"
    (folder / "zero_bytes_T2w.nii").write_bytes(b"")
    cases["zero_bytes_T2w.nii"] = "not a readable NIfTI"
    _save(folder / "two_d_T2w.nii.gz", _volume()[:, :, 0])
    cases["two_d_T2w.nii.gz"] = "2D image"
    _save(folder / "four_d_T2w.nii.gz", np.stack([_volume()] * 3, axis=-1))
    cases["four_d_T2w.nii.gz"] = "3 volumes"
    nan = _volume()
    nan[1, 1, 1] = np.nan
    _save(folder / "nan_T2w.nii.gz", nan)
    cases["nan_T2w.nii.gz"] = "NaN or infinite"
    inf = _volume()
    inf[2, 2, 2] = np.inf
    _save(folder / "inf_T2w.nii.gz", inf)
    cases["inf_T2w.nii.gz"] = "NaN or infinite"
    rgb = np.zeros((6, 6, 6), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), folder / "rgb_T2w.nii.gz")
    cases["rgb_T2w.nii.gz"] = "RGB/vector voxel type"
    _save(folder / "complex_T2w.nii", _volume().astype(np.complex64))
    cases["complex_T2w.nii"] = "complex voxel type"
    for name, value in (("zero_pixdim_T2w.nii", 0.0), ("negative_pixdim_T2w.nii", -1.0)):
        image = nib.Nifti1Image(_volume(), None)
        image.header["pixdim"][1:4] = [1.0, value, 1.0]
        image.header["qform_code"] = image.header["sform_code"] = 0
        nib.save(image, folder / name)
        cases[name] = "zero or negative"
    _save(folder / "all_zero_T2w.nii.gz", np.zeros((8, 8, 8), dtype=np.int16))
    cases["all_zero_T2w.nii.gz"] = "image is constant (every voxel is 0)"
    _save(folder / "constant_T2w.nii.gz", np.full((8, 8, 8), 7, dtype=np.int16))
    cases["constant_T2w.nii.gz"] = "image is constant (every voxel is 7)"
    huge = nib.Nifti1Header()
    huge.set_data_shape((4096, 4096, 4096))
    huge.set_data_dtype(np.float32)
    with open(folder / "huge_T2w.nii", "wb") as handle:  # a header announcing 64 G voxels and no data
        handle.write(huge.binaryblock)
        handle.write(b"\x00" * 4)
    cases["huge_T2w.nii"] = "exceed the limit"
    return cases


@pytest.fixture(scope="module")
def corpus_run(trained_tiny_model: Path, phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    folder = tmp_path_factory.mktemp("corpus")
    inputs = folder / "inputs"
    inputs.mkdir()
    cases = _bad_corpus(inputs)
    shutil.copy(phantom_dataset / GOOD, inputs / "good_T2w.nii.gz")
    shutil.copy(phantom_dataset / GOOD, inputs / "scan with spaces ü ñ_T2w.nii.gz")
    shear = nib.load(phantom_dataset / GOOD)
    affine = shear.affine.copy()
    affine[0, 1] += 0.2  # a sheared, non-orthogonal affine
    _save(inputs / "sheared_T2w.nii.gz", np.asanyarray(shear.dataobj), affine)
    mixed = nib.load(phantom_dataset / GOOD)
    mixed_image = nib.Nifti1Image(np.asanyarray(mixed.dataobj), mixed.affine)
    qform = mixed.affine.copy()
    qform[:3, 3] += 5.0
    mixed_image.set_qform(qform, code=1)
    mixed_image.set_sform(mixed.affine, code=2)
    nib.save(mixed_image, inputs / "qform_sform_differ_T2w.nii.gz")
    (inputs / "loop").mkdir()
    os.symlink(inputs, inputs / "loop" / "back_to_inputs")
    (inputs / "not_a_scan.txt").write_text("notes")
    out = folder / "out"
    result = CliRunner().invoke(app, ["infer", str(inputs), "--model", str(trained_tiny_model), "--out", str(out), "--device", "cpu"])
    return result, cases, inputs, out


def test_every_bad_file_fails_with_one_line_naming_it(corpus_run) -> None:  # noqa: ANN001
    result, cases, inputs, _ = corpus_run
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    for name, cause in cases.items():
        matching = [line for line in errors if f"{inputs / name}:" in line]
        assert matching, f"no error line for {name}"
        assert cause in matching[0], (name, matching[0])
    assert len(cases) >= 14


def test_good_and_odd_but_valid_files_are_segmented(corpus_run) -> None:  # noqa: ANN001
    _, _, inputs, out = corpus_run
    for stem in ("good_T2w", "scan with spaces ü ñ_T2w", "sheared_T2w", "qform_sform_differ_T2w"):
        mask = out / f"{stem}_lesionseg.nii.gz"
        assert mask.is_file(), stem
        source = nib.load(inputs / f"{stem}.nii.gz")
        written = nib.load(mask)
        np.testing.assert_array_equal(written.affine, source.affine)  # the sform (the NIfTI standard's choice)
        np.testing.assert_allclose(written.header.get_qform(), source.header.get_qform(), atol=1e-5)
    assert not list(out.rglob("*back_to_inputs*")), "the symlink loop was followed"
    assert len(list(out.glob("*_lesionseg.nii.gz"))) == 4


def test_label_grid_and_values(tmp_path: Path) -> None:
    image = load_image(_save(tmp_path / "img.nii.gz", _volume()))
    from lesionseg.errors import InputError
    from lesionseg.io.nifti import load_label_for

    labels = np.zeros((12, 14, 16), dtype=np.uint8)
    labels[1, 1, 1:6] = [1, 2, 3, 4, 5]
    with pytest.raises(InputError, match="values other than 0 and 1"):
        load_label_for(image, _save(tmp_path / "multi.nii.gz", labels))
    other_subject = np.zeros((12, 14, 17), dtype=np.uint8)  # another subject's label: another grid
    with pytest.raises(InputError, match="label shape"):
        load_label_for(image, _save(tmp_path / "other.nii.gz", other_subject))


def test_full_disk_fails_that_file_only(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lesionseg.io.atomic as atomic

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a_T2w.nii.gz", "b_T2w.nii.gz"):
        shutil.copy(phantom_dataset / GOOD, inputs / name)
    real_replace = os.replace

    def replace(source, destination):  # noqa: ANN001, ANN202
        if Path(destination).name == "a_T2w_lesionseg.nii.gz":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", replace)
    records = run_batch(Predictor.from_model(trained_tiny_model, device="cpu"), [inputs], tmp_path / "out")
    status = {Path(r.input).name: (r.status, r.error) for r in records}
    assert status["a_T2w.nii.gz"][0] == "failed" and "No space left on device" in status["a_T2w.nii.gz"][1]
    assert status["b_T2w.nii.gz"][0] == "ok"
    assert not list((tmp_path / "out").rglob(".*.part*")) and not (tmp_path / "out/a_T2w_lesionseg.nii.gz").exists()


class _RunsCode:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/lesionseg-pickle-ran-code")


def test_pickle_checkpoint_cannot_run_code(tmp_path: Path) -> None:
    MARKER.unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"model": _RunsCode(), "config": {}}, handle)
    with pytest.raises(ModelError, match="cannot load checkpoint safely"):
        Predictor.from_model(path, device="cpu")
    assert not MARKER.exists()


def test_inference_needs_no_network(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    records = run_batch(Predictor.from_model(trained_tiny_model, device="cpu"), [phantom_dataset / GOOD], tmp_path)
    assert [r.status for r in records] == ["ok"]


def test_patient_identifiers_never_printed(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    from tests.dicom_helpers import write_dicom_series

    write_dicom_series(phantom_dataset / GOOD, tmp_path / "dicom", description="T2 SAG")
    result = CliRunner().invoke(
        app, ["--debug", "infer", str(tmp_path / "dicom"), "--model", str(trained_tiny_model), "--out", str(tmp_path / "out"),
              "--format", "dicom-seg", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    for identifier in ("PHANTOM^TEST", "PHANTOM-001", "19700101"):
        assert identifier not in result.output
        for text_file in (tmp_path / "out").glob("*.*"):
            if text_file.suffix in (".csv", ".json", ".html"):
                assert identifier not in text_file.read_text(encoding="utf-8")


def test_sheared_affine_round_trips(tmp_path: Path) -> None:
    affine = np.array([[1.0, 0.3, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0, 0, 0, 1]])
    path = _save(tmp_path / "shear.nii.gz", _volume(), affine)
    image = load_image(path)
    written = save_mask(image.data > 100, image.geometry, tmp_path / "mask.nii.gz")
    np.testing.assert_allclose(nib.load(written).affine, nib.load(path).affine, atol=1e-6)
