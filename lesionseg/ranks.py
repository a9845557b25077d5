"""This process's place in a ``torchrun`` job, read from the environment torchrun sets (no torch needed, so that
``lesionseg infer`` can shard a batch across ranks without importing it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: The rendezvous key-value store the process group was built on (``None`` when not distributed, or when
    #: the group was created elsewhere): :func:`lesionseg.training.distributed.shutdown` synchronises on it.
    store: dist.Store | None = field(default=None, repr=False, compare=False)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates and writes files."""
        return self.rank == 0


def context_from_env() -> DistributedContext:
    """The rank, world size and local rank torchrun put in the environment (defaults: a single process)."""
    return DistributedContext(
        rank=int(os.environ.get("RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
