"""Inferer strategies, composed and passed to a :class:`~lesionseg.inference.predictor.Predictor` (as MONAI's
``Inferer`` objects are passed to its evaluators):

- :class:`SlidingWindow`: MONAI's Gaussian-blended sliding window over a preprocessed image -> probabilities;
- :class:`FlipTTA`: another strategy run on the 8 mirrorings of the image, each result flipped back;
- :class:`Ensemble`: another strategy run with each member network;
- :class:`Slabs`: an image too large for the memory budget cut into slabs along its longest axis, each predicted
  with the network's field of view of context and stitched back.

A strategy yields one probability map per sample (member x flip); the predictor averages them and takes their
variance (the uncertainty map).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from lesionseg.config import InferConfig

logger = logging.getLogger(__name__)

#: Flip test-time augmentation: every combination of mirroring the three spatial axes (as nnU-Net does).
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (1,), (2,), (3,), (1, 2), (1, 3), (2, 3), (1, 2, 3))


def autocast(device: torch.device, enabled: bool, cpu_bf16: bool = False) -> contextlib.AbstractContextManager:
    """Mixed precision: float16 on CUDA when ``enabled``; bfloat16 on the CPU when ``cpu_bf16``; else none."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    if cpu_bf16 and device.type == "cpu":
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Inferer(Protocol):
    """Probability maps of a ``(1, X, Y, Z)`` preprocessed image, one per sample, each of its shape, on CPU."""

    def samples(self, image: torch.Tensor, networks: Sequence[torch.nn.Module]) -> Iterator[torch.Tensor]: ...


@dataclass(frozen=True)
class SlidingWindow:
    """MONAI's sliding window (``infer.roi_size``, ``overlap``, ``mode``, ``sw_batch_size``; borders padded with
    the image minimum) with the first of ``networks``; bf16 autocast on the CPU with ``infer.precision``."""

    roi_size: tuple[int, int, int]
    config: InferConfig
    device: torch.device
    amp: bool = False

    def __call__(self, image: torch.Tensor, network: torch.nn.Module) -> torch.Tensor:
        batch = image[None].to(self.device)
        with torch.inference_mode(), autocast(self.device, self.amp, cpu_bf16=self.config.precision == "bf16"):
            logits = sliding_window_inference(
                batch, roi_size=self.roi_size, sw_batch_size=self.config.sw_batch_size, predictor=network,
                overlap=self.config.overlap, mode=self.config.mode, padding_mode="constant", cval=float(batch.min()),
            )
        return torch.sigmoid(logits.float())[0].cpu()

    def samples(self, image: torch.Tensor, networks: Sequence[torch.nn.Module]) -> Iterator[torch.Tensor]:
        yield self(image, networks[0])


@dataclass(frozen=True)
class FlipTTA:
    """``inner`` on every mirroring of the image (:data:`TTA_FLIPS`), each result flipped back."""

    inner: Inferer
    flips: tuple[tuple[int, ...], ...] = TTA_FLIPS

    def samples(self, image: torch.Tensor, networks: Sequence[torch.nn.Module]) -> Iterator[torch.Tensor]:
        for dims in self.flips:
            for probabilities in self.inner.samples(torch.flip(image, dims) if dims else image, networks):
                yield torch.flip(probabilities, dims) if dims else probabilities


@dataclass(frozen=True)
class Ensemble:
    """``inner`` with each member network in turn."""

    inner: Inferer

    def samples(self, image: torch.Tensor, networks: Sequence[torch.nn.Module]) -> Iterator[torch.Tensor]:
        for network in networks:
            yield from self.inner.samples(image, [network])


def default_inferer(config: InferConfig, roi_size: tuple[int, int, int], device: torch.device, *, amp: bool,
                    tta: bool) -> Inferer:
    """Each member's sliding window, on the 8 mirrorings with ``tta``."""
    window: Inferer = SlidingWindow(roi_size, config, device, amp)
    return Ensemble(FlipTTA(window) if tta else window)


def mean_and_variance(samples: Iterator[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The mean of the samples, and their variance when there are several (None for one)."""
    total, squares, count = None, None, 0
    for probabilities in samples:
        if total is None:
            total = probabilities.clone()
        else:
            squares = total**2 if squares is None else squares  # the first sample's square: total is that sample
            total += probabilities
            squares += probabilities**2
        count += 1
    if total is None:
        raise ValueError("the inferer gave no sample")
    mean = total / count
    variance = (squares / count - mean**2).clamp_min(0) if squares is not None else None
    return mean, variance


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
