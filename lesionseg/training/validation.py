"""Validation on whole images through the same code paths as inference (plain, cascade, FP reduction).

Validation images are loaded once (canonical RAS, as inference loads them); each validation runs the
network being trained through :class:`~lesionseg.inference.predictor.Predictor` — inside a
:class:`~lesionseg.inference.cascade.CascadePredictor` when the run trains a cascaded lesion model, or a
:class:`~lesionseg.inference.fp_reduction.FalsePositiveFilter` when it trains a false-positive-reduction
network — and scores the thresholded mask with MONAI's Dice on the image's own grid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.metrics import compute_dice

from lesionseg.config import Config
from lesionseg.data.subjects import label_path
from lesionseg.inference.cascade import CascadePredictor, predict_cord
from lesionseg.inference.fp_reduction import FalsePositiveFilter
from lesionseg.inference.predictor import Prediction, Predictor
from lesionseg.io.bids import BidsImage
from lesionseg.training.distributed import DistributedContext, reduce_sum
from lesionseg.io.nifti import LoadedImage, load_image, load_label_for
from lesionseg.transforms.cropping import crop_box_around

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ValidationCase:
    """One validation image: canonical image and label, the cord mask for cascade crops, and the first-stage
    prediction when the run trains a false-positive-reduction network."""

    image: LoadedImage
    label: np.ndarray
    cord: np.ndarray | None = None
    first_stage: Prediction | None = None


def first_stage_prediction(first: Predictor, image: LoadedImage, cord: np.ndarray | None, threshold: float) -> Prediction:
    """The first lesion model's candidates on ``image`` (through its cascade when it was trained cascaded)."""
    if first.config.cascade.enabled and cord is not None:
        result = CascadePredictor(None, first, cascade=first.config.cascade).predict_loaded(image, cord_mask=cord)
        probabilities = result.lesion.probabilities
    else:
        probabilities, _ = first.predict_array(image.data, image.affine, image.contrast)
    mask = (probabilities >= threshold).astype(np.uint8)
    return Prediction(probabilities, mask, image.affine, image.geometry)


def build_validation_cases(
    items: Sequence[BidsImage], config: Config, device: torch.device, *, first: Predictor | None = None
) -> list[ValidationCase]:
    """Load validation images once and prepare what each validation pass needs."""
    cascade = config.cascade.enabled or (first is not None and first.config.cascade.enabled)
    cord_model = None
    if cascade and config.cascade.cord_model is not None:
        cord_model = Predictor.from_model(config.cascade.cord_model, device=str(device))
    elif cascade:
        logger.warning("cascade.cord_model is not set: validation crops use the ground-truth cord")
    cases = []
    for item in items:
        image = load_image(item.image)
        label = load_label_for(image, label_path(item, config.data.target)).data
        cord = None
        if cascade:
            if cord_model is not None:
                cord = predict_cord(cord_model, image).mask
            elif item.cord is not None:
                cord = load_label_for(image, item.cord).data
        first_stage = (
            first_stage_prediction(first, image, cord, config.fp_reduction.candidate_threshold) if first else None
        )
        cases.append(ValidationCase(image=image, label=label, cord=cord if config.cascade.enabled else None, first_stage=first_stage))
    return cases


class Validator:
    """Mean Dice of the network being trained over the validation cases, and a preview picture.

    When distributed, each rank holds its share of the cases and the Dice sums and counts are reduced across
    ranks, so every rank gets the mean over all cases.
    """

    def __init__(
        self, cases: list[ValidationCase], config: Config, device: torch.device, context: DistributedContext | None = None
    ) -> None:
        self.cases = cases
        self.config = config
        self.device = device
        self.context = context or DistributedContext()

    def predict(self, predictor: Predictor, case: ValidationCase) -> np.ndarray:
        """The mask the deployed pipeline would output for this case."""
        if case.first_stage is not None:
            box = (
                crop_box_around(case.cord, case.image.spacing_mm, self.config.cascade.margin_mm)
                if case.cord is not None
                else None
            )
            return FalsePositiveFilter(predictor)(case.image, case.first_stage, box=box).mask
        if case.cord is not None:
            cascade = CascadePredictor(None, predictor, cascade=self.config.cascade)
            return cascade.predict_loaded(case.image, cord_mask=case.cord).lesion.mask
        return predictor.predict_loaded(case.image).mask

    def __call__(self, network: torch.nn.Module) -> tuple[float, np.ndarray | None]:
        predictor = Predictor(network, self.config, device=self.device)
        preview = None
        totals = torch.zeros(2, dtype=torch.float64)  # sum of Dice, number of cases
        try:
            for index, case in enumerate(self.cases):
                mask = self.predict(predictor, case)
                dice = compute_dice(  # an empty label with an empty prediction counts as 1
                    torch.from_numpy(mask[None, None]).float(), torch.from_numpy(case.label[None, None]).float(),
                    include_background=True, ignore_empty=False,
                )
                totals += torch.tensor([float(dice.item()), 1.0], dtype=torch.float64)
                if index == 0:
                    preview = _preview(case.image.data, case.label, mask)
        finally:
            network.train()
        total, count = reduce_sum(totals, self.context).tolist()
        return (total / count if count else float("nan")), preview


def _preview(image: np.ndarray, label: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """A sagittal slice through the label's centre (or the middle): image | label | prediction, in [0, 1]."""
    columns = np.nonzero(label.sum(axis=(1, 2)))[0]
    x = int(round(columns.mean())) if len(columns) else image.shape[0] // 2
    picture = image[x].astype(np.float32)
    picture = (picture - picture.min()) / (picture.max() - picture.min() + 1e-6)
    row = np.concatenate([picture, label[x].astype(np.float32), prediction[x].astype(np.float32)], axis=0)
    return np.flipud(row.T)  # superior up
