"""What a run trains on: the split by subject, the training subjects (prepared once, or phantoms generated on
the fly), the patch pipeline, and the batches of each epoch.

Contract: :meth:`TrainingData.epoch_batches` is a pure function of (seed, epoch, rank), so a resumed run sees the
same data as an uninterrupted one (``skip`` drops the batches an interrupted epoch already trained on).
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchio as tio

from lesionseg.config import Config
from lesionseg.data.cache import load_prepared_subjects
from lesionseg.data.generated import GeneratedSubjects
from lesionseg.data.loaders import patch_loader, patch_queue
from lesionseg.data.subjects import label_path, load_subjects
from lesionseg.errors import ConfigError, TrainingError
from lesionseg.inference.predictor import Predictor
from lesionseg.io.atomic import atomic_write_text
from lesionseg.io.bids import Split, discover, split_subjects
from lesionseg.training.candidates import CANDIDATE_MAP_KEY, add_candidate_maps
from lesionseg.training.distributed import DistributedContext, shard_subjects
from lesionseg.transforms.augmentation import augmentation
from lesionseg.transforms.augmentation import RandomCropAroundLabel
from lesionseg.transforms.preprocessing import preprocessing

logger = logging.getLogger(__name__)


def seed_everything(seed: int, *, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; with ``deterministic`` also ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch's data (augmentation, subject order, patch sampling) on one rank."""
    return (seed * 1_000_003 + epoch + rank * 7_919) % 2**31


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


def run_split(config: Config, root: Path) -> Split:
    """The split a run uses: with ``randomize`` the dataset's (train + val) images only validate (training
    images are generated).

    Raises:
        TrainingError: no labelled image, or no training subject left.
        ConfigError: ``randomize`` with a false-positive-reduction model.
    """
    split = prepare_split(config, root)
    if config.randomize.enabled:
        if config.fp_reduction.first_model is not None:
            raise ConfigError("randomize.enabled cannot train a false-positive-reduction model (fp_reduction.first_model)")
        split = Split(train=(), val=(*split.train, *split.val), test=split.test)
    elif not split.train:
        raise TrainingError(f"{root}: the split left no training subject")
    logger.info("subjects: %d train, %d val, %d held out", len(split.train), len(split.val), len(split.test))
    return split


def write_split(split: Split, path: Path) -> None:
    """``split.json``: which images trained, validated and were held out."""
    payload = {name: [str(item.image) for item in getattr(split, name)] for name in ("train", "val", "test")}
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


@dataclass
class TrainingData:
    """The training side of a run; build it with :meth:`build`."""

    config: Config
    split: Split
    subjects: list[tio.Subject]
    #: the first-stage model a false-positive-reduction run samples candidates from, else None
    first: Predictor | None
    prepare: tio.Compose
    transform: tio.Compose
    extra_labels: tuple[str, ...]
    context: DistributedContext
    device: torch.device

    @classmethod
    def build(cls, config: Config, split: Split, device: torch.device, context: DistributedContext) -> TrainingData:
        """Load and prepare the training subjects (from the cache when it holds them) and the patch pipeline.

        Images are normalised whole, then (cascade) cropped: a crop's intensities do not depend on where its box
        falls, and inference normalises its crop with the whole image's statistics alike.
        """
        cascaded = config.cascade.enabled and config.data.target == "lesion"
        extra_labels: tuple[str, ...] = ("cord",) if cascaded else ()
        prepare = preprocessing(config.preprocess)
        first, subjects = None, []
        if config.randomize.enabled:
            logger.info("training on domain-randomised phantoms: %d new per epoch", config.randomize.subjects_per_epoch)
        elif config.fp_reduction.first_model is not None:
            first = Predictor.from_model(config.fp_reduction.first_model, device=str(device))
            subjects = load_subjects(split.train, config.data.target, extra_labels=extra_labels)
            subjects = [prepare(s) for s in add_candidate_maps(subjects, split.train, first, config)]
        else:
            description = json.dumps({"preprocess": config.preprocess.model_dump(mode="json"),
                                      "target": config.data.target, "extra_labels": extra_labels}, sort_keys=True)
            subjects = load_prepared_subjects(split.train, config.data.target, prepare, description=description,
                                              cache_dir=config.data.cache_dir, extra_labels=extra_labels)
        return cls(config, split, subjects, first, prepare, patch_transform(config, cascaded), extra_labels, context,
                   device)

    @property
    def subjects_per_rank(self) -> int:
        count = self.config.randomize.subjects_per_epoch if self.config.randomize.enabled else len(self.subjects)
        return math.ceil(count / self.context.world_size)

    @property
    def steps_per_epoch(self) -> int:
        train = self.config.train
        return math.ceil(self.subjects_per_rank * train.samples_per_volume / train.batch_size)

    def epoch_batches(self, epoch: int, skip: int = 0) -> Iterator[dict]:
        """The batches of one epoch on this rank; ``skip`` batches are drawn and dropped (resuming mid-epoch)."""
        train = self.config.train
        seed = epoch_seed(train.seed, epoch, self.context.rank)
        seed_everything(seed, deterministic=train.deterministic)
        queue = patch_queue(
            self.epoch_subjects(epoch, seed), transform=self.transform,
            sampling_map=CANDIDATE_MAP_KEY if self.first is not None else None, patch_size=train.patch_size,
            foreground_probability=train.foreground_probability, samples_per_volume=train.samples_per_volume,
            queue_length=train.queue_length, num_workers=train.num_workers, seed=seed,
        )
        loader = patch_loader(queue, batch_size=train.batch_size, pin_memory=self.device.type == "cuda",
                              prefetch=train.prefetch_batches)
        batches = iter(loader)
        for _ in range(skip):
            next(batches)
        return batches

    def epoch_subjects(self, epoch: int, seed: int) -> Sequence[tio.Subject] | tio.SubjectsDataset:
        """This rank's subjects of one epoch: new phantoms (the stream's seed is the epoch's), or its shard."""
        if self.config.randomize.enabled:
            return GeneratedSubjects(self.config.randomize, seed=seed, count=self.subjects_per_rank,
                                     target=self.config.data.target, prepare=self.prepare, transform=self.transform,
                                     extra_labels=self.extra_labels)
        shard = shard_subjects(len(self.subjects), epoch=epoch, seed=self.config.train.seed, context=self.context)
        return [self.subjects[index] for index in shard]


def patch_transform(config: Config, cascaded: bool) -> tio.Compose:
    """Crop around the cord (cascade; each face jittered, tolerating stage-1 errors), augment, then pad by half a
    patch: TorchIO samplers only centre patches where the whole patch fits, so every voxel, border lesions
    included, can be a centre (padding after augmenting is cheaper on the smaller volume)."""
    steps: list[tio.Transform] = []
    if cascaded:
        steps.append(RandomCropAroundLabel("cord", config.cascade.margin_mm, jitter_mm=config.cascade.jitter_mm))
    augment = augmentation(config.augment)
    if augment is not None:
        steps.append(augment)
    pad = tio.Pad(tuple(size // 2 for size in config.train.patch_size), padding_mode="minimum")
    return tio.Compose([*steps, pad])
