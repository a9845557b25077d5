"""``lesionseg infer --bids-derivatives``: a BIDS dataset in, a BIDS derivative dataset out (names, folders,
dataset_description, sidecars with Sources and the models' SHA-256, the lesion look-up table), checked by the BIDS
schema validator when it is installed."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from lesionseg.cli.main import app
from lesionseg.io.checkpoint import sha256_file
from lesionseg.io.registry import default_model

SOURCES = {  # phantom -> place in the BIDS dataset given to infer
    "sub-001/anat/sub-001_T2w.nii.gz": "sub-001/anat/sub-001_T2w.nii.gz",
    "sub-001/anat/sub-001_T1w.nii.gz": "sub-001/anat/sub-001_T1w.nii.gz",
    "sub-002/anat/sub-002_T2w.nii.gz": "sub-002/ses-1/anat/sub-002_ses-1_acq-sag_T2w.nii.gz",
}


@pytest.fixture(scope="module")
def derivative(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A BIDS dataset of three phantoms and one file without a BIDS name, and the derivative infer wrote."""
    root = tmp_path_factory.mktemp("bids") / "study"
    for phantom, place in SOURCES.items():
        (root / place).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(phantom_dataset / phantom, root / place)
    (root / "dataset_description.json").write_text('{"Name": "study", "BIDSVersion": "1.9.0"}')
    (root / "extra").mkdir()
    shutil.copy(phantom_dataset / "sub-003/anat/sub-003_T2w.nii.gz", root / "extra" / "scan.nii.gz")
    out = root.parent / "out"
    result = CliRunner().invoke(app, ["infer", str(root), "--out", str(out), "--bids-derivatives", "--soft"])
    return root, out, result.output


def test_outputs_get_bids_names_folders_and_the_native_grid(derivative: tuple[Path, Path, str]) -> None:
    root, out, output = derivative
    assert "extra/scan.nii.gz: not a BIDS file name" in output and "3 ok, 1 failed" in output  # the batch went on
    for place in SOURCES.values():
        source = nib.load(root / place)
        entities, contrast = place.rsplit("/", 1)[1].removesuffix(".nii.gz").rsplit("_", 1)
        folder = out / Path(place).parent
        for name in (f"label-lesion_desc-{contrast}_mask", f"label-SC_desc-{contrast}_mask",
                     f"label-lesion_desc-{contrast}_probseg", f"desc-{contrast}lesions_dseg"):
            image = nib.load(folder / f"{entities}_{name}.nii.gz")
            assert image.shape == source.shape and np.allclose(image.affine, source.affine), name
            assert (folder / f"{entities}_{name}.json").is_file(), name
        assert (folder / f"{entities}_{contrast}_report.html").is_file()
    assert not list(out.rglob("*scan*"))  # the refused input wrote nothing
    index = (out / "index.html").read_text()
    assert "sub-002/ses-1/anat/sub-002_ses-1_acq-sag_T2w_report.html" in index  # the index finds BIDS-named runs' reports


def test_dataset_description_and_sidecars_name_sources_and_models(derivative: tuple[Path, Path, str]) -> None:
    root, out, _ = derivative
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "lesionseg"
    assert (out / description["DatasetLinks"]["raw"]).resolve() == root.resolve()
    sidecar = json.loads((out / "sub-001/anat/sub-001_label-lesion_desc-T1w_mask.json").read_text())
    assert sidecar["Sources"] == ["bids:raw:sub-001/anat/sub-001_T1w.nii.gz"] and sidecar["Type"] == "Lesion"
    assert (root / sidecar["Sources"][0].removeprefix("bids:raw:")).is_file()
    shipped = {sha256_file(path) for path in default_model().rglob("model.pt")}
    assert sidecar["ModelName"] == default_model().name
    assert sidecar["Models"] and {model["SHA256"] for model in sidecar["Models"]} <= shipped
    cord = json.loads((out / "sub-001/anat/sub-001_label-SC_desc-T1w_mask.json").read_text())
    assert cord["Type"] == "ROI" and cord["Sources"] == sidecar["Sources"]
    assert ".bidsignore" in {p.name for p in out.iterdir()} and "*_report.html" in (out / ".bidsignore").read_text()


def test_the_look_up_table_has_one_row_per_labelled_lesion(derivative: tuple[Path, Path, str]) -> None:
    _, out, _ = derivative
    for table in out.rglob("*_dseg.tsv"):
        labels = np.asarray(nib.load(table.with_suffix("").with_suffix(".nii.gz")).dataobj)
        with open(table, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        assert [int(row["index"]) for row in rows] == sorted(set(np.unique(labels)) - {0})
        assert all("" not in row.values() for row in rows)  # BIDS: n/a, never an empty cell
        volumes = [float(row["volume_mm3"]) for row in rows]
        assert all(volume > 0 for volume in volumes)


def test_the_bids_validator_accepts_the_derivative(derivative: tuple[Path, Path, str]) -> None:
    validator = shutil.which("bids-validator-deno") or str(Path(sys.executable).with_name("bids-validator-deno"))
    if not Path(validator).is_file():
        pytest.skip("bids-validator-deno not installed (pip install '.[dev]')")
    _, out, _ = derivative
    result = subprocess.run([validator, "--format", "json", str(out)], capture_output=True, text=True, timeout=300,
                            check=False)
    issues = json.loads(result.stdout)["issues"]["issues"]
    errors = [(issue["code"], issue.get("location")) for issue in issues if issue["severity"] == "error"]
    assert errors == [], errors
