"""Outputs that cannot collide and a "done" that means done (docs/reliability.md, "Outputs" and "Completion").

Every case checks the two promises: no file of another input or of the user is ever replaced, and no scan is
reported ok or skipped without its full set of outputs; the summary always lists every input.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lesionseg.cli.main import app
from lesionseg.errors import OutputError
from lesionseg.inference.batch import BatchOptions, run_batch
from lesionseg.inference.predictor import Predictor
from lesionseg.io.run_folder import read_record
from tests.conftest import file_digests

GOOD = "sub-001/anat/sub-001_T2w.nii.gz"
OTHER = "sub-002/anat/sub-002_T2w.nii.gz"


@pytest.fixture(scope="module")
def predictor(trained_tiny_model: Path) -> Predictor:
    return Predictor.from_model(trained_tiny_model, device="cpu")


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
        return {row["input"]: row for row in csv.DictReader(handle)}


def _status(records) -> dict[str, str]:  # noqa: ANN001
    return {r.input: r.status for r in records}


def test_nii_and_nii_gz_of_one_name_both_fail_before_writing(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(phantom_dataset / GOOD, inputs / "a_T2w.nii.gz")
    shutil.copy(phantom_dataset / OTHER, inputs / "b_T2w.nii.gz")
    import nibabel as nib

    nib.save(nib.load(phantom_dataset / OTHER), inputs / "a_T2w.nii")
    out = tmp_path / "out"
    records = run_batch(predictor, [inputs], out)
    status = _status(records)
    assert status == {str(inputs / "a_T2w.nii"): "failed", str(inputs / "a_T2w.nii.gz"): "failed", str(inputs / "b_T2w.nii.gz"): "ok"}
    assert all("same names" in r.error for r in records if r.status == "failed")
    assert not list(out.glob("a_T2w_*"))  # nothing written for either
    assert set(_summary(out)) == set(status)


def test_same_name_in_two_sites_mirrors_folders(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    for site, source in (("siteA", GOOD), ("siteB", OTHER)):
        (tmp_path / "in" / site).mkdir(parents=True)
        shutil.copy(phantom_dataset / source, tmp_path / "in" / site / "sub-01_T2w.nii.gz")
    # one root: its sub-folders are mirrored
    records = run_batch(predictor, [tmp_path / "in"], tmp_path / "one")
    assert [r.status for r in records] == ["ok", "ok"]
    assert (tmp_path / "one/siteA/sub-01_T2w_lesionseg.nii.gz").is_file() and (tmp_path / "one/siteB/sub-01_T2w_lesionseg.nii.gz").is_file()
    # two roots: each under its own name
    records = run_batch(predictor, [tmp_path / "in/siteA", tmp_path / "in/siteB"], tmp_path / "two")
    assert [r.status for r in records] == ["ok", "ok"]
    assert {p.parent.name for p in (tmp_path / "two").rglob("*_lesionseg.nii.gz")} == {"siteA", "siteB"}
    # two roots of one name: both fail, nothing written
    for site in ("x", "y"):
        (tmp_path / site / "data").mkdir(parents=True)
        shutil.copy(phantom_dataset / GOOD, tmp_path / site / "data/sub-01_T2w.nii.gz")
    records = run_batch(predictor, [tmp_path / "x/data", tmp_path / "y/data"], tmp_path / "three")
    assert [r.status for r in records] == ["failed", "failed"]
    assert not list((tmp_path / "three").rglob("*_lesionseg.nii.gz"))
    # two files of one name given as arguments
    records = run_batch(predictor, [tmp_path / "x/data/sub-01_T2w.nii.gz", tmp_path / "y/data/sub-01_T2w.nii.gz"], tmp_path / "four")
    assert [r.status for r in records] == ["failed", "failed"]


def test_same_file_twice_is_one_input(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    scan = phantom_dataset / GOOD
    records = run_batch(predictor, [scan, scan, scan.parent], tmp_path / "out")
    assert [r.status for r in records if r.input == str(scan)] == ["ok"]


def test_two_patients_series_of_one_description_never_mix(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    from tests.dicom_helpers import write_dicom_series

    folder = tmp_path / "export"
    write_dicom_series(phantom_dataset / GOOD, folder, description="T2 SAG", patient_id="P1")
    write_dicom_series(phantom_dataset / OTHER, folder, description="T2 SAG", patient_id="P2")
    out = tmp_path / "out"
    records = run_batch(predictor, [folder], out, options=BatchOptions(dicom_seg=True))
    assert [r.status for r in records] == ["ok", "ok"]
    masks = sorted(out.glob("*_lesionseg.nii.gz"))
    segs = sorted(out.glob("*_seg.dcm"))
    assert len(masks) == 2 and len(segs) == 2 and len({r.output for r in records}) == 2
    assert all(name.name.startswith("T2_SAG_") for name in masks)
    assert not any("P1" in p.name or "P2" in p.name for p in out.iterdir())  # identifiers hashed, never in names
    import pydicom

    patients = {pydicom.dcmread(seg).PatientID for seg in segs}
    assert patients == {"P1", "P2"}  # each SEG belongs to its own patient


def test_out_in_the_input_folder_never_replaces_a_users_file(phantom_dataset: Path, tmp_path: Path) -> None:
    from lesionseg.inference.cascade import load_pipeline
    from lesionseg.io.registry import default_model

    folder = tmp_path / "t2s"
    folder.mkdir()
    shutil.copy(phantom_dataset / GOOD, folder / "t2s.nii.gz")
    shutil.copy(phantom_dataset / "derivatives/labels/sub-001/anat/sub-001_T2w_seg-manual.nii.gz", folder / "t2s_seg.nii.gz")
    (folder / "t2s_lesions.csv").write_text("the user's own table\n")
    before = file_digests(folder)
    cascade = load_pipeline(default_model(), device="cpu")
    records = run_batch(cascade, [folder], folder)
    assert [r.status for r in records] == ["failed"]
    assert "not replaced" in records[0].error and "t2s_" in records[0].error
    after = file_digests(folder)
    assert {k: after[k] for k in before} == before  # every file that was there is byte-identical
    # with the manual table gone, the cord mask beside the scan still is the user's: refused again
    (folder / "t2s_lesions.csv").unlink()
    records = run_batch(cascade, [folder], folder)
    assert records[0].status == "failed" and "t2s_seg.nii.gz" in records[0].error
    assert file_digests(folder)["t2s_seg.nii.gz"] == before["t2s_seg.nii.gz"]


def test_an_earlier_runs_other_input_is_never_replaced(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    for site, source in (("siteA", GOOD), ("siteB", OTHER)):
        (tmp_path / site).mkdir()
        shutil.copy(phantom_dataset / source, tmp_path / site / "sub-01_T2w.nii.gz")
    out = tmp_path / "out"
    assert [r.status for r in run_batch(predictor, [tmp_path / "siteA"], out)] == ["ok"]
    before = file_digests(out)
    records = run_batch(predictor, [tmp_path / "siteB"], out)
    assert records[0].status == "failed" and "another input" in records[0].error
    after = file_digests(out)
    assert {k: v for k, v in after.items() if k != "summary.csv"} == {k: v for k, v in before.items() if k != "summary.csv"}
    summary = _summary(out)  # one summary of both runs
    assert summary[str(tmp_path / "siteA/sub-01_T2w.nii.gz")]["status"] == "ok"
    assert summary[str(tmp_path / "siteB/sub-01_T2w.nii.gz")]["status"] == "failed"


def test_second_run_into_one_folder_keeps_the_first_runs_rows(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(predictor, [phantom_dataset / GOOD], out)
    run_batch(predictor, [phantom_dataset / OTHER], out)
    assert set(_summary(out)) == {str(phantom_dataset / GOOD), str(phantom_dataset / OTHER)}


def test_skip_existing_trusts_only_a_complete_record(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a_T2w.nii.gz", "b_T2w.nii.gz", "c_T2w.nii.gz", "d_T2w.nii.gz"):
        shutil.copy(phantom_dataset / GOOD, inputs / name)
    out = tmp_path / "out"
    first = {Path(r.input).name: r for r in run_batch(predictor, [inputs], out, options=BatchOptions(lesion_connectivity=6))}
    (out / "b_T2w_lesions.csv").unlink()  # an output lost
    record = out / "c_T2w_lesionseg-record.json"  # a scan killed between its outputs
    payload = json.loads(record.read_text())
    record.write_text(json.dumps({**payload, "status": "started"}))
    os.utime(inputs / "d_T2w.nii.gz", ns=(1, 1))  # the input changed since
    again = {Path(r.input).name: r for r in run_batch(predictor, [inputs], out, options=BatchOptions(skip_existing=True))}
    assert {k: r.status for k, r in again.items()} == {"a_T2w.nii.gz": "skipped", "b_T2w.nii.gz": "ok", "c_T2w.nii.gz": "ok", "d_T2w.nii.gz": "ok"}
    skipped = again["a_T2w.nii.gz"]  # the summary carries the real figures of a skipped scan
    assert (skipped.lesions, skipped.lesion_volume_mm3, skipped.output) == (first["a_T2w.nii.gz"].lesions, first["a_T2w.nii.gz"].lesion_volume_mm3, first["a_T2w.nii.gz"].output)
    assert _summary(out)[str(inputs / "a_T2w.nii.gz")]["lesions"] == str(first["a_T2w.nii.gz"].lesions)
    assert (out / "b_T2w_lesions.csv").is_file() and read_record(record).status == "done"
    # asking for an output the earlier run did not write redoes the scan
    more = run_batch(predictor, [inputs / "a_T2w.nii.gz"], out, options=BatchOptions(skip_existing=True, soft=True))
    assert more[0].status == "ok" and (out / "a_T2w_lesionseg-soft.nii.gz").is_file()


def test_a_failing_report_fails_that_scan_and_it_is_not_done(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    calls = []

    class BrokenReport:  # a writer whose write raises for one scan
        def names(self, item, segments_cord):  # noqa: ANN001, ANN202
            return [("report", ".html")]

        def skip_reason(self, item, segmentation):  # noqa: ANN001, ANN202
            return ""

        def write(self, scan, out_dir) -> None:  # noqa: ANN001
            calls.append(scan.item)
            if scan.item.path.name.startswith("sub-001"):
                raise ZeroDivisionError("a report bug")

    out = tmp_path / "out"
    records = run_batch(predictor, [phantom_dataset / GOOD, phantom_dataset / OTHER], out, writers=[BrokenReport()])
    status = {Path(r.input).name: r for r in records}
    assert status["sub-001_T2w.nii.gz"].status == "failed" and "ZeroDivisionError" in status["sub-001_T2w.nii.gz"].error
    assert "--debug" in status["sub-001_T2w.nii.gz"].error
    assert status["sub-002_T2w.nii.gz"].status == "ok" and len(calls) == 2
    assert read_record(out / "sub-001_T2w_lesionseg-record.json").status == "started"
    again = run_batch(predictor, [phantom_dataset / GOOD], out, options=BatchOptions(skip_existing=True))
    assert again[0].status == "ok"  # redone, not skipped


def test_unexpected_error_in_one_scan_fails_only_that_row(predictor: Predictor, phantom_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = predictor.predict_loaded

    def flaky(image):  # noqa: ANN001, ANN202
        if image.path.name.startswith("sub-001"):
            raise MemoryError()
        return real(image)

    monkeypatch.setattr(predictor, "predict_loaded", flaky)
    records = run_batch(predictor, [phantom_dataset / GOOD, phantom_dataset / OTHER], tmp_path)
    assert [r.status for r in records] == ["failed", "ok"] and "MemoryError" in records[0].error
    assert len(_summary(tmp_path)) == 2


def test_a_live_run_locks_the_folder(predictor: Predictor, trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    import socket

    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".lesionseg-infer.lock"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{sleeper.pid}@{socket.gethostname()}\n")
        with pytest.raises(OutputError, match="another lesionseg infer"):
            run_batch(predictor, [phantom_dataset / GOOD], out)
        assert not (out / "summary.csv").exists()
        shard_lock = out / ".lesionseg-infer.shard-1-of-2.lock"  # a shard of a live run blocks a whole run too
        lock.rename(shard_lock)
        with pytest.raises(OutputError, match="another lesionseg infer"):
            run_batch(predictor, [phantom_dataset / GOOD], out)
        result = CliRunner().invoke(app, ["infer", str(phantom_dataset / GOOD), "--model", str(trained_tiny_model), "--out", str(out), "--device", "cpu"])
        assert result.exit_code == 1 and "Traceback" not in result.output
    finally:
        sleeper.kill()
        sleeper.wait()
    records = run_batch(predictor, [phantom_dataset / GOOD], out)  # a dead process's lock is taken over
    assert [r.status for r in records] == ["ok"] and not list(out.glob(".lesionseg-infer*.lock"))


def test_a_users_summary_csv_in_out_is_never_replaced(predictor: Predictor, phantom_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("patient,notes\nx,y\n")
    with pytest.raises(OutputError, match="not a lesionseg summary"):
        run_batch(predictor, [phantom_dataset / GOOD], out)
    assert (out / "summary.csv").read_text() == "patient,notes\nx,y\n" and not list(out.glob("*.nii.gz"))
