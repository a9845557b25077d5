"""Data-parallel training under torchrun with the gloo backend (CPU): 2 ranks stay identical and match a
single-process run on the same global batch; the CLI trains under torchrun and resumes with another world size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch.nn.utils import parameters_to_vector

from lesionseg.config import load_config
from lesionseg.networks.factory import build_network
from lesionseg.training.optim import build_loss, build_optimizer
from tests.conftest import CONFIGS
from tests.training import ddp_worker

ROOT = Path(__file__).resolve().parents[2]


def torchrun(*arguments: str, nproc: int = 2, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node N ARGS`` with this interpreter (the README's command line)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *arguments]
    # a rank that aborts prints its Python stacks (faulthandler)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, encoding="utf-8", errors="replace", timeout=600)


def test_two_ranks_stay_identical_and_match_one_process(tmp_path: Path) -> None:
    out = tmp_path / "history.pt"
    result = torchrun(str(Path(ddp_worker.__file__)), str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    history = torch.load(out, weights_only=True)
    assert len(history) == ddp_worker.STEPS

    # the reference: one process, the same initial weights, each step on the whole global batch (the mean of
    # the two halves' losses, as DistributedDataParallel averages the two ranks' gradients)
    config = load_config(ddp_worker.CONFIG)
    torch.manual_seed(0)
    network = build_network(config.model)
    initial = parameters_to_vector(network.parameters()).detach().clone()
    loss_function, optimizer = build_loss(config.train), build_optimizer(network, config.train)
    # Conv biases followed by instance normalisation have a gradient of exactly 0 in exact arithmetic, so theirs is
    # float noise (~1e-9) that AdamW scales up to a full step of either sign: they are left out of the comparison.
    meaningful = torch.zeros_like(initial, dtype=torch.bool)
    for step, (images, labels) in enumerate(ddp_worker.global_batches(config)):
        optimizer.zero_grad(set_to_none=True)
        halves = zip(images.chunk(2), labels.chunk(2), strict=True)
        loss = sum(loss_function(network(part), target) for part, target in halves) / 2
        loss.backward()
        meaningful |= parameters_to_vector([p.grad for p in network.parameters()]).abs() > 1e-6
        torch.nn.utils.clip_grad_norm_(network.parameters(), config.train.grad_clip)
        optimizer.step()
        ranks = history[step]
        assert torch.equal(ranks[0], ranks[1]), f"step {step + 1}: the ranks' weights differ"
        reference = parameters_to_vector(network.parameters()).detach()
        assert not torch.allclose(ranks[0], initial), "the weights did not move"
        assert meaningful.float().mean() > 0.95
        torch.testing.assert_close(ranks[0][meaningful], reference[meaningful], rtol=1e-4, atol=1e-5)


def test_cli_trains_under_torchrun_and_resumes_with_one_process(phantom_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = [str(CONFIGS / "tiny.yaml"), "--data", str(phantom_dataset), "--out", str(run), "--device", "cpu"]
    result = torchrun("-m", "lesionseg", "train", *common, "--set", "train.steps=6", "--set", "train.val_every=3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1  # rank 0 alone logs
    assert json.loads((run / "model/metadata.json").read_text())["world_size"] == 2
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 6
    assert result.stderr.count("trained steps 0->6") == 1  # rank 0 alone reports

    resumed = subprocess.run(
        [sys.executable, "-m", "lesionseg", "train", *common, "--resume", "--set", "train.steps=8", "--set", "train.val_every=3"],
        cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 8
    assert json.loads((run / "model/metadata.json").read_text())["world_size"] == 1
