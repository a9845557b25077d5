"""Training runs cannot be confused (docs/reliability.md, "Training runs"): a new run never lands on another
one's folder, a resume checks its config against the checkpoint before touching anything, and a model is
exported only from the run that trained it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lesionseg.cli.main import app
from lesionseg.config import load_config
from lesionseg.errors import TrainingError
from lesionseg.io.checkpoint import load_checkpoint
from lesionseg.training.runs import best_weights
from lesionseg.training.trainer import train
from tests.conftest import CONFIGS, file_digests
from tests.reliability.test_options import _one_line_error

runner = CliRunner()


@pytest.fixture(scope="module")
def finished_run(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "run"
    train(load_config(CONFIGS / "tiny.yaml", ["train.steps=4", "train.val_every=2"]), data_root=phantom_dataset, run_dir=run)
    return run


def _train_cli(run: Path, data: Path, *extra: str):  # noqa: ANN202
    return runner.invoke(app, ["train", str(CONFIGS / "tiny.yaml"), "--data", str(data), "--out", str(run),
                               "--set", "train.steps=4", "--set", "train.val_every=2", *extra])


def test_second_run_into_a_run_folder_is_refused(finished_run: Path, phantom_dataset: Path) -> None:
    before = file_digests(finished_run, skip=("tensorboard",))
    line = _one_line_error(_train_cli(finished_run, phantom_dataset))
    assert "holds another training run" in line and "--resume" in line
    assert file_digests(finished_run, skip=("tensorboard",)) == before  # the first run's checkpoints and model untouched


@pytest.mark.parametrize(("override", "key"), [
    ("model.channels=[4, 8, 16]", "model.channels"),
    ("preprocess.spacing_mm=[2.0, 2.0, 2.0]", "preprocess.spacing_mm"),
    ("data.target=cord", "data.target"),
    ("train.patch_size=[32, 32, 32]", "train.patch_size"),
])
def test_resume_with_another_config_names_the_mismatch_and_touches_nothing(finished_run: Path, phantom_dataset: Path, override, key) -> None:  # noqa: ANN001
    before = file_digests(finished_run, skip=("tensorboard",))
    line = _one_line_error(_train_cli(finished_run, phantom_dataset, "--resume", "--set", override))
    assert "cannot resume" in line and key in line and "last.pt" in line
    assert file_digests(finished_run, skip=("tensorboard",)) == before  # config.yaml, checkpoints, model: byte-identical


def test_resume_from_a_corrupt_checkpoint_is_one_line(finished_run: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "last.pt").write_bytes(b"not a checkpoint")
    line = _one_line_error(_train_cli(run, phantom_dataset, "--resume"))
    assert "last.pt" in line


def test_every_checkpoint_names_its_run_and_a_stale_best_is_never_exported(finished_run: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    run_id = load_checkpoint(finished_run / "last.pt")["run_id"]
    assert len(run_id) == 32 and load_checkpoint(finished_run / "best.pt")["run_id"] == run_id
    other = tmp_path / "other"
    train(load_config(CONFIGS / "tiny.yaml", ["train.steps=2", "train.val_every=100"]), data_root=phantom_dataset, run_dir=other)
    other_id = load_checkpoint(other / "last.pt")["run_id"]
    assert other_id != run_id
    shutil.copy(finished_run / "best.pt", other / "best.pt")  # a best.pt that is not this run's
    with pytest.raises(TrainingError, match="written by another training run"):
        best_weights(other, other_id)
    assert best_weights(finished_run, run_id) is not None


def test_resume_may_raise_the_steps(finished_run: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    result = _train_cli(run, phantom_dataset, "--resume", "--set", "train.steps=6", "--device", "cpu")
    assert result.exit_code == 0, result.output
    state = load_checkpoint(run / "last.pt")
    assert state["step"] == 6 and state["run_id"] == load_checkpoint(finished_run / "last.pt")["run_id"]


def test_a_live_training_run_locks_its_folder(finished_run: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = file_digests(run, skip=("tensorboard",))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / ".lesionseg-train.lock").write_text(f"{sleeper.pid}@{socket.gethostname()}\n")
        line = _one_line_error(_train_cli(run, phantom_dataset, "--resume", "--set", "train.steps=6"))
        assert "another lesionseg train" in line
    finally:
        sleeper.kill()
        sleeper.wait()
    assert file_digests(run, skip=("tensorboard",)) == {**before, ".lesionseg-train.lock": file_digests(run)[".lesionseg-train.lock"]}
