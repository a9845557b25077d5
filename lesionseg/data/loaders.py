"""Patch-based training data: a TorchIO ``Queue`` fed by a label sampler that oversamples the target."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchio as tio
from monai.data import ThreadDataLoader
from torch.utils.data import DataLoader

from lesionseg.constants import LABEL_KEY


def patch_queue(
    subjects: Sequence[tio.Subject] | tio.SubjectsDataset,
    *,
    transform: tio.Transform | None,
    patch_size: tuple[int, int, int],
    foreground_probability: float,
    samples_per_volume: int,
    queue_length: int,
    num_workers: int,
    seed: int,
    sampling_map: str | None = None,
) -> tio.Queue:
    """A :class:`torchio.Queue` of patches; a patch is centred on the target with ``foreground_probability``.

    Args:
        subjects: preprocessed subjects (image + label), or a dataset of them that applies its own transform
            (e.g. :class:`lesionseg.data.generated.GeneratedSubjects`).
        transform: augmentation applied to each subject before sampling (None for none); a given dataset keeps
            its own.
        patch_size: voxels along the RAS axes.
        foreground_probability: probability that a patch centre lies on label 1 (else on label 0).
        samples_per_volume: patches taken from each augmented subject.
        queue_length: patches held in memory.
        num_workers: processes loading and augmenting subjects.
        seed: seeds the order in which subjects are visited.
        sampling_map: name of an image whose values weight patch centres (TorchIO ``WeightedSampler``) instead
            of the label sampler, e.g. candidate lesions for false-positive reduction.
    """
    dataset = (
        subjects if isinstance(subjects, tio.SubjectsDataset) else tio.SubjectsDataset(list(subjects), transform=transform)
    )
    if sampling_map is not None:
        sampler: tio.data.PatchSampler = tio.WeightedSampler(patch_size=patch_size, probability_map=sampling_map)
    else:
        sampler = tio.LabelSampler(
            patch_size=patch_size,
            label_name=LABEL_KEY,
            label_probabilities={0: 1.0 - foreground_probability, 1: foreground_probability},
        )
    generator = torch.Generator().manual_seed(seed)
    subject_sampler = torch.utils.data.RandomSampler(dataset, replacement=False, generator=generator)
    return tio.Queue(
        dataset,
        max_length=queue_length,
        samples_per_volume=samples_per_volume,
        sampler=sampler,
        subject_sampler=subject_sampler,
        num_workers=num_workers,
        shuffle_subjects=False,
        shuffle_patches=True,
    )


def patch_loader(queue: tio.Queue, *, batch_size: int, pin_memory: bool, prefetch: int = 4) -> DataLoader:
    """Batches from a queue.

    A TorchIO queue must be read by a loader without worker processes; MONAI's ``ThreadDataLoader`` instead
    prepares up to ``prefetch`` batches in a background thread, so patch sampling overlaps the training
    step (torch releases the GIL during compute). ``prefetch=0`` reads synchronously.
    """
    if prefetch > 0:
        return ThreadDataLoader(
            queue, batch_size=batch_size, num_workers=0, pin_memory=pin_memory, buffer_size=prefetch, repeats=1
        )
    return DataLoader(queue, batch_size=batch_size, num_workers=0, pin_memory=pin_memory)
