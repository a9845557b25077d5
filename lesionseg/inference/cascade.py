"""The cascade (Gros et al. 2019): segment the cord, crop around it, segment lesions in the crop only.

Steps for one image (all on the canonical RAS grid of the input; outputs then go back to the native grid):

0. with a cord localiser (a bundle's ``localizer/``, a cord model at a coarse grid trained on whole fields of
   view), the localiser's largest cord component near the body's midline, grown by
   ``cascade.localizer_margin_mm``, bounds the box in
   which the cord model runs; that box is normalised on its own, as the cord model's small training images were
   (as Spinal Cord Toolbox finds the cord before ``sct_deepseg_lesion``);
1. the cord model predicts the cord (in that box, else on the whole image); its largest connected component is
   kept (the contrast-specific cord model of the image's contrast when the cascade has one, e.g. ``cord-T2starw/``
   in a bundle, as Spinal Cord Toolbox's ``sct_deepseg_sc -c t2s``);
2. a box around that cord grown by ``cascade.margin_mm`` is cropped from the image;
3. the lesion model predicts lesions in the crop, pasted back into a full-size map (the contrast-specific lesion
   model of the image's contrast when the cascade has one, e.g. ``lesion-PSIR/`` in a bundle; the contrast comes
   from the file's BIDS suffix or ``--contrast``);
4. lesions are kept only inside the cord dilated by ``cascade.cord_dilation_mm`` (``restrict_to_cord``);
5. optionally a false-positive-reduction network removes candidate lesions it does not accept.

When no cord is found, the lesion model runs on the whole image and the prediction carries a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from lesionseg.analysis.discs import vertebral_levels
from lesionseg.config import CascadeConfig
from lesionseg.errors import ModelError
from lesionseg.inference.fp_reduction import FalsePositiveFilter
from lesionseg.inference.lesions import keep_lesions_in_cord, remove_small_lesions
from lesionseg.inference.predictor import Prediction, Predictor, load_timed
from lesionseg.inference.segmenter import ImageSource, InferenceSettings, Segmentation
from lesionseg.io.checkpoint import CONTRAST_STAGE_PREFIX, CORD_CONTRAST_PREFIX, contrast_stages
from lesionseg.io.nifti import LoadedImage, as_loaded_image
from lesionseg.transforms.cropping import Box, box_slices, crop_affine, crop_box_around
from lesionseg.transforms.normalization import equalize_slices
from lesionseg.transforms.postprocessing import dilate_mm, keep_largest_component, label_components

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class CascadePrediction:
    """Cord and lesion predictions of one image, the crop used, a warning when the cascade fell back, and the
    contrast whose lesion stage ran (``""``: the general one)."""

    cord: Prediction
    lesion: Prediction
    box: Box | None
    warning: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    lesion_contrast: str = ""
    #: the contrast whose cord stage ran (``""``: the general one)
    cord_contrast: str = ""
    #: the rule that decided which lesions were kept, for summaries and reports
    lesion_rule: str = ""
    #: the disc model's discs and the vertebral levels counted from them (cord voxels; a cascade with ``discs/``)
    discs: Prediction | None = None
    levels: np.ndarray | None = None


def body_midline_index(data: np.ndarray) -> float:
    """Left-right voxel index (canonical ``X``) of the body's mid-sagittal plane: the centroid along ``X`` of the
    voxels brighter than the image's mean."""
    profile = (data > data.mean()).sum(axis=(1, 2)).astype(float)
    return float((np.arange(len(profile)) * profile).sum() / max(profile.sum(), 1.0))


#: a localiser component near the midline is a candidate for the cord when it has at least this share of the
#: largest such component's voxels
MIN_CANDIDATE_SHARE = 0.5
#: components whose in-plane centroids lie this close (mm) to the chosen one's are pieces of the same tube
SAME_TUBE_MM = 10.0
#: the disc model runs in the cord's box grown by this (mm; R, A, S): the discs lie in front of the cord
DISC_MARGIN_MM = (40.0, 50.0, 10.0)


