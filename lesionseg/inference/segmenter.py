"""The one inference interface: a :class:`Segmenter` turns a loaded image into a :class:`Segmentation`.

The whole-image model (:class:`~lesionseg.inference.predictor.Predictor`, with or without a false-positive
filter) and the cascade (:class:`~lesionseg.inference.cascade.CascadePredictor`) both implement it; the batch
runner, the Python API, validation and the benchmark call only this. User options come in a frozen
:class:`InferenceSettings` handed to :meth:`Segmenter.with_settings`, which returns a new segmenter: a loaded
model's config is never written to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, Union

import nibabel as nib
import numpy as np

from lesionseg.config import CascadeConfig, InferConfig
from lesionseg.io.nifti import LoadedImage, mask_image

if TYPE_CHECKING:
    from lesionseg.inference.predictor import Prediction, Predictor
    from lesionseg.transforms.cropping import Box

#: What :meth:`Segmenter.segment` accepts.
ImageSource = Union[LoadedImage, str, Path, nib.spatialimages.SpatialImage, np.ndarray]


@dataclass(frozen=True)
class InferenceSettings:
    """What a user may choose at inference time; None keeps the model's own value.

    ``threshold``, ``overlap``, ``sw_batch_size``, ``precision``, ``memory_budget_mb``, ``min_lesion_mm3`` and
    ``tta`` are the ``infer`` keys of a model's config; ``min_cord_fraction`` and ``min_lesion_mm3`` also set the
    cascade's lesion rule, ``cord_clahe_clip_limit`` the cascade's equalisation of the cord model's input. Values
    are validated against the config's ranges when applied (:meth:`infer_config`).
    """

    threshold: float | None = None
    min_lesion_mm3: float | None = None
    min_cord_fraction: float | None = None
    overlap: float | None = None
    sw_batch_size: int | None = None
    precision: Literal["fp32", "bf16"] | None = None
    memory_budget_mb: float | None = None
    tta: bool | None = None
    cord_clahe_clip_limit: float | None = None

    def _given(self, keys: tuple[str, ...]) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if key in keys and value is not None}

    def infer_config(self, base: InferConfig) -> InferConfig:
        """``base`` with these settings applied (a new, validated object).

        Raises:
            pydantic.ValidationError: a value outside its range (e.g. a threshold of 2).
        """
        given = self._given(("threshold", "min_lesion_mm3", "overlap", "sw_batch_size", "precision", "memory_budget_mb",
                             "tta"))
        return InferConfig.model_validate({**base.model_dump(), **given}) if given else base

    def cascade_config(self, base: CascadeConfig) -> CascadeConfig:
        """``base`` with the lesion rule and cord equalisation of these settings (a new, validated object)."""
        given = self._given(("min_lesion_mm3", "min_cord_fraction", "cord_clahe_clip_limit"))
        return CascadeConfig.model_validate({**base.model_dump(), **given}) if given else base


@dataclass(frozen=True, eq=False)
class Segmentation:
    """One image's result, whatever the segmenter: the lesion prediction, the cord prediction (a cascade's), a
    warning when it fell back (e.g. no cord found), which lesion stage ran (``lesion``, ``lesion-<contrast>``;
    "" for a whole-image model), which cord stage (``cord``, ``cord-<contrast>``) and which lesions were kept, in
    words.

    ``lesion`` and ``cord`` hold canonical (RAS) arrays; the properties below give everything **on the input's
    own grid** (its shape and orientation), as arrays and as nibabel images with the input's affine.
    """

    lesion: Prediction
    cord: Prediction | None = None
    warning: str = ""
    lesion_stage: str = ""
    lesion_rule: str = ""
    box: Box | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    #: vertebral levels counted from the disc model's discs (canonical grid, cord voxels; None without a disc model)
    levels: np.ndarray | None = None
    cord_stage: str = ""

    @property
    def lesion_mask(self) -> np.ndarray:
        """uint8 0/1 lesion mask on the input's grid."""
        return self.lesion.geometry.to_native(self.lesion.mask)

    @property
    def lesion_probabilities(self) -> np.ndarray:
        """float32 lesion probabilities on the input's grid."""
        return self.lesion.geometry.to_native(self.lesion.probabilities)

    @property
    def cord_mask(self) -> np.ndarray | None:
        """uint8 0/1 cord mask on the input's grid (a cascade's), else None."""
        return self.cord.geometry.to_native(self.cord.mask) if self.cord is not None else None

    def lesion_image(self) -> nib.Nifti1Image:
        """The lesion mask as a nibabel image with the input's affine and qform/sform."""
        return mask_image(self.lesion.mask, self.lesion.geometry)

    def cord_image(self) -> nib.Nifti1Image | None:
        """The cord mask as a nibabel image (a cascade's), else None."""
        return mask_image(self.cord.mask, self.cord.geometry) if self.cord is not None else None

    def lesions(self, *, connectivity: int = 26) -> list[dict]:
        """One row per lesion, head to foot, as in ``<stem>_lesions.csv`` (position, morphometry, maximum
        probability; see ``docs/lesion-analysis.md``)."""
        from lesionseg.inference.lesions import lesion_table

        cord = self.cord.mask if self.cord is not None else None
        table = lesion_table(self.lesion.mask, self.lesion.affine, probabilities=self.lesion.probabilities,
                             cord=cord, connectivity=connectivity)
        return [asdict(row) for row in table.lesions]


class Segmenter(Protocol):
    """What every inference pipeline offers."""

    #: whether :meth:`segment` also gives a cord mask (the batch then writes ``<stem>_seg.nii.gz``)
    segments_cord: bool

    def segment(
        self, image: ImageSource, affine: np.ndarray | None = None, *, contrast: str | None = None
    ) -> Segmentation:
        """Segment one image: a loaded image, a path, a nibabel image, or an array with its ``affine``;
        ``contrast`` (``T2w``, ``T1w``, ``PSIR``, ...) overrides the one a file name declares."""
        ...

    def with_settings(self, settings: InferenceSettings) -> Segmenter:
        """A segmenter with the same networks and these user settings; this one is unchanged."""
        ...

    def lesion_for(self, contrast: str | None) -> Predictor:
        """The lesion model an image of ``contrast`` goes to (for its metadata: contrasts it was trained on)."""
        ...

    @property
    def stages(self) -> list[Predictor]:
        """Every network stage (localiser, cord, lesion models, false-positive filter), e.g. to time them."""
        ...
