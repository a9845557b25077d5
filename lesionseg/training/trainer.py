"""Patch-based training of a MONAI 3D U-Net on TorchIO queues, with whole-volume validation.

A run folder holds::

    RUN/config.yaml      the resolved config
    RUN/split.json       which images trained, validated and were held out
    RUN/last.pt, best.pt checkpoints (model, optimiser, scheduler, step, seed, config), written atomically
    RUN/tensorboard/     scalars (loss, lr, val Dice, data wait) and image/mask slices
    RUN/model/           the exported model folder (model.pt + config.yaml + metadata.json + MODEL_CARD.md)

The parts, each with its contract: :mod:`~lesionseg.training.data` (split, subjects, batches per epoch),
:mod:`~lesionseg.training.state` (network, optimiser, scheduler, step, best; save / restore),
:mod:`~lesionseg.training.hooks` (callbacks, TensorBoard, validation, polarity) and
:mod:`~lesionseg.training.runs` (which folder holds which run). This module runs the loop.

Usage::

    from lesionseg import load_config, train
    result = train(load_config("demo"), data_root="phantoms", run_dir="runs/demo")
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torchio as tio

from lesionseg.config import Config
from lesionseg.constants import CANONICAL_AXCODES, IMAGE_KEY, LABEL_KEY
from lesionseg.errors import ConfigError, TrainingError
from lesionseg.networks.devices import autocast, resolve_device
from lesionseg.io.atomic import remove_stale_temporaries
from lesionseg.io.bids import Split
from lesionseg.io.checkpoint import save_config, save_model_folder
from lesionseg.io.run_folder import output_lock
from lesionseg.networks.factory import count_parameters, size_multiple
from lesionseg.training.data import TrainingData, run_split, seed_everything, write_split
from lesionseg.training.distributed import DistributedContext, init_distributed, reduce_mean, shutdown, unwrap
from lesionseg.training.hooks import (
    LABEL_CONTRAST_BATCHES,
    TrainingCallback,
    ValidationHook,
    measure_label_contrast,
    tensorboard_writer,
)
from lesionseg.training.optim import build_loss
from lesionseg.training.runs import best_weights, start_run
from lesionseg.training.state import TrainState
from lesionseg.training.transfer import apply_freezing
from lesionseg.training.validation import Validator, build_validation_cases

__all__ = ["TrainResult", "TrainingCallback", "train", "train_step"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a run produced and how it went."""

    run_dir: Path
    model_dir: Path
    start_step: int
    steps: int
    best_val_dice: float | None
    best_step: int | None
    seconds: float
    seconds_per_step: float
    data_wait_fraction: float