def component_near_midline(
    mask: np.ndarray, data: np.ndarray, spacing_mm: tuple[float, float, float], max_offset_mm: float | None
) -> np.ndarray:
    """The cord among the connected components of a localiser's ``mask``: of the components whose centroid lies
    within ``max_offset_mm`` (left-right) of the body's midline (:func:`body_midline_index`) and that have at
    least :data:`MIN_CANDIDATE_SHARE` of the largest one's voxels, the most posterior (canonical ``Y``), joined by
    the near-midline components whose in-plane centroid lies within :data:`SAME_TUBE_MM` of it (a cord the
    localiser found in pieces). The cord runs in the mid-sagittal plane, the jugular veins and carotids 20-35 mm
    beside it; the airway and the oesophagus, also on the midline, lie in front of the spine. The largest
    component overall when none is that close, or ``max_offset_mm`` is None."""
    labels, count = label_components(mask)
    if count <= 1 or max_offset_mm is None:
        return keep_largest_component(mask)
    index = np.arange(1, count + 1)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:].astype(float)
    centres = np.array(ndimage.center_of_mass(labels > 0, labels, index))
    near = np.abs(centres[:, 0] - body_midline_index(data)) * spacing_mm[0] <= max_offset_mm
    if not near.any():
        return (labels == index[np.argmax(sizes)]).astype(np.uint8)
    candidates = near & (sizes >= MIN_CANDIDATE_SHARE * sizes[near].max())
    chosen = int(np.argmin(np.where(candidates, centres[:, 1], np.inf)))
    offsets_mm = (centres[:, :2] - centres[chosen, :2]) * np.asarray(spacing_mm[:2])
    same_tube = near & (np.hypot(offsets_mm[:, 0], offsets_mm[:, 1]) <= SAME_TUBE_MM)
    return np.isin(labels, index[same_tube]).astype(np.uint8)


def predict_cord(
    cord: Predictor, image: LoadedImage, localizer: Predictor | None = None,
    cascade: CascadeConfig | None = None,
) -> Prediction:
    """A cord model's prediction on ``image``, reduced to its largest connected component.

    With a ``localizer``, its finding (:func:`component_near_midline`) grown by ``cascade.localizer_margin_mm``
    bounds the box in which the cord model runs (normalised on its own), and the cord model's cord is kept only
    within ``cascade.localizer_dilation_mm`` (in-plane) of the finding's slices, extended through the box along the
    superior axis, so the cord model can continue the cord on slices the localiser missed: the localiser says which
    tube is the cord, the cord model delineates it. When the localiser finds nothing, the cord model runs on the
    whole image. With ``cascade.cord_clahe_clip_limit``, each axial slice of the box (or image) is equalised on its
    own first (:func:`~lesionseg.transforms.normalization.equalize_slices`).
    """
    cascade = cascade or CascadeConfig()
    found = None
    if localizer is not None:
        found = component_near_midline(localizer.predict_loaded(image).mask, image.data, image.spacing_mm,
                                       cascade.localizer_midline_mm)
    box = crop_box_around(found, image.spacing_mm, cascade.localizer_margin_mm) if found is not None else None
    if box is None:
        probabilities, _, seconds = cord.predict_array_with_variance(
            _cord_input(image.data, cascade), image.affine, image.contrast)
    else:
        region = box_slices(box)
        part, _, seconds = cord.predict_array_with_variance(
            _cord_input(image.data[region], cascade), crop_affine(image.affine, box), image.contrast)
        near = dilate_mm(found[region], image.spacing_mm, cascade.localizer_dilation_mm).any(axis=2, keepdims=True)
        part *= near
        probabilities = np.zeros(image.data.shape, dtype=np.float32)
        probabilities[region] = part
    largest = keep_largest_component(cord.threshold(probabilities, image.spacing_mm))
    return Prediction(probabilities * largest, largest, image.affine, image.geometry, seconds)


def _cord_input(data: np.ndarray, cascade: CascadeConfig) -> np.ndarray:
    """What the cord model runs on: ``data`` (the localiser's box, else the whole image), each axial slice equalised
    on its own when ``cascade.cord_clahe_clip_limit`` is set."""
    if cascade.cord_clahe_clip_limit is None:
        return np.ascontiguousarray(data)
    return equalize_slices(data, cascade.cord_clahe_clip_limit)


