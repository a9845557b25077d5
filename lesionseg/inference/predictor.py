"""The predictor: one image in, a probability map and a mask on the input's grid out.

Each image goes through the preprocessing of training (resampled to the model's voxel size as TorchIO does,
:mod:`lesionseg.transforms.resampling`; normalised, :mod:`lesionseg.transforms.normalization`), a
Gaussian-weighted sliding window of an engine (PyTorch or ONNX Runtime, :mod:`lesionseg.inference.engines`), a
sigmoid, resampling back onto the canonical grid, then (when saved) the native axes of the input file::

    predictor = Predictor.from_model("runs/demo/model")
    prediction = predictor.predict("sub-01_T2w.nii.gz")
    prediction.save("out/sub-01_T2w_lesionseg.nii.gz")
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lesionseg.config import Config, InferConfig
from lesionseg.errors import InputError
from lesionseg.inference.engines import Engine, EngineName, OnnxEngine, TorchEngine, choose_engine, load_torch_engine
from lesionseg.inference.inferers import Inferer, Slabs, default_inferer, mean_and_variance
from lesionseg.inference.lesions import remove_small_lesions
from lesionseg.inference.segmenter import ImageSource, InferenceSettings, Segmentation
from lesionseg.io.model_metadata import ModelMetadata
from lesionseg.io.nifti import MAX_VOXELS, LoadedImage, NativeGeometry, as_loaded_image, load_image, save_mask
from lesionseg.transforms.cropping import Box, box_slices, crop_affine
from lesionseg.transforms.normalization import Normalization, fit_normalization
from lesionseg.transforms.resampling import pad_edge, resample, resample_to_spacing

logger = logging.getLogger(__name__)


def load_timed(path: str | Path) -> tuple[LoadedImage, float]:
    """:func:`~lesionseg.io.nifti.load_image` and the seconds it took."""
    started = time.perf_counter()
    image = load_image(path)
    return image, time.perf_counter() - started


@dataclass(frozen=True, eq=False)
class Prediction:
    """A prediction on the canonical (RAS) grid of an input, with its native geometry.

    Attributes:
        probabilities: float32 array, canonical grid.
        mask: uint8 0/1 array, canonical grid.
        affine: canonical affine.
        geometry: the input's native grid.
        seconds: wall time per stage (load, preprocess, network, postprocess, write).
        variance: per-voxel variance over ensemble members and TTA flips (canonical grid), when there are several.
    """

    probabilities: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    geometry: NativeGeometry
    seconds: dict[str, float] = field(default_factory=dict)
    variance: np.ndarray | None = None

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    def save(self, path: str | Path, *, soft: bool = False, variance: bool = False) -> Path:
        """Write the mask (or, with ``soft``, the probabilities; with ``variance``, the variance map) on the
        input's native grid."""
        started = time.perf_counter()
        if variance and self.variance is None:
            raise ValueError("this prediction has no variance map (use an ensemble or TTA)")
        array = self.variance if variance else (self.probabilities if soft else self.mask)
        written = save_mask(array, self.geometry, path, soft=soft or variance)
        self.seconds["write"] = self.seconds.get("write", 0.0) + time.perf_counter() - started
        return written


