"""Data-parallel training with ``torch.distributed``, as launched by ``torchrun``.

``torchrun --nproc_per_node N -m lesionseg train CONFIG ...`` starts N copies of the training; each reads its
rank from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``),
joins the process group (``nccl`` on CUDA, ``gloo`` on CPU), wraps the network in
:class:`~torch.nn.parallel.DistributedDataParallel` and trains on its own share of the subjects
(:class:`~torch.utils.data.DistributedSampler`, reshuffled every epoch). Gradients are averaged across ranks,
so a step sees ``WORLD_SIZE x train.batch_size`` patches; rank 0 alone validates and writes checkpoints, logs and
TensorBoard. A single process (no ``WORLD_SIZE``) runs exactly as before.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from lesionseg.ranks import DistributedContext, context_from_env

__all__ = [
    "DistributedContext",
    "context_from_env",
    "init_distributed",
    "reduce_mean",
    "reduce_sum",
    "shard_subjects",
    "shutdown",
    "unwrap",
    "wrap",
]


def init_distributed(use_cuda: bool) -> DistributedContext:
    """Join the process group torchrun described (``nccl`` with CUDA, ``gloo`` otherwise); a no-op for one
    process or when the group already exists."""
    context = context_from_env()
    if context.enabled and not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(context.local_rank)
        backend = "nccl" if use_cuda else "gloo"
        # the rendezvous init_process_group would run itself, kept so that shutdown can use its store
        store, rank, world_size = next(dist.rendezvous("env://", context.rank, context.world_size))
        dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world_size)
        context = replace(context, store=store)
    return context


def shutdown(context: DistributedContext, *, wait: bool = True) -> None:
    """Leave the process group; with ``wait``, once every rank has arrived (so rank 0 has written its files).

    A rank that tears gloo down straight after a collective can close its connections while a peer is still
    finishing that collective, and the peer aborts (pytorch/gloo#155): after the barrier, the ranks also meet on
    the rendezvous store, so that nothing is in flight on the process group when it is destroyed. Objects that
    still hold the group (a DistributedDataParallel wrapper in a reference cycle) are collected first, so that
    the group's threads are joined here and not during interpreter shutdown."""
    if context.enabled and dist.is_initialized():
        gc.collect()
        if wait:
            dist.barrier()
            if context.store is not None:
                # numbered, as a process (or a restarted one, on torchrun's agent store) may shut down more than once
                count = context.store.add(f"lesionseg/shutdowns/{context.rank}", 1)
                arrived = [f"lesionseg/shutdown/{count}/{rank}" for rank in range(context.world_size)]
                context.store.set(arrived[context.rank], "1")
                context.store.wait(arrived)
        dist.destroy_process_group()


def shard_subjects(count: int, *, epoch: int, seed: int, context: DistributedContext) -> list[int]:
    """Indices of the subjects this rank trains on in ``epoch``: a seeded shuffle split across ranks, padded so
    every rank gets the same number (and so runs the same number of steps)."""
    if not context.enabled:
        return list(range(count))
    sampler = DistributedSampler(
        range(count), num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=seed
    )
    sampler.set_epoch(epoch)
    return list(sampler)


def reduce_sum(value: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """The sum of a tensor over ranks (the tensor itself for one process)."""
    if not context.enabled:
        return value
    reduced = value.detach().clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced


def reduce_mean(value: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """The mean of a scalar tensor over ranks (the value itself for one process)."""
    return reduce_sum(value, context) / context.world_size


def wrap(network: torch.nn.Module, context: DistributedContext, device: torch.device) -> torch.nn.Module:
    """``network`` wrapped in DistributedDataParallel when distributed (batch norm made synchronous)."""
    if not context.enabled:
        return network
    network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)
    device_ids: Sequence[int] | None = [device.index or 0] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=device_ids)


def unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The plain network inside a DistributedDataParallel wrapper."""
    return network.module if isinstance(network, torch.nn.parallel.DistributedDataParallel) else network
