"""The state of a run that a checkpoint holds: network, optimiser, scheduler, gradient scaler, step, best
validation Dice, the run's id and the model metadata; saved to and restored from ``last.pt`` / ``best.pt``.

Contract: :meth:`TrainState.checkpoint` then :meth:`TrainState.restore` gives back the same weights, optimiser and
scheduler state, step and best score, so a resumed run continues exactly where the checkpoint was written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lesionseg.config import Config
from lesionseg.io.checkpoint import save_checkpoint
from lesionseg.networks.factory import build_network, count_parameters
from lesionseg.training.distributed import DistributedContext, unwrap, wrap
from lesionseg.training.optim import build_optimizer, build_scheduler
from lesionseg.training.transfer import parameter_groups, prepare_transfer

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


@dataclass
class TrainState:
    """Everything a checkpoint saves; build it with :meth:`build`."""

    run_id: str
    config: Config
    core: torch.nn.Module
    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    metadata: dict[str, Any]
    #: transfer learning's record (source model, mode, polarity), None without transfer
    transfer: dict[str, Any] | None
    step: int = 0
    best_dice: float | None = None
    best_step: int | None = None

    @classmethod
    def build(
        cls, config: Config, run_id: str, metadata: dict[str, Any], *, step: int, resuming: bool, device: torch.device,
        context: DistributedContext,
    ) -> TrainState:
        """A fresh network (or the transfer source's weights), wrapped for data parallelism, with its optimiser,
        scheduler and scaler."""
        core = build_network(config.model).to(device)
        transfer = prepare_transfer(core, config.transfer, step=step, resuming=resuming, distributed=context.enabled)
        network = wrap(core, context, device)
        groups = parameter_groups(unwrap(network), config.transfer, config.train.lr) if transfer else None
        optimizer = build_optimizer(network, config.train, groups)
        scaler = torch.amp.GradScaler("cuda", enabled=config.train.amp and device.type == "cuda")
        if transfer:
            metadata["transfer"] = transfer
        logger.info("network: %s with %s parameters on %s%s", type(core).__name__, f"{count_parameters(network):,}",
                    device, f" (rank {context.rank} of {context.world_size})" if context.enabled else "")
        return cls(run_id, config, core, network, optimizer, build_scheduler(optimizer, config.train), scaler,
                   metadata, transfer or None, step=step)

    def restore(self, state: dict[str, Any]) -> None:
        """Load a checkpoint's weights, optimiser, scheduler, best score and recorded label contrast/polarity (every
        rank reads the same file: weights stay equal)."""
        unwrap(self.network).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.best_dice, self.best_step = state.get("best_val_dice"), state.get("best_step")
        recorded = state.get("metadata", {})
        self.metadata["label_contrast"] = recorded.get("label_contrast")
        if self.transfer and "polarity" in recorded.get("transfer", {}):
            self.transfer["polarity"] = recorded["transfer"]["polarity"]

    def checkpoint(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "run_id": self.run_id,
            "model": unwrap(self.network).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "seed": self.config.train.seed,
            "best_val_dice": self.best_dice,
            "best_step": self.best_step,
            "config": self.config.model_dump(mode="json"),
            "metadata": self.metadata,
        }

    def save(self, path: Path) -> Path:
        """Write :meth:`checkpoint` to ``path`` atomically."""
        return save_checkpoint(self.checkpoint(), path)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])
