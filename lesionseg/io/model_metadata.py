"""A model's metadata (``metadata.json``), typed: written by training, read through these accessors by
:mod:`lesionseg.io.checkpoint`, the predictors and transfer learning (as nnU-Net reads its plans through
``plans_handler``). Unknown keys are kept (newer versions may add some); known ones are validated on load."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelMetadata(BaseModel):
    """What the weights were trained for and on. Frozen: a loaded model's metadata never changes."""

    model_config = ConfigDict(frozen=True, extra="allow", protected_namespaces=())

    target: str | None = None
    contrasts: list[str] | None = None
    spacing_mm: list[float] | None = None
    orientation: str | None = None
    normalization: str | None = None
    contrast_normalization: dict[str, str] | None = None
    architecture: str | None = None
    in_channels: int | None = None
    out_channels: int | None = None
    #: trained on random intensities (no contrast in particular)
    contrast_agnostic: bool = False
    #: how much brighter than their surroundings the labels are in the training data (transfer's polarity)
    label_contrast: float | None = None
    steps: int | None = None
    best_val_dice: float | None = None
    best_step: int | None = None
    sha256: dict[str, str] = Field(default_factory=dict)
    lesionseg_version: str | None = None
    training_source: str | None = None
    data_root: str | None = None
    train_images: list[str] = Field(default_factory=list)
    val_images: list[str] = Field(default_factory=list)
    test_images: list[str] = Field(default_factory=list)
    created: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style read of any key, known or extra (for code that handles metadata generically)."""
        value = getattr(self, key, None)
        if value is None:
            value = (self.model_extra or {}).get(key)
        return default if value is None else value

    def recorded(self) -> set[str]:
        """The keys the file actually held (defaults left out)."""
        return set(self.model_fields_set) | set(self.model_extra or {})

    def as_dict(self) -> dict[str, Any]:
        """The metadata as written to ``metadata.json`` (only the keys it holds)."""
        return self.model_dump(mode="json", include=self.recorded())
