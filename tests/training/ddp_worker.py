"""Run by tests/training/test_distributed.py under ``torchrun --nproc_per_node 2``: a few DDP steps of the tiny
network through :func:`lesionseg.training.trainer.train_step`, each rank on its half of a fixed global batch.

Rank 0 saves, after every step, every rank's flattened weights (gathered with ``all_gather``) to ``argv[1]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.utils import parameters_to_vector

from lesionseg.config import load_config
from lesionseg.networks.factory import build_network
from lesionseg.training.distributed import DistributedContext, init_distributed, shutdown, unwrap, wrap
from lesionseg.training.optim import build_loss, build_optimizer
from lesionseg.training.trainer import train_step

CONFIG = Path(__file__).resolve().parents[2] / "lesionseg" / "configs" / "tiny.yaml"
STEPS = 3
GLOBAL_BATCH = 4


def global_batches(config):  # noqa: ANN001, ANN201
    """The same global batches on every rank (and in the single-process reference)."""
    generator = torch.Generator().manual_seed(1)
    shape = (GLOBAL_BATCH, 1, *config.train.patch_size)
    for _ in range(STEPS):
        yield torch.randn(shape, generator=generator), (torch.rand(shape, generator=generator) > 0.9).float()


def train_ranks(context: DistributedContext) -> list[torch.Tensor]:
    """STEPS steps of DDP training; after each, every rank's flattened weights (gathered on every rank)."""
    config = load_config(CONFIG)
    torch.manual_seed(0)
    network = wrap(build_network(config.model), context, torch.device("cpu"))
    loss_function, optimizer = build_loss(config.train), build_optimizer(network, config.train)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    share = GLOBAL_BATCH // context.world_size
    mine = slice(context.rank * share, (context.rank + 1) * share)
    history = []
    for step, (images, labels) in enumerate(global_batches(config)):
        train_step(
            network, images[mine], labels[mine], loss_function=loss_function, optimizer=optimizer, scaler=scaler,
            grad_clip=config.train.grad_clip, amp=False, step=step, context=context,
        )
        weights = parameters_to_vector(unwrap(network).parameters()).detach()
        gathered = [torch.zeros_like(weights) for _ in range(context.world_size)]
        dist.all_gather(gathered, weights)
        history.append(torch.stack(gathered))
    return history


def main(out: Path) -> None:
    torch.set_num_threads(1)
    context = init_distributed(use_cuda=False)
    assert context.store is not None, "shutdown needs the rendezvous store to synchronise the ranks"
    # the DDP network (which holds the process group) is gone when the group is destroyed, as in the trainer
    history = train_ranks(context)
    if context.is_main:
        torch.save(history, out)
    shutdown(context)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
