"""Inferer strategies, composed and passed to a :class:`~lesionseg.inference.predictor.Predictor` (as MONAI's
``Inferer`` objects are passed to its evaluators), in NumPy around an :mod:`engine <lesionseg.inference.engines>`:

- :class:`SlidingWindow`: MONAI's Gaussian-blended sliding window, in NumPy -> logits -> sigmoid;
- :class:`FlipTTA`: another strategy run on the 8 mirrorings of the image, each result flipped back;
- :class:`Ensemble`: another strategy run with each member engine;
- :class:`Slabs`: an image too large for the memory budget cut into slabs along its longest axis, each predicted
  with the network's field of view of context and stitched back.

A strategy yields one probability map per sample (member x flip); the predictor averages them and takes their
variance (the uncertainty map).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.special import expit

from lesionseg.config import InferConfig
from lesionseg.inference.engines import Engine

logger = logging.getLogger(__name__)

#: Flip test-time augmentation: every combination of mirroring the three spatial axes (as nnU-Net does).
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2))
#: Standard deviation of the Gaussian window, as a fraction of the window (MONAI's and nnU-Net's 1/8).
SIGMA_SCALE = 0.125


class Inferer(Protocol):
    """Probability maps of an ``(X, Y, Z)`` preprocessed image, one per sample, each of its shape."""

    def samples(self, image: np.ndarray, engines: Sequence[Engine]) -> Iterator[np.ndarray]: ...


def gaussian_window(shape: tuple[int, ...], sigma_scale: float = SIGMA_SCALE) -> np.ndarray:
    """Gaussian blending weights of a window, as MONAI's importance map: centred on the window, sigma
    ``sigma_scale x n``, 1 at the centre and never below 1e-3 so that the window's border still counts."""
    axes = [np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / max(sigma_scale * n, 1e-6)) ** 2) for n in shape]
    return np.maximum(axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :], 1e-3).astype(np.float32)


def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """First voxels of the windows along an axis: every ``window x (1 - overlap)`` voxels from 0, the last one
    moved back flush with the image end (MONAI's scan, so that no window runs past the image)."""
    if size <= window:
        return [0]
    interval = max(int(window * (1 - overlap)), 1)
    count = int(np.ceil((size - window) / interval)) + 1
    return [min(index * interval, size - window) for index in range(count)]


