"""Training data of the false-positive-reduction network (Valverde et al. 2017): where the first network fires.

Each training subject gets a sampling map: the first network's candidate lesions (true and false) dilated by
``CONTEXT_MM``, plus the ground-truth lesions so that a subject the first network misses still teaches the
second one, weighted 1; every other voxel weighs ``BACKGROUND_WEIGHT`` so that the map never becomes empty
when augmentation moves a candidate at the border out of the field of view. Patch centres are drawn from
that map with TorchIO's ``WeightedSampler``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torchio as tio

from lesionseg.config import Config
from lesionseg.constants import LABEL_KEY
from lesionseg.inference.predictor import Predictor
from lesionseg.io.bids import BidsImage
from lesionseg.io.nifti import load_image, load_label_for
from lesionseg.training.validation import first_stage_prediction
from lesionseg.transforms.postprocessing import dilate_mm

logger = logging.getLogger(__name__)

CANDIDATE_MAP_KEY = "sampling_map"
CONTEXT_MM = 2.0
BACKGROUND_WEIGHT = 1e-3


def add_candidate_maps(
    subjects: list[tio.Subject], items: Sequence[BidsImage], first: Predictor, config: Config
) -> list[tio.Subject]:
    """Add a candidate sampling map to each subject (same order as ``items``); subjects with an empty map are
    dropped."""
    kept = []
    by_stem = {item.stem: item for item in items}
    candidates_total = 0
    for subject in subjects:
        item = by_stem[subject["stem"]]
        image = load_image(item.image)
        cord = load_label_for(image, item.cord).data if item.cord is not None else None
        first_stage = first_stage_prediction(first, image, cord, config.fp_reduction.candidate_threshold)
        candidates_total += int(first_stage.mask.any())
        weights = dilate_mm(first_stage.mask, image.spacing_mm, CONTEXT_MM) | (subject[LABEL_KEY].data[0].numpy() > 0)
        if not weights.any():
            continue
        sampling = np.where(weights > 0, 1.0, BACKGROUND_WEIGHT).astype(np.float32)
        subject.add_image(
            tio.Image(tensor=torch.from_numpy(sampling)[None], affine=image.affine, type=tio.SAMPLING_MAP),
            CANDIDATE_MAP_KEY,
        )
        kept.append(subject)
    logger.info("false-positive reduction: %d of %d subjects have first-stage candidates", candidates_total, len(subjects))
    return kept
