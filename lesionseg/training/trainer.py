"""Patch-based training of a MONAI 3D U-Net on TorchIO queues, with whole-volume validation.

A run folder holds::

    RUN/config.yaml      the resolved config
    RUN/split.json       which images trained, validated and were held out
    RUN/last.pt, best.pt checkpoints (model, optimiser, scheduler, step, seed, config), written atomically
    RUN/tensorboard/     scalars (loss, lr, val Dice, data wait) and image/mask slices
    RUN/model/           the exported model folder (model.pt + config.yaml + metadata.json)

Usage::

    from lesionseg import load_config, train
    result = train(load_config("demo"), data_root="phantoms", run_dir="runs/demo")
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchio as tio

from lesionseg.config import Config
from lesionseg.constants import CANONICAL_AXCODES, IMAGE_KEY, LABEL_KEY
from lesionseg.data.cache import load_prepared_subjects
from lesionseg.data.generated import GeneratedSubjects
from lesionseg.data.loaders import patch_loader, patch_queue
from lesionseg.data.subjects import label_path, load_subjects
from lesionseg.errors import ConfigError, TrainingError
from lesionseg.inference.predictor import Predictor, autocast, resolve_device
from lesionseg.training.candidates import CANDIDATE_MAP_KEY, add_candidate_maps
from lesionseg.training.distributed import (
    DistributedContext,
    init_distributed,
    reduce_mean,
    reduce_sum,
    shard_subjects,
    shutdown,
    unwrap,
    wrap,
)
from lesionseg.training.validation import Validator, build_validation_cases
from lesionseg.transforms.cropping import RandomCropAroundLabel
from lesionseg.io.atomic import atomic_write_text, remove_stale_temporaries
from lesionseg.io.run_folder import output_lock
from lesionseg.io.bids import Split, discover, split_subjects
from lesionseg.io.checkpoint import save_checkpoint, save_config, save_model_folder
from lesionseg.networks.factory import build_network, count_parameters, size_multiple
from lesionseg.training.optim import build_loss, build_optimizer, build_scheduler
from lesionseg.training.runs import best_weights, start_run
from lesionseg.training.transfer import (
    align_polarity,
    apply_freezing,
    label_contrast,
    parameter_groups,
    prepare_transfer,
)
from lesionseg.transforms.augmentation import augmentation
from lesionseg.transforms.preprocessing import preprocessing

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
#: first batches measuring how the labels stand out (``metadata.label_contrast``; transfer's input polarity)
LABEL_CONTRAST_BATCHES = 4


class TrainingCallback:
    """Hooks a caller (e.g. the CLI's progress bar) can override; the defaults do nothing."""

    def on_start(self, *, start_step: int, total_steps: int, parameters: int) -> None: ...

    def on_step(self, *, step: int, loss: float, lr: float) -> None: ...

    def on_validation(self, *, step: int, dice: float, best: float) -> None: ...

    def on_end(self) -> None: ...


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


def seed_everything(seed: int, *, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; with ``deterministic`` also ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch's data (augmentation, subject order, patch sampling) on one rank."""
    return (seed * 1_000_003 + epoch + rank * 7_919) % 2**31


class _NoWriter:
    """Stands in for TensorBoard's writer on ranks other than 0."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None: ...

    def add_image(self, *args: Any, **kwargs: Any) -> None: ...

    def close(self) -> None: ...


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


def prepare_split(config: Config, data_root: Path) -> Split:
    """Discover the dataset and split it by subject; images without a target label are left out."""
    items = discover(
        data_root, config.data.contrasts, lesion_suffix=config.data.lesion_suffix, cord_suffix=config.data.cord_suffix
    )
    labelled = [item for item in items if label_path(item, config.data.target) is not None]
    if len(labelled) < len(items):
        logger.warning("%d image(s) have no %s label and are not used", len(items) - len(labelled), config.data.target)
    if not labelled:
        raise TrainingError(f"{data_root}: no {'/'.join(config.data.contrasts)} image with a {config.data.target} label")
    split_config = config.data.split
    return split_subjects(
        labelled, val_fraction=split_config.val_fraction, test_fraction=split_config.test_fraction, seed=split_config.seed
    )


def _metadata(config: Config, split: Split, data_root: Path) -> dict[str, Any]:
    import monai

    from lesionseg import __version__

    return {
        "lesionseg_version": __version__,
        "torch_version": str(torch.__version__),
        "monai_version": str(monai.__version__),
        "torchio_version": str(tio.__version__),
        "target": config.data.target,
        "contrasts": list(config.data.contrasts),
        "spacing_mm": list(config.preprocess.spacing_mm) if config.preprocess.spacing_mm else None,
        "orientation": "".join(CANONICAL_AXCODES),
        "normalization": config.preprocess.normalization,
        "contrast_normalization": dict(config.preprocess.contrast_normalization),
        "architecture": config.model.architecture,
        "in_channels": 1,
        "out_channels": 1,
        "data_root": str(data_root),
        # images the network was trained on: the dataset's, or phantoms generated on the fly (randomize)
        # random intensities: the model was trained on no contrast in particular
        "contrast_agnostic": config.randomize.enabled and config.randomize.p_known_contrast < 1.0,
        "training_source": (
            f"domain-randomised phantoms ({config.randomize.model_dump(mode='json')})" if config.randomize.enabled else "dataset"
        ),
        "train_images": [item.stem for item in split.train],
        "val_images": [item.stem for item in split.val],
        "test_images": [item.stem for item in split.test],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _write_split(split: Split, path: Path) -> None:
    payload = {name: [str(item.image) for item in getattr(split, name)] for name in ("train", "val", "test")}
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


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
    from torch.utils.tensorboard import SummaryWriter

    train_config = config.train
    if context.enabled and device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
    if not context.is_main:
        callback = TrainingCallback()

    split = prepare_split(config, Path(root))
    randomized = config.randomize.enabled
    if randomized:  # training images are generated; the dataset's (train + val) images validate
        if config.fp_reduction.first_model is not None:
            raise ConfigError("randomize.enabled cannot train a false-positive-reduction model (fp_reduction.first_model)")
        split = Split(train=(), val=(*split.train, *split.val), test=split.test)
    elif not split.train:
        raise TrainingError(f"{root}: the split left no training subject")
    logger.info("subjects: %d train, %d val, %d held out", len(split.train), len(split.val), len(split.test))
    cascaded = config.cascade.enabled and config.data.target == "lesion"
    # images are normalised whole, then (cascade) cropped: a crop's intensities do not depend on where its box
    # falls, and inference normalises its crop with the whole image's statistics alike
    prepare = preprocessing(config.preprocess)
    extra_labels: tuple = ("cord",) if cascaded else ()
    first = None
    train_subjects: list[tio.Subject] = []
    if randomized:
        logger.info("training on domain-randomised phantoms: %d new per epoch", config.randomize.subjects_per_epoch)
    elif config.fp_reduction.first_model is not None:
        first = Predictor.from_model(config.fp_reduction.first_model, device=str(device))
        train_subjects = load_subjects(split.train, config.data.target, extra_labels=extra_labels)
        train_subjects = [prepare(s) for s in add_candidate_maps(train_subjects, split.train, first, config)]
    else:
        description = json.dumps(
            {"preprocess": config.preprocess.model_dump(mode="json"), "target": config.data.target,
             "extra_labels": extra_labels},
            sort_keys=True,
        )
        train_subjects = load_prepared_subjects(
            split.train, config.data.target, prepare, description=description, cache_dir=config.data.cache_dir,
            extra_labels=extra_labels,
        )
    # each rank validates its share of the images; the Dice is reduced across ranks
    validator = (
        Validator(
            build_validation_cases(split.val[context.rank :: context.world_size], config, device, first=first),
            config, device, context,
        )
        if split.val
        else None
    )
    if context.is_main:
        save_config(config, run_dir / "config.yaml")
        _write_split(split, run_dir / "split.json")

    run_id, state = run
    resume = state is not None
    step = int(state["step"]) if state is not None else 0

    core = build_network(config.model).to(device)
    transfer = prepare_transfer(
        core, config.transfer, step=step, resuming=state is not None, distributed=context.enabled
    )
    network = wrap(core, context, device)
    parameters = count_parameters(network)
    logger.info(
        "network: %s with %s parameters on %s%s", type(unwrap(network)).__name__, f"{parameters:,}", device,
        f" (rank {context.rank} of {context.world_size})" if context.enabled else "",
    )
    loss_function = build_loss(train_config)
    groups = parameter_groups(unwrap(network), config.transfer, train_config.lr) if transfer else None
    optimizer = build_optimizer(network, train_config, groups)
    scheduler = build_scheduler(optimizer, train_config)
    use_amp = train_config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    metadata = {**_metadata(config, split, Path(root)), "world_size": context.world_size}
    if transfer:
        metadata["transfer"] = transfer

    best_dice, best_step = None, None
    if state is not None:
        unwrap(network).load_state_dict(state["model"])  # every rank reads the same file: weights stay equal
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        best_dice, best_step = state.get("best_val_dice"), state.get("best_step")
        logger.info("resumed from %s at step %d", run_dir / "last.pt", step)
    start_step = step

    def checkpoint() -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "run_id": run_id,
            "model": unwrap(network).state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "seed": train_config.seed,
            "best_val_dice": best_dice,
            "best_step": best_step,
            "config": config.model_dump(mode="json"),
            "metadata": metadata,
        }

    # TorchIO samplers only centre patches where the whole patch fits: pad by half a patch (after augmenting,
    # which is cheaper on the smaller volume) so that every voxel, border lesions included, can be a centre.
    pad = tio.Pad(tuple(size // 2 for size in train_config.patch_size), padding_mode="minimum")
    steps_before_sampling: list[tio.Transform] = []
    if cascaded:  # crops around the ground-truth cord, each face jittered (tolerates stage-1 errors)
        steps_before_sampling.append(
            RandomCropAroundLabel("cord", config.cascade.margin_mm, jitter_mm=config.cascade.jitter_mm)
        )
    augment = augmentation(config.augment)
    if augment is not None:
        steps_before_sampling.append(augment)
    transform = tio.Compose([*steps_before_sampling, pad])
    subjects_per_rank = math.ceil(
        (config.randomize.subjects_per_epoch if randomized else len(train_subjects)) / context.world_size
    )
    steps_per_epoch = math.ceil(subjects_per_rank * train_config.samples_per_volume / train_config.batch_size)

    def epoch_batches(epoch: int, skip: int = 0) -> Iterator[dict]:
        """The batches of one epoch: a pure function of (seed, epoch), so a resumed run sees the same data.

        ``skip`` batches are drawn and dropped (resuming in the middle of an epoch).
        """
        epoch_seed = _epoch_seed(train_config.seed, epoch, context.rank)
        seed_everything(epoch_seed, deterministic=train_config.deterministic)
        if randomized:  # new phantoms each epoch (and rank): the stream's seed is the epoch's
            subjects: Sequence[tio.Subject] | tio.SubjectsDataset = GeneratedSubjects(
                config.randomize, seed=epoch_seed, count=subjects_per_rank, target=config.data.target,
                prepare=prepare, transform=transform, extra_labels=extra_labels,
            )
        else:
            shard = shard_subjects(len(train_subjects), epoch=epoch, seed=train_config.seed, context=context)
            subjects = [train_subjects[index] for index in shard]
        queue = patch_queue(
            subjects,
            transform=transform,
            sampling_map=CANDIDATE_MAP_KEY if first is not None else None,
            patch_size=train_config.patch_size,
            foreground_probability=train_config.foreground_probability,
            samples_per_volume=train_config.samples_per_volume,
            queue_length=train_config.queue_length,
            num_workers=train_config.num_workers,
            seed=epoch_seed,
        )
        loader = patch_loader(
            queue,
            batch_size=train_config.batch_size,
            pin_memory=device.type == "cuda",
            prefetch=train_config.prefetch_batches,
        )
        batches = iter(loader)
        for _ in range(skip):
            next(batches)
        return batches

    writer = (
        SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=step if resume else None)
        if context.is_main
        else _NoWriter()
    )

    callback.on_start(start_step=step, total_steps=train_config.steps, parameters=parameters)
    network.train()
    wait_seconds = compute_seconds = 0.0
    started = time.perf_counter()
    epoch, position = divmod(step, steps_per_epoch)
    batches = epoch_batches(epoch, skip=position)
    if state is None:  # how the labels stand out in this training data (transfer's polarity; resumes keep it)
        fetch_started = time.perf_counter()
        peeked = [next(batches) for _ in range(min(LABEL_CONTRAST_BATCHES, steps_per_epoch))]
        wait_seconds += time.perf_counter() - fetch_started  # the queue's first fill is data wait, as in the loop
        sums = torch.tensor(
            [label_contrast(batch[IMAGE_KEY][tio.DATA], batch[LABEL_KEY][tio.DATA]) for batch in peeked]
        )
        total, count = (float(value) for value in reduce_sum(sums.sum(0).to(device), context).cpu())
        metadata["label_contrast"] = round(total / count, 4) if count else None
        if transfer and config.transfer.polarity != "keep":
            source = {"label_contrast": transfer.get("source_label_contrast"),
                      "contrast_agnostic": transfer.get("source_contrast_agnostic")}
            transfer["polarity"] = align_polarity(
                core, config.transfer, source, metadata["label_contrast"], peeked[0][IMAGE_KEY][tio.DATA].to(device)
            )
        batches = itertools.chain(peeked, batches)  # the peeked batches still train, in their order
    else:
        recorded = state.get("metadata", {})
        metadata["label_contrast"] = recorded.get("label_contrast")
        if transfer and "polarity" in recorded.get("transfer", {}):
            transfer["polarity"] = recorded["transfer"]["polarity"]
    try:
        while step < train_config.steps:
            fetch_started = time.perf_counter()
            if step % steps_per_epoch == 0 and step != start_step:
                batches = epoch_batches(step // steps_per_epoch)
            batch = next(batches)
            if config.transfer.mode == "progressive" and step > 0 and step % config.transfer.unfreeze_every == 0:
                logger.info("step %d: training %s", step, ", ".join(apply_freezing(core, config.transfer, step)))
            compute_started = time.perf_counter()
            wait_seconds += compute_started - fetch_started

            images = batch[IMAGE_KEY][tio.DATA].to(device, non_blocking=True)
            labels = batch[LABEL_KEY][tio.DATA].to(device, non_blocking=True).float()
            loss_value = train_step(
                network, images, labels, loss_function=loss_function, optimizer=optimizer, scaler=scaler,
                grad_clip=train_config.grad_clip, amp=use_amp, step=step, context=context,
            )
            scheduler.step()
            step += 1
            compute_seconds += time.perf_counter() - compute_started

            lr = float(optimizer.param_groups[0]["lr"])
            writer.add_scalar("train/loss", loss_value, step)
            writer.add_scalar("train/lr", lr, step)
            callback.on_step(step=step, loss=loss_value, lr=lr)

            if step % train_config.val_every == 0 or step == train_config.steps:
                writer.add_scalar("train/data_wait_fraction", wait_seconds / max(wait_seconds + compute_seconds, 1e-9), step)
                if validator is not None:
                    dice, preview = validator(unwrap(network))
                    writer.add_scalar("val/dice", dice, step)
                    if preview is not None:
                        writer.add_image("val/image_label_prediction", preview, step, dataformats="HW")
                    if best_dice is None or dice > best_dice:
                        best_dice, best_step = dice, step
                        if context.is_main:
                            save_checkpoint(checkpoint(), run_dir / "best.pt")
                    callback.on_validation(step=step, dice=dice, best=best_dice)
                if context.is_main:
                    save_checkpoint(checkpoint(), run_dir / "last.pt")
    finally:
        writer.close()
        callback.on_end()

    seconds = time.perf_counter() - started
    model_dir = run_dir / "model"
    if context.is_main:
        best = best_weights(run_dir, run_id)  # only this run's best.pt, never a stale one
        final = best if best is not None else unwrap(network).state_dict()
        metadata.update({"steps": step, "best_val_dice": best_dice, "best_step": best_step})
        save_model_folder(model_dir, final, config, metadata)
    steps_done = step - start_step
    return TrainResult(
        run_dir=run_dir,
        model_dir=model_dir,
        start_step=start_step,
        steps=step,
        best_val_dice=best_dice,
        best_step=best_step,
        seconds=seconds,
        seconds_per_step=(wait_seconds + compute_seconds) / max(steps_done, 1),
        data_wait_fraction=wait_seconds / max(wait_seconds + compute_seconds, 1e-9),
    )
