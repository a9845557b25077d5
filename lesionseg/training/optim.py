"""Losses, optimiser and learning-rate schedules from :class:`~lesionseg.config.TrainConfig` (MONAI, torch)."""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss, DiceFocalLoss, TverskyLoss
from monai.optimizers.lr_scheduler import WarmupCosineSchedule
from torch.optim.lr_scheduler import ConstantLR, LinearLR, LRScheduler, PolynomialLR, SequentialLR

from lesionseg.config import TrainConfig


def build_loss(config: TrainConfig) -> torch.nn.Module:
    """A MONAI loss on one-channel logits (sigmoid inside); Dice terms are computed over the whole batch so
    patches without any target do not produce undefined per-patch Dice."""
    if config.loss == "dicefocal":
        return DiceFocalLoss(sigmoid=True, batch=True)
    if config.loss == "tversky":
        return TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7, batch=True)
    return DiceCELoss(sigmoid=True, batch=True)


def build_optimizer(
    network: torch.nn.Module, config: TrainConfig, groups: list[dict] | None = None
) -> torch.optim.Optimizer:
    """AdamW over the network's parameters, or over parameter ``groups`` (each with its own ``lr``)."""
    return torch.optim.AdamW(groups or network.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> LRScheduler:
    """Linear warm-up, then cosine (MONAI ``WarmupCosineSchedule``), polynomial (power 0.9) or constant.

    The scheduler is stepped once per training step.
    """
    warmup = min(config.warmup_steps, max(config.steps - 1, 0))
    if config.schedule == "cosine":
        return WarmupCosineSchedule(optimizer, warmup_steps=warmup, t_total=config.steps, warmup_multiplier=0.01)
    after = (
        PolynomialLR(optimizer, total_iters=max(config.steps - warmup, 1), power=0.9)
        if config.schedule == "poly"
        else ConstantLR(optimizer, factor=1.0, total_iters=0)
    )
    if warmup == 0:
        return after
    start = LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
    return SequentialLR(optimizer, schedulers=[start, after], milestones=[warmup])
