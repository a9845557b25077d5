"""What happens around the optimiser steps: the caller's callbacks (a progress bar), TensorBoard, validation with
best-checkpointing, and the first batches' label contrast (transfer learning's input polarity).

Contract: hooks read the :class:`~lesionseg.training.state.TrainState` and write files (rank 0 only); the only
state they change is the best score and the recorded label contrast / polarity.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torchio as tio

from lesionseg.config import Config
from lesionseg.constants import IMAGE_KEY, LABEL_KEY
from lesionseg.training.distributed import DistributedContext, reduce_sum, unwrap
from lesionseg.training.state import TrainState
from lesionseg.training.transfer import align_polarity, label_contrast
from lesionseg.training.validation import Validator

logger = logging.getLogger(__name__)

#: first batches measuring how the labels stand out (``metadata.label_contrast``; transfer's input polarity)
LABEL_CONTRAST_BATCHES = 4


class TrainingCallback:
    """Hooks a caller (e.g. the CLI's progress bar) can override; the defaults do nothing."""

    def on_start(self, *, start_step: int, total_steps: int, parameters: int) -> None: ...

    def on_step(self, *, step: int, loss: float, lr: float) -> None: ...

    def on_validation(self, *, step: int, dice: float, best: float) -> None: ...

    def on_end(self) -> None: ...


class _NoWriter:
    """Stands in for TensorBoard's writer on ranks other than 0."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None: ...

    def add_image(self, *args: Any, **kwargs: Any) -> None: ...

    def close(self) -> None: ...


def tensorboard_writer(run_dir: Path, *, step: int, resuming: bool, context: DistributedContext) -> Any:
    """TensorBoard's writer into ``RUN/tensorboard`` (a resumed run drops events after its step); a stand-in
    on the other ranks."""
    if not context.is_main:
        return _NoWriter()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=step if resuming else None)


def measure_label_contrast(
    state: TrainState, batches: Iterator[dict], count: int, config: Config, device: torch.device,
    context: DistributedContext,
) -> Iterator[dict]:
    """Record how the labels stand out in this training data (``metadata.label_contrast``) from its first
    batches and, with transfer learning, align the source model's input polarity; returns the batches with the
    peeked ones first (they still train, in their order)."""
    peeked = [next(batches) for _ in range(count)]
    sums = torch.tensor([label_contrast(batch[IMAGE_KEY][tio.DATA], batch[LABEL_KEY][tio.DATA]) for batch in peeked])
    total, seen = (float(value) for value in reduce_sum(sums.sum(0).to(device), context).cpu())
    state.metadata["label_contrast"] = round(total / seen, 4) if seen else None
    transfer = state.transfer
    if transfer and config.transfer.polarity != "keep":
        source = {"label_contrast": transfer.get("source_label_contrast"),
                  "contrast_agnostic": transfer.get("source_contrast_agnostic")}
        transfer["polarity"] = align_polarity(state.core, config.transfer, source, state.metadata["label_contrast"],
                                              peeked[0][IMAGE_KEY][tio.DATA].to(device))
    return itertools.chain(peeked, batches)


class ValidationHook:
    """Every ``train.val_every`` steps (and at the last): validate, log, keep ``best.pt`` and ``last.pt``."""

    def __init__(self, validator: Validator | None, run_dir: Path, writer: Any, callback: TrainingCallback,
                 context: DistributedContext, config: Config) -> None:
        self.validator, self.run_dir, self.writer = validator, run_dir, writer
        self.callback, self.context, self.config = callback, context, config

    def due(self, step: int) -> bool:
        return step % self.config.train.val_every == 0 or step == self.config.train.steps

    def __call__(self, state: TrainState, data_wait_fraction: float) -> None:
        step = state.step
        self.writer.add_scalar("train/data_wait_fraction", data_wait_fraction, step)
        if self.validator is not None:
            dice, preview = self.validator(unwrap(state.network))
            self.writer.add_scalar("val/dice", dice, step)
            if preview is not None:
                self.writer.add_image("val/image_label_prediction", preview, step, dataformats="HW")
            if state.best_dice is None or dice > state.best_dice:
                state.best_dice, state.best_step = dice, step
                if self.context.is_main:
                    state.save(self.run_dir / "best.pt")
            self.callback.on_validation(step=step, dice=dice, best=state.best_dice)
        if self.context.is_main:
            state.save(self.run_dir / "last.pt")