class CascadePredictor:
    """Cord model -> crop -> lesion model (-> false-positive filter): a
    :class:`~lesionseg.inference.segmenter.Segmenter`.

    ``lesion_by_contrast`` holds lesion models of one contrast each (e.g. fine-tuned on PSIR); an image of such
    a contrast goes to its own model, any other image to ``lesion``. ``cord_by_contrast`` does the same for the
    cord model (the localiser stays the same for every contrast).
    """

    segments_cord = True

    def __init__(
        self,
        cord: Predictor | None,
        lesion: Predictor,
        *,
        cascade: CascadeConfig | None = None,
        fp_filter: FalsePositiveFilter | None = None,
        lesion_by_contrast: Mapping[str, Predictor] | None = None,
        localizer: Predictor | None = None,
        discs: Predictor | None = None,
        c2: Predictor | None = None,
        cord_by_contrast: Mapping[str, Predictor] | None = None,
    ) -> None:
        self.cord = cord
        self.cord_by_contrast = dict(cord_by_contrast or {})
        #: Optional stage 0: a coarse cord model that bounds where the cord model runs.
        self.localizer = localizer
        #: Optional: a disc model and a C2 model, run around the cord; the vertebral levels are counted from the
        #: discs, named from C2 (both or neither).
        self.discs = discs
        self.c2 = c2
        self.lesion = lesion
        self.cascade = cascade or lesion.config.cascade
        self.fp_filter = fp_filter
        self.lesion_by_contrast = dict(lesion_by_contrast or {})

    def with_settings(self, settings: InferenceSettings) -> CascadePredictor:
        """The same networks with the user's settings: all of them to the lesion models, the lesion rule to the
        cascade, the precision and memory budget to every stage (this cascade is unchanged)."""
        speed = InferenceSettings(precision=settings.precision, memory_budget_mb=settings.memory_budget_mb)
        fp_filter = None
        if self.fp_filter is not None:
            fp_filter = FalsePositiveFilter(self.fp_filter.second.with_settings(speed),
                                            accept_threshold=self.fp_filter.accept_threshold)
        return CascadePredictor(
            self.cord.with_settings(speed) if self.cord is not None else None,
            self.lesion.with_settings(settings),
            cascade=settings.cascade_config(self.cascade),
            fp_filter=fp_filter,
            lesion_by_contrast={c: m.with_settings(settings) for c, m in self.lesion_by_contrast.items()},
            localizer=self.localizer.with_settings(speed) if self.localizer is not None else None,
            discs=self.discs.with_settings(speed) if self.discs is not None else None,
            c2=self.c2.with_settings(speed) if self.c2 is not None else None,
            cord_by_contrast={c: m.with_settings(speed) for c, m in self.cord_by_contrast.items()},
        )

    @property
    def stages(self) -> list[Predictor]:
        """Every network: localiser, cord models, lesion models, false-positive filter, disc and C2 models (those
        present)."""
        second = self.fp_filter.second if self.fp_filter is not None else None
        stages = (self.localizer, self.cord, *self.cord_by_contrast.values(), *self.lesion_stages, second, self.discs,
                  self.c2)
        return [stage for stage in stages if stage is not None]

    def segment(
        self, image: ImageSource, affine: np.ndarray | None = None, *, contrast: str | None = None
    ) -> Segmentation:
        """:meth:`predict_loaded` on any image source (a loaded image, a path, a nibabel image, or an array with
        its ``affine``; ``contrast`` overrides the file name's), as a
        :class:`~lesionseg.inference.segmenter.Segmentation`."""
        result = self.predict_loaded(as_loaded_image(image, affine, contrast=contrast))
        stage = f"{CONTRAST_STAGE_PREFIX}{result.lesion_contrast}" if result.lesion_contrast else "lesion"
        cord_stage = f"{CORD_CONTRAST_PREFIX}{result.cord_contrast}" if result.cord_contrast else "cord"
        return Segmentation(lesion=result.lesion, cord=result.cord, warning=result.warning, lesion_stage=stage,
                            cord_stage=cord_stage if self.cord is not None else "",
                            lesion_rule=result.lesion_rule, box=result.box, seconds=dict(result.seconds),
                            levels=result.levels)

    @property
    def lesion_stages(self) -> list[Predictor]:
        """Every lesion model: the general one first, then the contrast-specific ones."""
        return [self.lesion, *self.lesion_by_contrast.values()]

    def lesion_for(self, contrast: str | None) -> Predictor:
        """The lesion model for an image of ``contrast``: its contrast-specific model, else the general one."""
        return self.lesion_by_contrast.get(contrast or "", self.lesion)

    def cord_for(self, contrast: str | None) -> Predictor | None:
        """The cord model for an image of ``contrast``: its contrast-specific model, else the general one."""
        return self.cord_by_contrast.get(contrast or "", self.cord)

    @classmethod
    def from_models(
        cls,
        cord_model: str | Path,
        lesion_model: str | Path | list[str | Path],
        *,
        device: str = "auto",
        fp_model: str | Path | None = None,
        tta: bool | None = None,
        engine: str = "auto",
        lesion_by_contrast: Mapping[str, str | Path] | None = None,
        localizer_model: str | Path | None = None,
        discs_model: str | Path | None = None,
        c2_model: str | Path | None = None,
        cord_by_contrast: Mapping[str, str | Path] | None = None,
    ) -> CascadePredictor:
        """Load the models (the optional false-positive-reduction model, contrast-specific lesion and cord models,
        cord localiser, disc and C2 models too) safely.

        Raises:
            ModelError: unreadable models, a model of the wrong target (e.g. a cord model as the lesion model), a
                contrast-specific model of the wrong target or trained on other contrasts, or a disc model without
                a C2 model.
        """
        if (discs_model is None) != (c2_model is None):
            raise ModelError(f"{discs_model or c2_model}: the vertebral levels need both a disc and a C2 model")
        cord = Predictor.from_model(cord_model, device=device, engine=engine)
        lesion = Predictor.from_model(lesion_model, device=device, tta=tta, engine=engine)
        first_lesion = lesion_model[0] if isinstance(lesion_model, list) else lesion_model
        by_contrast = _contrast_models(lesion_by_contrast or {}, "lesion", device=device, tta=tta, engine=engine)
        cords = _contrast_models(cord_by_contrast or {}, "cord", device=device, tta=tta, engine=engine)
        localizer = Predictor.from_model(localizer_model, device=device, engine=engine) if localizer_model else None
        discs = Predictor.from_model(discs_model, device=device, engine=engine) if discs_model else None
        c2 = Predictor.from_model(c2_model, device=device, engine=engine) if c2_model else None
        checks = [("cord", cord, cord_model), ("lesion", lesion, first_lesion)]
        checks += [("cord", localizer, localizer_model)] if localizer is not None else []
        checks += [("disc", discs, discs_model), ("c2", c2, c2_model)] if discs is not None else []
        for role, predictor, path in checks:
            _check_target(predictor, role, path, " (order: CORD LESION)")
        fp_filter = FalsePositiveFilter(Predictor.from_model(fp_model, device=device, engine=engine)) if fp_model else None
        return cls(cord, lesion, fp_filter=fp_filter, lesion_by_contrast=by_contrast, localizer=localizer, discs=discs,
                   c2=c2, cord_by_contrast=cords)

    def predict_cord(self, image: LoadedImage) -> Prediction:
        """The cord model's prediction, reduced to its largest connected component.

        Raises:
            ValueError: when this cascade has no cord model (it was built to receive cord masks).
        """
        if self.cord is None:
            raise ValueError("this cascade has no cord model; pass cord_mask")
        return predict_cord(self.cord_for(image.contrast), image, self.localizer, self.cascade)

    def predict_loaded(self, image: LoadedImage, *, cord_mask: np.ndarray | None = None) -> CascadePrediction:
        """Run the cascade on a loaded image; ``cord_mask`` (canonical grid) skips the cord model.

        Raises:
            InputError: a stage's working grid of the whole image would be too large (any stage may run on the
                whole image: the lesion stage does when no cord is found).
        """
        for stage in self.stages:
            stage.check_working_grid(image)
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        if cord_mask is None:
            cord = self.predict_cord(image)
        else:
            mask = keep_largest_component(cord_mask)
            cord = Prediction(mask.astype(np.float32), mask, image.affine, image.geometry)
        seconds["cord"] = time.perf_counter() - started

        started = time.perf_counter()
        box = crop_box_around(cord.mask, image.spacing_mm, self.cascade.margin_mm)
        warning = ""
        if box is None:
            warning = "no cord found; lesions searched in the whole image"
            logger.debug("%s: %s", image.path, warning)  # in the result's warning, reported by the caller
        lesion_model = self.lesion_for(image.contrast)
        # a crop is normalised with the whole image's statistics, as in training (normalise, then crop)
        probabilities, variance, _ = lesion_model.predict_region(image, box)
        if box is not None and self.cascade.restrict_to_cord:
            # only inside the crop: outside it probabilities are 0 already, and dilating the whole volume
            # costs as much as the lesion network on a large scan
            crop = box_slices(box)
            probabilities[crop] *= dilate_mm(cord.mask[crop], image.spacing_mm, self.cascade.cord_dilation_mm)
        mask = self.lesion_rules(lesion_model.threshold(probabilities, image.spacing_mm), cord.mask, image.spacing_mm)
        lesion = Prediction(probabilities, mask, image.affine, image.geometry, variance=variance)
        seconds["lesion"] = time.perf_counter() - started

        if self.fp_filter is not None:
            started = time.perf_counter()
            lesion = self.fp_filter(image, lesion, box=box)
            seconds["fp_reduction"] = time.perf_counter() - started
        lesion_contrast = str(image.contrast) if lesion_model is not self.lesion else ""
        own_cord = cord_mask is None and self.cord_for(image.contrast) is not self.cord
        cord_contrast = str(image.contrast) if own_cord else ""
        started = time.perf_counter()
        discs, levels = self.predict_levels(image, cord.mask)
        if self.discs is not None:
            seconds["discs"] = time.perf_counter() - started
        return CascadePrediction(cord=cord, lesion=lesion, box=box, warning=warning, seconds=seconds,
                                 lesion_contrast=lesion_contrast, cord_contrast=cord_contrast,
                                 lesion_rule=self.lesion_rule, discs=discs,
                                 levels=levels)

    def predict_levels(self, image: LoadedImage, cord: np.ndarray) -> tuple[Prediction | None, np.ndarray | None]:
        """The disc model's discs in a box around the cord (:data:`DISC_MARGIN_MM`), and the cord's voxels labelled
        with the vertebral level counted from them and named from C2 (the C2 model's, same box;
        :mod:`lesionseg.analysis.discs`); (None, None) without the two models or a cord, no levels without C2."""
        ready = self.discs is not None and self.c2 is not None
        box = crop_box_around(cord, image.spacing_mm, DISC_MARGIN_MM) if ready else None
        if box is None:
            return None, None
        (probabilities, discs), (_, c2) = (_region_mask(model, image, box) for model in (self.discs, self.c2))
        _, levels = vertebral_levels(discs, c2, cord, image.spacing_mm)
        return Prediction(probabilities, discs, image.affine, image.geometry), levels if levels.any() else None

    @property
    def lesion_rule(self) -> str:
        """Which lesions this cascade keeps and how it found them, in words (in the summary and the report)."""
        rule = f"lesions > {self.cascade.min_lesion_mm3:g} mm3"
        if self.cascade.min_cord_fraction > 0:
            rule += f" with >= {self.cascade.min_cord_fraction:.0%} of their voxels inside the cord mask"
        if self.lesion.tta:
            rule += "; lesion probabilities averaged over the 8 mirrorings (flip TTA)"
        if (clip := self.cascade.cord_clahe_clip_limit) is not None:
            rule += f"; cord found on axial slices equalised by CLAHE (clip limit {clip:g})"
        return rule

    def lesion_rules(self, mask: np.ndarray, cord: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
        """The lesions of ``mask`` that pass :attr:`lesion_rule` (inside the cord, large enough); with no cord
        found, only the size rule applies."""
        if cord.any():
            mask = keep_lesions_in_cord(mask, cord, min_fraction=self.cascade.min_cord_fraction)
        return remove_small_lesions(mask, spacing_mm, self.cascade.min_lesion_mm3)

    def predict(self, path: str | Path) -> CascadePrediction:
        """Load, validate and run the cascade on one NIfTI file.

        Raises:
            InputError: the file fails validation.
        """
        image, load_seconds = load_timed(path)
        result = self.predict_loaded(image)
        result.seconds["load"] = load_seconds
        return result


def load_pipeline(
    model: str | Path | list[str | Path] | None = None,
    *,
    cascade: tuple[str | Path, str | Path] | None = None,
    fp_model: str | Path | None = None,
    device: str = "auto",
    tta: bool | None = None,
    engine: str = "auto",
) -> Predictor | CascadePredictor:
    """The segmenter ``lesionseg infer`` runs: the one place that decides the pipeline's kind.

    - ``cascade=(cord_model, lesion_model)``: a :class:`CascadePredictor` (extra ``model`` paths join the lesion
      model as an ensemble);
    - ``model`` a cascade bundle (a folder with ``cord/`` and ``lesion/`` model folders, optionally ``fp/``,
      contrast-specific lesion and cord models ``lesion-<contrast>/`` and ``cord-<contrast>/``, a cord localiser
      ``localizer/``, and a disc model ``discs/`` with a C2 model ``c2/`` for the vertebral levels): a
      :class:`CascadePredictor`;
    - otherwise ``model`` is one whole-image model, or several (an ensemble).

    Raises:
        ModelError: unreadable models.
        ValueError: neither ``model`` nor ``cascade`` given.
    """
    models = [] if model is None else ([model] if isinstance(model, str | Path) else list(model))
    if cascade is not None:
        return CascadePredictor.from_models(
            cascade[0], [cascade[1], *models], device=device, fp_model=fp_model, tta=tta, engine=engine
        )
    if not models:
        raise ValueError("give a model or a cascade")
    bundle = Path(models[0])
    if len(models) == 1 and (bundle / "cord").is_dir() and (bundle / "lesion").is_dir():
        bundled_fp = bundle / "fp" if (bundle / "fp").is_dir() else None
        return CascadePredictor.from_models(
            bundle / "cord", bundle / "lesion", device=device, fp_model=fp_model or bundled_fp, tta=tta, engine=engine,
            lesion_by_contrast=contrast_stages(bundle),
            cord_by_contrast=contrast_stages(bundle, CORD_CONTRAST_PREFIX),
            localizer_model=bundle / "localizer" if (bundle / "localizer").is_dir() else None,
            discs_model=bundle / "discs" if (bundle / "discs").is_dir() else None,
            c2_model=bundle / "c2" if (bundle / "c2").is_dir() else None,
        )
    predictor = Predictor.from_model(models, device=device, tta=tta, engine=engine)
    if fp_model is not None:
        predictor.candidate_filter = FalsePositiveFilter(Predictor.from_model(fp_model, device=device, engine=engine))
    return predictor


def _check_target(predictor: Predictor, role: str, path: str | Path, hint: str = "") -> None:
    """Refuse a model of another target than ``role`` (e.g. a lesion model as the cord model).

    Raises:
        ModelError: naming the file and both targets.
    """
    target = predictor.config.data.target
    if target != role:
        raise ModelError(f"{path}: a {target} model given as the cascade's {role} model{hint}")


def _contrast_models(paths: Mapping[str, str | Path], role: str, **load: object) -> dict[str, Predictor]:
    """Contrast-specific ``role`` models (``"lesion"`` or ``"cord"``), each loaded with ``load``'s options and
    checked to be a ``role`` model trained on its contrast.

    Raises:
        ModelError: an unreadable model, another target, or a model not trained on its contrast.
    """
    models = {}
    for contrast, path in paths.items():
        model = Predictor.from_model(path, **load)
        _check_target(model, role, path)
        trained = model.metadata.contrasts or []
        if contrast not in trained:
            trained_on = "/".join(trained) or "unknown contrasts"
            raise ModelError(f"{path}: the {contrast} {role} model was trained on {trained_on}")
        models[contrast] = model
    return models


def _region_mask(model: Predictor, image: LoadedImage, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """A model's probabilities in ``box`` (zeros elsewhere) and their mask at the model's threshold."""
    probabilities, _, _ = model.predict_region(image, box)
    return probabilities, (probabilities >= model.infer.threshold).astype(np.uint8)
