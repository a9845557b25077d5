"""Every option and config file is validated up front; any error at a command's boundary is one line
(docs/reliability.md, "Options and errors")."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lesionseg.cli.main import app

GOOD = "sub-001/anat/sub-001_T2w.nii.gz"
runner = CliRunner()


def _one_line_error(result) -> str:  # noqa: ANN001
    """The single ``error:`` line of a failed command (exit 1, no traceback, no exception escaping)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.mark.parametrize(("option", "expected"), [
    (["--threshold", "2"], "--threshold 2.0: input should be less than 1"),
    (["--threshold", "0"], "--threshold 0.0: input should be greater than 0"),
    (["--overlap", "1"], "--overlap 1.0: input should be less than 1"),
    (["--overlap", "-0.5"], "--overlap -0.5: input should be greater than or equal to 0"),
    (["--sw-batch-size", "0"], "--sw-batch-size 0: input should be greater than or equal to 1"),
    (["--memory-budget-mb", "0"], "--memory-budget-mb 0.0: input should be greater than 0"),
    (["--device", "foo"], "--device 'foo': expected auto, cpu, cuda, cuda:N or mps"),
    (["--device", "cuda:x"], "--device 'cuda:x'"),
    (["--series-description", "T2 ("], "--series-description 'T2 (': not a regular expression"),
    (["--max-voxels", "0"], "--max-voxels 0: must be at least 1"),
    (["--shard", "3/2"], "--shard '3/2': I must be in 0..N-1"),
])
def test_bad_infer_option_is_one_line_before_any_work(phantom_dataset: Path, tmp_path: Path, option, expected) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    result = runner.invoke(app, ["infer", str(phantom_dataset / GOOD), "--out", str(out), *option])
    assert expected in _one_line_error(result)
    assert not out.exists()  # refused before the model was loaded or anything written


def test_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "latin1.yaml"
    config.write_bytes("synth:\n  subjects: 3  # Größe\n".encode("latin-1"))
    line = _one_line_error(runner.invoke(app, ["synth", str(tmp_path / "ds"), "--config", str(config)]))
    assert str(config) in line and "not UTF-8" in line


def test_unexpected_error_is_one_line_with_a_pointer_to_debug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lesionseg.synth.dataset as dataset

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise KeyError("surprise")

    monkeypatch.setattr(dataset, "make_dataset", broken)
    line = _one_line_error(runner.invoke(app, ["synth", str(tmp_path / "ds")]))
    assert "unexpected KeyError" in line and "run with --debug for the traceback" in line
    debug = runner.invoke(app, ["--debug", "synth", str(tmp_path / "ds")])
    assert isinstance(debug.exception, KeyError)  # --debug lets the traceback through


def test_bad_train_option_is_one_line(phantom_dataset: Path, tmp_path: Path) -> None:
    from tests.conftest import CONFIGS

    line = _one_line_error(runner.invoke(app, ["train", str(CONFIGS / "tiny.yaml"), "--data", str(phantom_dataset),
                                               "--out", str(tmp_path / "run"), "--device", "foo"]))
    assert "train.device" in line
    line = _one_line_error(runner.invoke(app, ["train", str(CONFIGS / "tiny.yaml"), "--data", str(phantom_dataset),
                                               "--out", str(tmp_path / "run"), "--set", "train.lr=-1"]))
    assert "train.lr" in line and not (tmp_path / "run").exists()


def test_option_neighbours_are_one_line(phantom_dataset: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    line = _one_line_error(runner.invoke(app, ["infer", str(phantom_dataset / GOOD), "--out", str(a_file)]))
    assert str(a_file) in line and a_file.read_text() == "not a folder"
    line = _one_line_error(runner.invoke(app, ["infer", str(phantom_dataset / GOOD), "--out", str(tmp_path / "o"),
                                               "--levels-suffix", "../../etc/x"]))
    assert "--levels-suffix" in line
    line = _one_line_error(runner.invoke(app, ["infer", str(phantom_dataset / GOOD), "--out", str(tmp_path / "o"),
                                               "--levels-kind", "discs"]))
    assert "--levels-kind discs: give --levels-suffix too" in line
    line = _one_line_error(runner.invoke(app, ["synth", str(tmp_path / "ds"), "--set", "synth.subjects"]))
    assert "expected key=value" in line


def test_synth_never_writes_over_a_users_dataset(tmp_path: Path) -> None:
    from tests.conftest import file_digests

    real = tmp_path / "my-bids"
    (real / "sub-001/anat").mkdir(parents=True)
    (real / "sub-001/anat/sub-001_T2w.nii.gz").write_bytes(b"a real scan")
    (real / "dataset_description.json").write_text('{"Name": "hospital data"}')
    before = file_digests(real)
    line = _one_line_error(runner.invoke(app, ["synth", str(real), "-n", "1"]))
    assert "not a lesionseg phantom dataset" in line and file_digests(real) == before
    phantoms = tmp_path / "phantoms"
    for _ in range(2):  # a phantom dataset may be regenerated in place
        result = runner.invoke(app, ["synth", str(phantoms), "-n", "1", "--set", "synth.fov_mm=[30,36,60]"])
        assert result.exit_code == 0, result.output
