"""A model's metadata is checked against its config before use; shipped weights can be checked against their card;
an input of a contrast the model never saw is flagged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lesionseg.errors import ModelError
from lesionseg.inference.batch import run_batch
from lesionseg.inference.cascade import CascadePredictor
from lesionseg.inference.predictor import Predictor
from lesionseg.io.checkpoint import CARD_FILE, METADATA_FILE, MODEL_FILE, load_model, verify_model_folder, verify_models


def _copy(model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model, tmp_path / "model"))


def _edit_metadata(folder: Path, **changes) -> None:  # noqa: ANN003
    path = folder / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata.update(changes)
    path.write_text(json.dumps(metadata))


@pytest.mark.parametrize(
    ("key", "value"),
    [("spacing_mm", [0.5, 0.5, 0.5]), ("out_channels", 3), ("orientation", "LPS"), ("target", "cord"),
     ("normalization", "percentile"), ("architecture", "dynunet"), ("contrasts", "T2w")],
)
def test_metadata_contradicting_the_config_is_refused(trained_tiny_model: Path, tmp_path: Path, key: str, value) -> None:  # noqa: ANN001
    folder = _copy(trained_tiny_model, tmp_path)
    _edit_metadata(folder, **{key: value})
    with pytest.raises(ModelError, match=key):
        load_model(folder)


def test_metadata_round_trips_contrast_and_spacing(trained_tiny_model: Path) -> None:
    bundle = load_model(trained_tiny_model)
    assert bundle.metadata.contrasts == list(bundle.config.data.contrasts)
    assert bundle.metadata.spacing_mm == list(bundle.config.preprocess.spacing_mm)
    assert bundle.metadata.architecture == bundle.config.model.architecture


def test_checksum_verified_against_card_and_metadata(trained_tiny_model: Path, tmp_path: Path) -> None:
    folder = _copy(trained_tiny_model, tmp_path)
    digest = verify_model_folder(folder)  # recorded in metadata.json at export
    assert len(digest) == 64
    (folder / CARD_FILE).write_text(f"# card\n\n- SHA-256 (model.pt): `{digest}`\n")
    assert verify_models([folder]) == {folder: digest}
    (folder / CARD_FILE).write_text(f"# card\n\n- SHA-256 (model.pt): `{'0' * 64}`\n")
    with pytest.raises(ModelError, match=f"differs from 000000000000... recorded in {CARD_FILE}"):
        verify_model_folder(folder)
    (folder / CARD_FILE).unlink()
    with open(folder / MODEL_FILE, "ab") as handle:  # a flipped tail: the weights still load, the checksum catches it
        handle.write(b"\0")
    with pytest.raises(ModelError, match="corrupted or replaced"):
        verify_model_folder(folder)


def test_cascade_refuses_swapped_models(trained_tiny_model: Path) -> None:
    # the tiny model is a lesion model: given as the cord model, the cascade says which is which
    with pytest.raises(ModelError, match="a lesion model given as the cascade's cord model"):
        CascadePredictor.from_models(trained_tiny_model, trained_tiny_model, device="cpu")


def test_other_contrast_is_flagged(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    predictor = Predictor.from_model(trained_tiny_model, device="cpu")  # trained on T2w (configs/tiny.yaml)
    assert predictor.metadata.contrasts == ["T2w"]
    records = {Path(r.input).name: r for r in run_batch(predictor, [phantom_dataset / "sub-003"], tmp_path / "out")}
    assert records["sub-003_T2w.nii.gz"].warning == ""
    assert "trained on T2w, this is PSIR" in records["sub-003_PSIR.nii.gz"].warning
    assert "this is T1w" in records["sub-003_T1w.nii.gz"].warning
    assert all(record.status == "ok" for record in records.values())


def test_cli_verify_checksum(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lesionseg.cli.main import app

    folder = _copy(trained_tiny_model, tmp_path)
    scan = str(phantom_dataset / "sub-003/anat/sub-003_PSIR.nii.gz")
    arguments = ["infer", scan, "--model", str(folder), "--out", str(tmp_path / "out"), "--no-report", "--verify-checksum"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and "this is PSIR" in result.output
    with open(folder / MODEL_FILE, "ab") as handle:
        handle.write(b"\0")
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 1
    assert "corrupted or replaced" in result.output and "Traceback" not in result.output
