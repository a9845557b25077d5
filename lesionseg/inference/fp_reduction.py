"""Second-stage false-positive reduction (Valverde et al. 2017).

A second network, trained on patches centred on the first network's candidate lesions (true and false),
looks at each candidate again; a candidate survives when the second network's mean probability over its voxels
reaches ``fp_reduction.accept_threshold``. The final mask keeps the candidates both networks accept.
"""

from __future__ import annotations

import numpy as np

from lesionseg.inference.predictor import Prediction, Predictor
from lesionseg.io.nifti import LoadedImage
from lesionseg.transforms.cropping import Box
from lesionseg.transforms.postprocessing import label_components


class FalsePositiveFilter:
    """Keeps the candidate lesions the second-stage network accepts.

    The second network runs once over the region the first stage searched (the cascade's crop, or the whole
    image), with the same preprocessing as in its training, and each candidate is scored by its mean
    probability.
    """

    def __init__(self, second: Predictor, *, accept_threshold: float | None = None) -> None:
        self.second = second
        self.accept_threshold = (
            accept_threshold if accept_threshold is not None else second.config.fp_reduction.accept_threshold
        )

    def scores(self, image: LoadedImage, mask: np.ndarray, *, box: Box | None = None) -> tuple[np.ndarray, list[float]]:
        """Component labels of ``mask`` and the second network's mean probability on each (1..N)."""
        labels, count = label_components(mask)
        if count == 0:
            return labels, []
        probabilities, _, _ = self.second.predict_region(image, box)
        sums = np.bincount(labels.ravel(), weights=probabilities.ravel(), minlength=count + 1)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        return labels, [float(sums[i] / sizes[i]) for i in range(1, count + 1)]

    def __call__(self, image: LoadedImage, prediction: Prediction, *, box: Box | None = None) -> Prediction:
        """The prediction without the candidates the second network rejects; ``box``: the region searched."""
        labels, scores = self.scores(image, prediction.mask, box=box)
        accepted = np.zeros(len(scores) + 1, dtype=bool)
        accepted[1:] = np.asarray(scores, dtype=float) >= self.accept_threshold
        keep = accepted[labels]
        return Prediction(
            probabilities=np.where(keep, prediction.probabilities, 0.0).astype(np.float32),
            mask=keep.astype(np.uint8),
            affine=prediction.affine,
            geometry=prediction.geometry,
            seconds=dict(prediction.seconds),
        )