def _pad_to_window(image: np.ndarray, roi: tuple[int, int, int]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """The image padded around (with its minimum) to at least one window, and the slices of the image in it."""
    widths = [(max(r - n, 0) // 2, max(r - n, 0) - max(r - n, 0) // 2) for n, r in zip(image.shape, roi, strict=True)]
    if not any(sum(width) for width in widths):
        return image, tuple(slice(None) for _ in image.shape)
    padded = np.pad(image, widths, mode="constant", constant_values=float(image.min()))
    return padded, tuple(slice(before, before + n) for (before, _), n in zip(widths, image.shape, strict=True))


@dataclass(frozen=True)
class SlidingWindow:
    """Windows of ``roi_size`` over the image (:func:`window_starts`), ``infer.sw_batch_size`` at a time through
    the first of the engines, their logits blended with Gaussian weights (``infer.mode: gaussian``) or evenly
    (``constant``), then a sigmoid; bf16 on the CPU with ``infer.precision`` (PyTorch engine).

    The same scan, padding and blending as MONAI's ``sliding_window_inference`` (masks identical within a test's
    tolerance), in NumPy so that inference needs no torch. The ``tiler`` package was tried first: its fixed-step
    tiling runs the last window past the image end on padding, which moved the cord masks of the real scans
    (Dice 0.93 against MONAI's on the errsm30 T2w crop)."""

    roi_size: tuple[int, int, int]
    config: InferConfig

    def __call__(self, image: np.ndarray, engine: Engine) -> np.ndarray:
        padded, inside = _pad_to_window(np.asarray(image, dtype=np.float32), self.roi_size)
        weights = gaussian_window(self.roi_size) if self.config.mode == "gaussian" else np.ones(self.roi_size, np.float32)
        logits, total = np.zeros(padded.shape, np.float32), np.zeros(padded.shape, np.float32)
        starts = [window_starts(n, r, self.config.overlap) for n, r in zip(padded.shape, self.roi_size, strict=True)]
        windows = [tuple(slice(a, a + r) for a, r in zip(corner, self.roi_size, strict=True))
                   for corner in itertools.product(*starts)]
        batch_size, bf16 = max(1, self.config.sw_batch_size), self.config.precision == "bf16"
        for first in range(0, len(windows), batch_size):
            batch = windows[first : first + batch_size]
            outputs = engine(np.stack([padded[window] for window in batch])[:, None], bf16=bf16)
            for window, output in zip(batch, outputs[:, 0], strict=True):
                logits[window] += output * weights
                total[window] += weights
        return expit(logits[inside] / total[inside]).astype(np.float32)

    def samples(self, image: np.ndarray, engines: Sequence[Engine]) -> Iterator[np.ndarray]:
        yield self(image, engines[0])


@dataclass(frozen=True)
class FlipTTA:
    """``inner`` on every mirroring of the image (:data:`TTA_FLIPS`), each result flipped back."""

    inner: Inferer
    flips: tuple[tuple[int, ...], ...] = TTA_FLIPS

    def samples(self, image: np.ndarray, engines: Sequence[Engine]) -> Iterator[np.ndarray]:
        for axes in self.flips:
            for probabilities in self.inner.samples(np.flip(image, axes) if axes else image, engines):
                yield np.flip(probabilities, axes) if axes else probabilities


@dataclass(frozen=True)
class Ensemble:
    """``inner`` with each member engine in turn."""

    inner: Inferer

    def samples(self, image: np.ndarray, engines: Sequence[Engine]) -> Iterator[np.ndarray]:
        for engine in engines:
            yield from self.inner.samples(image, [engine])


def default_inferer(config: InferConfig, roi_size: tuple[int, int, int], *, tta: bool) -> Inferer:
    """Each member's sliding window, on the 8 mirrorings with ``tta``."""
    window: Inferer = SlidingWindow(roi_size, config)
    return Ensemble(FlipTTA(window) if tta else window)


def mean_and_variance(samples: Iterator[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """The mean of the samples, and their variance when there are several (None for one: then the sample itself,
    uncopied). Sums in float64."""
    iterator = iter(samples)
    first = next(iterator, None)
    if first is None:
        raise ValueError("the inferer gave no sample")
    total, squares, count = None, None, 1
    for probabilities in iterator:
        if total is None:
            total, squares = np.asarray(first, dtype=np.float64), np.asarray(first, dtype=np.float64) ** 2
        values = np.asarray(probabilities, dtype=np.float64)
        total += values
        squares += values**2
        count += 1
    if total is None or squares is None:
        return np.asarray(first, dtype=np.float32), None
    mean = total / count
    return mean.astype(np.float32), np.maximum(squares / count - mean**2, 0).astype(np.float32)


#: (axis, start, stop, margin) of one slab: voxels ``start:stop`` along ``axis``, predicted with ``margin`` voxels
#: of context on both sides
Slab = tuple[int, int, int, int]


@dataclass(frozen=True)
class Slabs:
    """Cut an image whose one pass would exceed ``budget_mb`` into slabs along its longest axis."""

    budget_mb: float | None
    roi_size: tuple[int, int, int]
    working_spacing_mm: tuple[float, float, float] | None
    #: bytes of working memory per input voxel in one pass (resampled copies, network input and output,
    #: probabilities back on the input grid), measured on a 512 x 512 x 256 volume
    bytes_per_voxel: int = 24

    def plan(self, shape: tuple[int, ...], affine: np.ndarray) -> list[Slab] | None:
        """The slabs that keep one pass within the budget (each with the network's field of view of context);
        None when the whole image fits."""
        if self.budget_mb is None or np.prod(shape) * self.bytes_per_voxel <= self.budget_mb * 2**20:
            return None
        axis = int(np.argmax(shape))
        spacing = float(np.linalg.norm(np.asarray(affine)[:3, axis]))
        working = (self.working_spacing_mm or (spacing,) * 3)[axis]
        margin = int(np.ceil(self.roi_size[axis] * working / spacing))
        per_slice = int(np.prod(shape)) // shape[axis]
        thickness = int(self.budget_mb * 2**20 / self.bytes_per_voxel / per_slice) - 2 * margin
        if thickness < 1:
            logger.warning("memory budget %.0f MB is too small for this image: using one slice of context", self.budget_mb)
            thickness = 1
        return [(axis, start, min(start + thickness, shape[axis]), margin) for start in range(0, shape[axis], thickness)]

    @staticmethod
    def stitch(
        data: np.ndarray, slabs: list[Slab],
        predict: Callable[[np.ndarray, tuple[tuple[int, int], ...]], tuple[np.ndarray, np.ndarray | None, dict]],
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:
        """``predict(region_data, box)`` on each slab with its context; the slab's own voxels pasted back."""
        probabilities = np.zeros(data.shape, dtype=np.float32)
        variance: np.ndarray | None = None
        seconds: dict[str, float] = {}
        for axis, start, stop, margin in slabs:
            low, high = max(start - margin, 0), min(stop + margin, data.shape[axis])
            box = tuple((low, high) if index == axis else (0, size) for index, size in enumerate(data.shape))
            part, part_variance, part_seconds = predict(np.ascontiguousarray(data[tuple(slice(a, b) for a, b in box)]), box)
            keep = tuple(slice(start - low, stop - low) if index == axis else slice(None) for index in range(3))
            target = tuple(slice(start, stop) if index == axis else slice(None) for index in range(3))
            probabilities[target] = part[keep]
            if part_variance is not None:
                variance = np.zeros(data.shape, dtype=np.float32) if variance is None else variance
                variance[target] = part_variance[keep]
            for stage, value in part_seconds.items():
                seconds[stage] = seconds.get(stage, 0.0) + value
        return probabilities, variance, seconds
