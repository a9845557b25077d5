"""Training subjects generated on the fly: domain-randomised phantoms as a TorchIO dataset.

A :class:`GeneratedSubjects` renders subject ``i`` when it is asked for it (in the patch queue's worker
processes), from the seed ``(seed, i)``: an epoch of a run is reproducible, and every epoch sees new
phantoms when its seed changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import torch
import torchio as tio

from lesionseg.config import RandomizeConfig, Target
from lesionseg.constants import IMAGE_KEY, LABEL_KEY
from lesionseg.synth.randomized import random_phantom


def generated_subject(
    config: RandomizeConfig,
    seed: int,
    index: int,
    target: Target,
    extra_labels: Sequence[Target] = (),
) -> tio.Subject:
    """Phantom ``index`` of the stream ``seed`` as a subject like :func:`lesionseg.data.subjects.load_subject`'s
    (RAS image, ``label`` for ``target``, extra label maps under their own names; it has no contrast, so the
    config's default normalisation applies; ``phantom``: what was drawn, as JSON)."""
    phantom = random_phantom(
        np.random.default_rng([seed, index]),
        p_known_contrast=config.p_known_contrast,
        contrasts=config.contrasts,
        max_lesions=config.max_lesions,
        p_no_lesion=config.p_no_lesion,
        max_mimics=config.max_mimics,
        p_whole_fov=config.p_whole_fov,
        p_top_of_spine=config.p_top_of_spine,
        p_conus=config.p_conus,
    )
    masks = {"lesion": phantom.lesion, "cord": phantom.cord, "disc": phantom.disc, "c2": phantom.c2}
    labels = {
        key: tio.LabelMap(tensor=torch.from_numpy(masks[name])[None], affine=phantom.affine)
        for key, name in ((LABEL_KEY, target), *((extra, extra) for extra in extra_labels))
    }
    return tio.Subject(
        {
            IMAGE_KEY: tio.ScalarImage(tensor=torch.from_numpy(phantom.image)[None], affine=phantom.affine),
            **labels,
            "stem": f"randomized-{seed}-{index}",
            "subject": f"randomized-{seed}-{index}",
            "contrast": "",  # none: the config's default normalisation (a string, so that batches collate)
            "phantom": json.dumps(phantom.description),
        }
    )


class GeneratedSubjects(tio.SubjectsDataset):
    """``count`` domain-randomised subjects of the stream ``seed``, each prepared (``prepare``: resampling and
    normalisation, as for loaded images) and then passed through ``transform`` (augmentation)."""

    def __init__(
        self,
        config: RandomizeConfig,
        *,
        seed: int,
        count: int,
        target: Target,
        prepare: tio.Transform,
        transform: tio.Transform | None = None,
        extra_labels: Sequence[Target] = (),
    ) -> None:
        # no list of subjects to parse: they do not exist until asked for
        self.config = config
        self.seed = seed
        self.count = count
        self.target = target
        self.prepare = prepare
        self.extra_labels = tuple(extra_labels)
        self.load_getitem = False
        self.set_transform(transform)

    def __len__(self) -> int:
        return self.count

    def dry_iter(self) -> list[object]:
        """Placeholders for the subjects, not rendered: TorchIO's queue only counts each one's patches (every
        subject gets ``samples_per_volume``)."""
        return [object() for _ in range(self.count)]

    def __getitem__(self, index: int) -> tio.Subject:
        if not 0 <= int(index) < self.count:
            raise IndexError(f"subject {index} of {self.count}")
        subject = self.prepare(generated_subject(self.config, self.seed, int(index), self.target, self.extra_labels))
        return self._transform(subject) if self._transform is not None else subject
