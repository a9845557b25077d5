"""The one inference interface: a :class:`Segmenter` turns a loaded image into a :class:`Segmentation`.

The whole-image model (:class:`~lesionseg.inference.predictor.Predictor`, with or without a false-positive
filter) and the cascade (:class:`~lesionseg.inference.cascade.CascadePredictor`) both implement it; the batch
runner, the Python API, validation and the benchmark call only this. User options come in a frozen
:class:`InferenceSettings` handed to :meth:`Segmenter.with_settings`, which returns a new segmenter: a loaded
model's config is never written to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from lesionseg.config import CascadeConfig, InferConfig

if TYPE_CHECKING:
    from lesionseg.inference.predictor import Prediction, Predictor
    from lesionseg.io.nifti import LoadedImage
    from lesionseg.transforms.cropping import Box


@dataclass(frozen=True)
class InferenceSettings:
    """What a user may choose at inference time; None keeps the model's own value.

    ``threshold``, ``overlap``, ``sw_batch_size``, ``precision``, ``memory_budget_mb`` and ``min_lesion_mm3`` are
    the ``infer`` keys of a model's config; ``min_cord_fraction`` and ``min_lesion_mm3`` also set the cascade's
    lesion rule. Values are validated against the config's ranges when applied (:meth:`infer_config`).
    """

    threshold: float | None = None
    min_lesion_mm3: float | None = None
    min_cord_fraction: float | None = None
    overlap: float | None = None
    sw_batch_size: int | None = None
    precision: Literal["fp32", "bf16"] | None = None
    memory_budget_mb: float | None = None

    def _given(self, keys: tuple[str, ...]) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if key in keys and value is not None}

    def infer_config(self, base: InferConfig) -> InferConfig:
        """``base`` with these settings applied (a new, validated object).

        Raises:
            pydantic.ValidationError: a value outside its range (e.g. a threshold of 2).
        """
        given = self._given(("threshold", "min_lesion_mm3", "overlap", "sw_batch_size", "precision", "memory_budget_mb"))
        return InferConfig.model_validate({**base.model_dump(), **given}) if given else base

    def cascade_config(self, base: CascadeConfig) -> CascadeConfig:
        """``base`` with the lesion rule of these settings (a new, validated object)."""
        given = self._given(("min_lesion_mm3", "min_cord_fraction"))
        return CascadeConfig.model_validate({**base.model_dump(), **given}) if given else base


@dataclass(frozen=True, eq=False)
class Segmentation:
    """One image's result, whatever the segmenter: the lesion prediction, the cord prediction (a cascade's), a
    warning when it fell back (e.g. no cord found), which lesion stage ran (``lesion``, ``lesion-<contrast>``;
    "" for a whole-image model) and which lesions were kept, in words."""

    lesion: Prediction
    cord: Prediction | None = None
    warning: str = ""
    lesion_stage: str = ""
    lesion_rule: str = ""
    box: Box | None = None
    seconds: dict[str, float] = field(default_factory=dict)


class Segmenter(Protocol):
    """What every inference pipeline offers."""

    #: whether :meth:`segment` also gives a cord mask (the batch then writes ``<stem>_seg.nii.gz``)
    segments_cord: bool

    def segment(self, image: LoadedImage) -> Segmentation:
        """Segment one loaded image (canonical grid in, canonical grid out; outputs map back with its geometry)."""
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