class Predictor:
    """Runs a trained network on whole images: a :class:`~lesionseg.inference.segmenter.Segmenter` (the CLI's
    ``infer`` and :func:`lesionseg.load_segmenter` wrap it).

    User options come in ``settings`` (:class:`~lesionseg.inference.segmenter.InferenceSettings`), applied over
    the model's ``infer`` config in :attr:`infer`; the loaded config itself is never changed.
    """

    segments_cord = False

    def __init__(
        self,
        network: Any,
        config: Config,
        *,
        device: Any = "cpu",
        metadata: ModelMetadata | dict | None = None,
        tta: bool | None = None,
        settings: InferenceSettings | None = None,
        inferer: Inferer | None = None,
    ) -> None:
        members = network if isinstance(network, list) else [network]
        #: Ensemble members, as engines (their probabilities are averaged); a torch network given here runs in a
        #: :class:`~lesionseg.inference.engines.TorchEngine` on ``device``.
        self.members: list[Engine] = [_as_engine(member, device, config) for member in members]
        self.network = self.members[0]
        self._tta = tta
        self.config = config
        #: what the weights were trained for (typed; ``metadata.json``)
        self.metadata = metadata if isinstance(metadata, ModelMetadata) else ModelMetadata.model_validate(metadata or {})
        self.roi_size = tuple(config.infer.roi_size or config.train.patch_size)
        #: Optional second stage applied to whole-image predictions, e.g. a false-positive filter.
        self.candidate_filter: Callable[[LoadedImage, Prediction], Prediction] | None = None
        self.settings = settings or InferenceSettings()
        #: how the networks run over a preprocessed image; default: each member's sliding window (TTA: 8 flips)
        self._inferer = inferer

    @property
    def infer(self) -> InferConfig:
        """The inference settings in force: the model's ``infer`` config with the user's settings applied."""
        return self.settings.infer_config(self.config.infer)

    @property
    def tta(self) -> bool:
        """Flip test-time augmentation (8 mirrorings, averaged): the user's settings, else the value given when
        loading, else the model config's ``infer.tta``."""
        if self.settings.tta is not None:
            return self.settings.tta
        return self.config.infer.tta if self._tta is None else self._tta

    @property
    def inferer(self) -> Inferer:
        """The inferer passed in, else :func:`~lesionseg.inference.inferers.default_inferer` of the settings."""
        if self._inferer is not None:
            return self._inferer
        return default_inferer(self.infer, self.roi_size, tta=self.tta)

    def with_settings(self, settings: InferenceSettings) -> Predictor:
        """The same networks with other user settings (this predictor is unchanged)."""
        other = copy.copy(self)
        other.settings = settings
        return other

    def segment(
        self, image: ImageSource, affine: np.ndarray | None = None, *, contrast: str | None = None
    ) -> Segmentation:
        """:meth:`predict_loaded` on any image source (a loaded image, a path, a nibabel image, or an array with
        its ``affine``; ``contrast`` overrides the file name's), as a
        :class:`~lesionseg.inference.segmenter.Segmentation`."""
        prediction = self.predict_loaded(as_loaded_image(image, affine, contrast=contrast))
        return Segmentation(lesion=prediction, seconds=dict(prediction.seconds))

    def lesion_for(self, contrast: str | None) -> Predictor:
        """This model, for any contrast."""
        return self

    @property
    def stages(self) -> list[Predictor]:
        """This model, and the second network of its false-positive filter when it has one."""
        second = getattr(self.candidate_filter, "second", None)
        return [self, *([second] if second is not None else [])]

    @classmethod
    def from_model(
        cls,
        path: str | Path | Sequence[str | Path],
        *,
        device: str = "auto",
        tta: bool | None = None,
        engine: EngineName | str = "auto",
    ) -> Predictor:
        """Load a model folder (or a ``best.pt``/``last.pt`` checkpoint) safely; several paths make an ensemble
        whose members must share the preprocessing (spacing, normalisation) of the first. ``engine``: ``torch``,
        ``onnxruntime`` (each folder's exported ``model.onnx``) or ``auto``
        (:func:`~lesionseg.inference.engines.choose_engine`).

        Raises:
            ModelError: unreadable model, weights that do not fit the architecture in its config, or ensemble
                members with different preprocessing.
        """
        from lesionseg.errors import ModelError
        from lesionseg.io.checkpoint import ONNX_FILE, load_model, read_model_folder

        paths = [Path(path)] if isinstance(path, str | Path) else [Path(p) for p in path]
        chosen = choose_engine(engine, paths, device)
        engines, first = [], None
        for member in paths:
            bundle = read_model_folder(member) if chosen == "onnxruntime" else load_model(member)
            if first is None:
                first = bundle
            elif bundle.config.preprocess != first.config.preprocess:
                raise ModelError(f"{member}: preprocessing differs from {paths[0]}; an ensemble needs the same one")
            onnx = chosen == "onnxruntime"
            engines.append(OnnxEngine(member / ONNX_FILE) if onnx else load_torch_engine(bundle, device))
        assert first is not None
        return cls(engines, first.config, metadata=first.metadata, tta=tta)

    def _contrast(self, contrast: str | None) -> str | None:
        if contrast is None:
            trained = self.metadata.contrasts or []
            contrast = trained[0] if len(trained) == 1 else None
        return contrast

    def normalization(self, sample: np.ndarray, contrast: str | None = None) -> Normalization:
        """The normalisation of an image of ``contrast`` (default: the model's own contrast when it was trained
        on one) with statistics from ``sample`` (the whole image, so that its parts are normalised alike)."""
        return fit_normalization(self.config.preprocess, self._contrast(contrast), sample)

    def predict_array(
        self, data: np.ndarray, affine: np.ndarray, contrast: str | None = None
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Probabilities on the grid of a RAS array (e.g. a crop) of ``contrast``, with the seconds per stage.

        Returns:
            float32 probabilities in [0, 1], shape ``data.shape``; seconds for preprocess, network, postprocess.
        """
        probabilities, _, seconds = self.predict_array_with_variance(data, affine, contrast)
        return probabilities, seconds

    def predict_array_with_variance(
        self, data: np.ndarray, affine: np.ndarray, contrast: str | None = None, *, statistics: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:
        """As :meth:`predict_array`, plus the per-voxel variance over ensemble members and TTA flips (None when
        there is a single prediction). Above ``infer.memory_budget_mb`` the image goes through in slabs.

        ``statistics``: the whole image ``data`` was cut from (e.g. the cascade's crop); it is then normalised
        with the whole image's statistics, as training normalises an image before cropping it.
        """
        slabs = self.slabs(data.shape, affine)
        if slabs is None and statistics is None:
            return self._predict_whole(data, affine, None, contrast)
        normalize = self.normalization(data if statistics is None else statistics, contrast)
        if slabs is None:
            return self._predict_whole(data, affine, normalize, contrast)
        return Slabs.stitch(data, slabs, lambda part, box: self._predict_whole(part, crop_affine(affine, box),
                                                                               normalize, contrast))

    def predict_region(
        self, image: LoadedImage, box: Box | None
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:
        """Probabilities (and variance) on the whole grid of ``image`` with the network run only inside ``box``
        (zero outside; the whole image when ``box`` is None); the region is normalised with the whole image's
        statistics."""
        if box is None:
            return self.predict_array_with_variance(image.data, image.affine, image.contrast)
        region = box_slices(box)
        part, part_variance, seconds = self.predict_array_with_variance(
            np.ascontiguousarray(image.data[region]), crop_affine(image.affine, box), image.contrast,
            statistics=image.data,
        )
        probabilities = np.zeros(image.data.shape, dtype=np.float32)
        probabilities[region] = part
        variance = None
        if part_variance is not None:
            variance = np.zeros(image.data.shape, dtype=np.float32)
            variance[region] = part_variance
        return probabilities, variance, seconds

    #: Bytes of working memory per input voxel in one pass (see :class:`~lesionseg.inference.inferers.Slabs`).
    BYTES_PER_VOXEL = Slabs.bytes_per_voxel

    def slabs(self, shape: tuple[int, ...], affine: np.ndarray) -> list[tuple[int, int, int, int]] | None:
        """The slabs that keep one pass within ``infer.memory_budget_mb`` (None when the whole image fits)."""
        return Slabs(self.infer.memory_budget_mb, self.roi_size, self.config.preprocess.spacing_mm).plan(shape, affine)

    def _predict_whole(
        self, data: np.ndarray, affine: np.ndarray, normalize: Normalization | None, contrast: str | None
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:
        """Resampled to the model's voxel size, normalised (with ``normalize``, else with the resampled image's own
        statistics, as in training), the inferer's samples averaged, then back onto ``data``'s grid."""
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        working, working_affine = resample_to_spacing(data, affine, self.config.preprocess.spacing_mm)
        working = (normalize or self.normalization(working, contrast))(working)
        seconds["preprocess"] = time.perf_counter() - started

        started = time.perf_counter()
        mean, variance = mean_and_variance(self.inferer.samples(working, self.members))
        seconds["network"] = time.perf_counter() - started

        started = time.perf_counter()
        on_grid = self._to_grid(mean, working_affine, data.shape, affine)
        variance_on_grid = self._to_grid(variance, working_affine, data.shape, affine) if variance is not None else None
        seconds["postprocess"] = time.perf_counter() - started
        return on_grid, variance_on_grid, seconds

    @staticmethod
    def _to_grid(
        working: np.ndarray, working_affine: np.ndarray, shape: tuple[int, ...], affine: np.ndarray
    ) -> np.ndarray:
        # The working grid can stop up to half a working voxel short of the input's outer voxels: pad it by one
        # voxel (edge values) so resampling back never reads outside it.
        padded, padded_affine = pad_edge(working, working_affine)
        return np.clip(resample(padded, padded_affine, shape, affine), 0.0, 1.0).astype(np.float32)

    def threshold(self, probabilities: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
        """The binary mask: probabilities at or above ``infer.threshold``, lesions larger than
        ``infer.min_lesion_mm3``."""
        infer = self.infer
        mask = (probabilities >= infer.threshold).astype(np.uint8)
        return remove_small_lesions(mask, spacing_mm, infer.min_lesion_mm3)

    def check_working_grid(self, image: LoadedImage, limit: int = MAX_VOXELS) -> None:
        """Refuse, before any allocation, an image whose resampling to the model's spacing would exceed ``limit``
        voxels (a header in the wrong unit turns a 30 MB scan into gigabytes).

        Raises:
            InputError: naming the file, the working grid and the image's voxel size.
        """
        spacing = self.config.preprocess.spacing_mm
        if spacing is None:
            return
        extent = np.asarray(image.data.shape) * np.asarray(image.spacing_mm)
        working = [int(np.ceil(e / s)) for e, s in zip(extent, spacing, strict=True)]
        voxels = int(np.prod(working, dtype=np.float64))
        if voxels > limit:
            shown = " x ".join(f"{v:g}" for v in image.spacing_mm)
            raise InputError(
                f"{image.path}: resampled to the model's {' x '.join(f'{v:g}' for v in spacing)} mm grid it would be "
                f"{' x '.join(map(str, working))} = {voxels:,} voxels (limit {limit:,}); is its voxel size "
                f"{shown} mm right?"
            )

    def predict_loaded(self, image: LoadedImage) -> Prediction:
        """Predict an image already loaded by :func:`lesionseg.io.nifti.load_image`.

        Raises:
            InputError: the image's working grid would be too large (:meth:`check_working_grid`).
        """
        self.check_working_grid(image)
        probabilities, variance, seconds = self.predict_array_with_variance(image.data, image.affine, image.contrast)
        mask = self.threshold(probabilities, image.spacing_mm)
        prediction = Prediction(
            probabilities=probabilities, mask=mask, affine=image.affine, geometry=image.geometry, seconds=seconds,
            variance=variance,
        )
        return self.candidate_filter(image, prediction) if self.candidate_filter is not None else prediction

    def predict(self, path: str | Path) -> Prediction:
        """Load, validate and predict one NIfTI file.

        Raises:
            InputError: the file fails validation (see :func:`lesionseg.io.nifti.load_image`).
        """
        image, load_seconds = load_timed(path)
        prediction = self.predict_loaded(image)
        prediction.seconds["load"] = load_seconds
        return prediction


def _as_engine(member: Any, device: Any, config: Config) -> Engine:
    """An engine as it is; a torch network wrapped in a :class:`TorchEngine` on ``device``."""
    if isinstance(getattr(member, "name", None), str) and callable(member):
        return member
    return TorchEngine(member, device, amp=config.train.amp)
