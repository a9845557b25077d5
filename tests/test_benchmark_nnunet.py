"""``lesionseg benchmark --nnunet``: the dataset checks, the BIDS view of an nnU-Net dataset, the table, the
runner's isolation from lesionseg; end to end when ``LESIONSEG_NNUNET_PYTHON`` names a Python with nnunetv2."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lesionseg.benchmark_nnunet import RUNNER, link_as_bids, markdown, read_dataset, run_side_by_side, speedups
from lesionseg.errors import LesionsegError

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "make_toy_dataset.py"


def fake_dataset(root: Path, channels: int = 1, name: str = "Dataset042_Fake") -> Path:
    dataset = root / name
    for split in ("Tr", "Ts"):
        (dataset / f"images{split}").mkdir(parents=True)
        (dataset / f"labels{split}").mkdir(parents=True)
        for case in (f"c_{split}1", f"c_{split}2"):
            (dataset / f"images{split}" / f"{case}_0000.nii.gz").write_bytes(b"image")
            (dataset / f"labels{split}" / f"{case}.nii.gz").write_bytes(b"label")
    description = {"channel_names": {str(i): f"m{i}" for i in range(channels)}, "labels": {"background": 0, "x": 1}}
    (dataset / "dataset.json").write_text(json.dumps(description))
    return dataset


def test_reads_the_dataset_id_and_refuses_what_it_cannot_compare(tmp_path: Path) -> None:
    assert read_dataset(fake_dataset(tmp_path))[0] == 42
    with pytest.raises(LesionsegError, match="DatasetNNN_Name"):
        read_dataset(fake_dataset(tmp_path, name="toy"))
    with pytest.raises(LesionsegError, match="one channel"):
        read_dataset(fake_dataset(tmp_path / "two", channels=2))
    broken = fake_dataset(tmp_path / "broken")
    for path in (broken / "imagesTs").iterdir():
        path.unlink()
    (broken / "imagesTs").rmdir()
    with pytest.raises(LesionsegError, match="no imagesTs"):
        read_dataset(broken)


def test_bids_view_links_every_image_to_its_label(tmp_path: Path) -> None:
    dataset = fake_dataset(tmp_path)
    bids = link_as_bids(dataset, tmp_path / "bids")
    image = bids / "test" / "sub-testcTs1" / "anat" / "sub-testcTs1_T2w.nii.gz"
    label = bids / "test" / "derivatives" / "labels" / "sub-testcTs1" / "anat" / "sub-testcTs1_T2w_lesion-manual.nii.gz"
    assert image.is_symlink() and image.resolve() == (dataset / "imagesTs" / "c_Ts1_0000.nii.gz").resolve()
    assert label.resolve() == (dataset / "labelsTs" / "c_Ts1.nii.gz").resolve()
    assert len(list((bids / "train").glob("sub-*/anat/*_T2w.nii.gz"))) == 2
    assert (dataset / "imagesTs" / "c_Ts1_0000.nii.gz").read_bytes() == b"image"  # the dataset is untouched


def test_refuses_a_folder_with_earlier_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lesionseg.benchmark_nnunet.check_nnunet", lambda python: None)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.json").write_text("{}")
    with pytest.raises(LesionsegError, match="not empty"):
        run_side_by_side(fake_dataset(tmp_path), tmp_path / "out")
    assert (tmp_path / "out" / "old.json").read_text() == "{}"


def test_names_the_python_without_nnunet(tmp_path: Path) -> None:
    python = tmp_path / "python-without-nnunet"
    python.write_text("#!/bin/sh\nexit 1\n")
    python.chmod(0o755)
    with pytest.raises(LesionsegError, match="python-without-nnunet cannot import nnunetv2.*constraints"):
        run_side_by_side(fake_dataset(tmp_path), tmp_path / "out", nnunet_python=str(python))
    assert not (tmp_path / "out").exists()


def test_runner_imports_nothing_of_lesionseg() -> None:
    """It runs in nnU-Net's environment, where lesionseg may not be installed."""
    tree = ast.parse(RUNNER.read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert modules <= {"__future__", "argparse", "json", "resource", "time", "pathlib", "torch", "nnunetv2"}, modules


def test_table_has_one_row_per_tool_and_mode() -> None:
    ours = {"dice": {"a": 0.9, "b": 0.8}, "seconds_per_volume": 2.0, "in_batch_seconds_per_volume": 0.5}
    theirs = {"dice": {"a": 0.0, "b": 0.0}, "seconds_per_volume": 15.0, "in_batch_seconds_per_volume": 14.0}
    results = {
        "dataset": "Dataset501_ToyCord", "test_cases": ["a", "b"],
        "lesionseg": {"config": "bench", "train_command_seconds": 300.0, "seconds_per_step": 0.05,
                      "data_wait_fraction": 0.2, "infer": {"torch": ours}},
        "nnunet": {"train_command_seconds": 290.0, "plan_command_seconds": 60.0,
                   "train": {"iterations": 4, "seconds_per_iteration": 70.0},
                   "predict": {"no_tta": theirs, "tta": theirs | {"dice": {"a": 0.0, "b": 0.1}}}},
    }
    results["speedup_vs_nnunet_no_tta"] = speedups(results)
    assert results["speedup_vs_nnunet_no_tta"] == {"torch": {"seconds_per_volume": 7.5,
                                                             "in_batch_seconds_per_volume": 28.0}}
    table = markdown(results)
    assert "| lesionseg (bench), torch | 5.0 | 0.05 s/step, data wait 20% | 0.85 | 0.90, 0.80 | 2.0 | 0.5 |" in table
    assert "| nnU-Net v2 3d_fullres, no TTA | 4.8 (+1.0 planning) | 4 iterations, 70.0 s each | 0.0 |" in table
    assert "mirroring TTA" in table and "7.5x faster" in table and "28.0x inside" in table


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("LESIONSEG_NNUNET_PYTHON"), reason="LESIONSEG_NNUNET_PYTHON not set")
def test_side_by_side_end_to_end(tmp_path: Path) -> None:
    if not BENCH.is_file():
        pytest.skip(f"{BENCH} not available")
    subprocess.run([sys.executable, str(BENCH), "--out", str(tmp_path / "raw"), "--n-train", "3", "--n-test", "2",
                    "--shape", "32", "64", "64"], check=True, capture_output=True)
    results = run_side_by_side(tmp_path / "raw" / "Dataset501_ToyCord", tmp_path / "out",
                               nnunet_python=os.environ["LESIONSEG_NNUNET_PYTHON"],
                               overrides=["train.steps=8", "train.val_every=4", "data.split.val_fraction=0.34"],
                               tta=False, log=lambda _: None)
    assert set(results["nnunet"]["predict"]["no_tta"]["dice"]) == {"case_003", "case_004"}
    assert results["nnunet"]["train"]["iterations"] >= 1
    assert set(results["lesionseg"]["infer"]) == {"torch", "onnxruntime"}  # the [dev] extra has the exporter
    assert results["lesionseg"]["infer"]["onnxruntime"]["dice"] == pytest.approx(
        results["lesionseg"]["infer"]["torch"]["dice"], abs=0.02)
    assert all(ratio["in_batch_seconds_per_volume"] > 0 for ratio in results["speedup_vs_nnunet_no_tta"].values())
    assert json.loads((tmp_path / "out" / "nnunet-side-by-side.json").read_text()) == results