def train_step(
    network: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    loss_function: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    grad_clip: float | None,
    amp: bool,
    step: int,
    context: DistributedContext | None = None,
) -> float:
    """One optimiser step; returns the loss (averaged over ranks when distributed).

    Raises:
        TrainingError: a non-finite loss (on any rank: every rank stops at the same step).
    """
    context = context or DistributedContext()
    optimizer.zero_grad(set_to_none=True)
    with autocast(images.device, amp):
        loss = loss_function(network(images), labels)
    mean_loss = reduce_mean(loss.detach(), context)
    if not torch.isfinite(mean_loss):
        raise TrainingError(
            f"step {step + 1}: loss is {mean_loss.item()}; lower train.lr, enable train.grad_clip or check the inputs"
        )
    scaler.scale(loss).backward()  # DistributedDataParallel averages the gradients across ranks here
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(network.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return float(mean_loss.item())


def _check_config(config: Config) -> None:
    multiple = size_multiple(config.model)
    for name, size in (("train.patch_size", config.train.patch_size), ("infer.roi_size", config.infer.roi_size)):
        if size is not None and any(s % multiple for s in size):
            raise ConfigError(f"{name} {tuple(size)}: every size must be a multiple of {multiple} (product of model.strides)")


def _metadata(config: Config, split: Split, data_root: Path, world_size: int) -> dict[str, Any]:
    """The model metadata training records (``metadata.json`` of the exported model)."""
    import monai

    from lesionseg import __version__

    randomize = config.randomize
    return {
        "lesionseg_version": __version__, "torch_version": str(torch.__version__),
        "monai_version": str(monai.__version__), "torchio_version": str(tio.__version__),
        "target": config.data.target, "contrasts": list(config.data.contrasts),
        "spacing_mm": list(config.preprocess.spacing_mm) if config.preprocess.spacing_mm else None,
        "orientation": "".join(CANONICAL_AXCODES), "normalization": config.preprocess.normalization,
        "contrast_normalization": dict(config.preprocess.contrast_normalization),
        "architecture": config.model.architecture, "in_channels": 1, "out_channels": 1, "data_root": str(data_root),
        # random intensities: the model was trained on no contrast in particular
        "contrast_agnostic": randomize.enabled and randomize.p_known_contrast < 1.0,
        "training_source": (f"domain-randomised phantoms ({randomize.model_dump(mode='json')})" if randomize.enabled
                            else "dataset"),
        "train_images": [item.stem for item in split.train], "val_images": [item.stem for item in split.val],
        "test_images": [item.stem for item in split.test],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "world_size": world_size,
    }


def train(
    config: Config,
    *,
    data_root: str | Path | None = None,
    run_dir: str | Path,
    resume: bool = False,
    callback: TrainingCallback | None = None,
) -> TrainResult:
    """Train a network as ``config`` says and export it to ``run_dir/model``.

    Args:
        config: the resolved config.
        data_root: BIDS dataset (defaults to ``config.data.root``).
        run_dir: folder for checkpoints, logs and the exported model.
        resume: continue from ``run_dir/last.pt`` (same config: only the keys of
            :data:`lesionseg.training.runs.RESUMABLE_KEYS`, e.g. ``train.steps``, may change; checked before anything
            is written). Without it, ``run_dir`` must not hold another run. The data of each
            epoch depends only on (seed, epoch), so with ``train.deterministic`` a resumed run ends with the same
            weights as an uninterrupted one.
        callback: progress hooks (rank 0 only when distributed).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the run is data-parallel (see :mod:`lesionseg.training.distributed`):
    each rank trains on its share of the subjects, ``train.batch_size`` is per rank, and only rank 0 validates
    and writes files.

    Raises:
        TrainingError: no training data, no checkpoint to resume, a resumed config that differs from its
            checkpoint's, a new run into another run's folder, or a non-finite loss.
        ConfigError: sizes that do not fit the network.
    """
    callback = callback or TrainingCallback()
    root = Path(data_root) if data_root is not None else config.data.root
    if root is None:
        raise ConfigError("no data: pass --data DIR or set data.root")
    config = config.model_copy(deep=True)
    config.data.root = Path(root)
    _check_config(config)
    run_dir = Path(run_dir)
    train_config = config.train
    seed_everything(train_config.seed, deterministic=train_config.deterministic)
    device = resolve_device(train_config.device)
    context = init_distributed(use_cuda=device.type == "cuda")
    # rank 0 writes the files: it alone holds the folder's lock, then checks what the folder holds
    with output_lock(run_dir, command="train") if context.is_main else contextlib.nullcontext():
        try:
            run = start_run(run_dir, config, resume=resume, fresh_check=context.is_main)
            if context.is_main and remove_stale_temporaries(run_dir):
                logger.warning("removed unfinished checkpoint files left in %s by an interrupted run", run_dir)
            if context.enabled and device.type == "cuda":
                device = torch.device("cuda", context.local_rank)
            callback = callback if context.is_main else TrainingCallback()
            result = _train(config, Path(root), run_dir, run, callback, device, context)
        except BaseException:
            shutdown(context, wait=False)  # the other ranks may be stuck in a collective: do not wait for them
            raise
    shutdown(context)
    return result


def _train(
    config: Config,
    root: Path,
    run_dir: Path,
    run: tuple[str, dict[str, Any] | None],
    callback: TrainingCallback,
    device: torch.device,
    context: DistributedContext,
) -> TrainResult:
    """Data, validation cases, state (restored when resuming), hooks; then the loop; then the export."""
    split = run_split(config, root)
    data = TrainingData.build(config, split, device, context)
    # each rank validates its share of the images; the Dice is reduced across ranks
    cases = build_validation_cases(split.val[context.rank :: context.world_size], config, device, first=data.first)
    validator = Validator(cases, config, device, context) if split.val else None
    if context.is_main:
        save_config(config, run_dir / "config.yaml")
        write_split(split, run_dir / "split.json")
    run_id, checkpoint = run
    state = TrainState.build(config, run_id, _metadata(config, split, root, context.world_size),
                             step=int(checkpoint["step"]) if checkpoint else 0, resuming=checkpoint is not None,
                             device=device, context=context)
    if checkpoint is not None:
        state.restore(checkpoint)
        logger.info("resumed from %s at step %d", run_dir / "last.pt", state.step)
    writer = tensorboard_writer(run_dir, step=state.step, resuming=checkpoint is not None, context=context)
    hook = ValidationHook(validator, run_dir, writer, callback, context, config)
    start_step, started = state.step, time.perf_counter()
    callback.on_start(start_step=start_step, total_steps=config.train.steps, parameters=count_parameters(state.network))
    try:
        wait, compute = _loop(state, data, hook, writer, callback, fresh=checkpoint is None)
    finally:
        writer.close()
        callback.on_end()
    model_dir = run_dir / "model"
    if context.is_main:
        best = best_weights(run_dir, run_id)  # only this run's best.pt, never a stale one
        state.metadata.update({"steps": state.step, "best_val_dice": state.best_dice, "best_step": state.best_step})
        save_model_folder(model_dir, best if best is not None else unwrap(state.network).state_dict(), config,
                          state.metadata)
    return TrainResult(
        run_dir=run_dir, model_dir=model_dir, start_step=start_step, steps=state.step, best_val_dice=state.best_dice,
        best_step=state.best_step, seconds=time.perf_counter() - started,
        seconds_per_step=(wait + compute) / max(state.step - start_step, 1),
        data_wait_fraction=wait / max(wait + compute, 1e-9),
    )


def _loop(
    state: TrainState, data: TrainingData, hook: ValidationHook, writer: Any, callback: TrainingCallback, *, fresh: bool
) -> tuple[float, float]:
    """Train from ``state.step`` to ``train.steps``; returns the seconds spent waiting for data and computing."""
    config, context, device = data.config, data.context, data.device
    loss_function = build_loss(config.train)
    amp = config.train.amp and device.type == "cuda"
    wait = compute = 0.0
    start_step, per_epoch = state.step, data.steps_per_epoch
    state.network.train()
    fetch_started = time.perf_counter()
    batches: Iterator[dict] = data.epoch_batches(*divmod(state.step, per_epoch))
    if fresh:  # how the labels stand out in this training data (transfer's polarity; resumes keep it)
        batches = measure_label_contrast(state, batches, min(LABEL_CONTRAST_BATCHES, per_epoch), config, device, context)
        wait += time.perf_counter() - fetch_started  # the queue's first fill is data wait, as in the loop
    while state.step < config.train.steps:
        fetch_started = time.perf_counter()
        if state.step % per_epoch == 0 and state.step != start_step:
            batches = data.epoch_batches(state.step // per_epoch)
        batch = next(batches)
        if config.transfer.mode == "progressive" and state.step > 0 and state.step % config.transfer.unfreeze_every == 0:
            unfrozen = apply_freezing(state.core, config.transfer, state.step)
            logger.info("step %d: training %s", state.step, ", ".join(unfrozen))
        compute_started = time.perf_counter()
        wait += compute_started - fetch_started
        loss = train_step(
            state.network, batch[IMAGE_KEY][tio.DATA].to(device, non_blocking=True),
            batch[LABEL_KEY][tio.DATA].to(device, non_blocking=True).float(), loss_function=loss_function,
            optimizer=state.optimizer, scaler=state.scaler, grad_clip=config.train.grad_clip, amp=amp, step=state.step,
            context=context,
        )
        state.scheduler.step()
        state.step += 1
        compute += time.perf_counter() - compute_started
        writer.add_scalar("train/loss", loss, state.step)
        writer.add_scalar("train/lr", state.lr, state.step)
        callback.on_step(step=state.step, loss=loss, lr=state.lr)
        if hook.due(state.step):
            hook(state, wait / max(wait + compute, 1e-9))
    return wait, compute
