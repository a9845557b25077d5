"""The predictor: one image in, a probability map and a mask on the input's grid out.

Each image goes through exactly the preprocessing of training (:func:`lesionseg.transforms.preprocessing.
preprocessing`), MONAI's Gaussian-weighted sliding window, a sigmoid, TorchIO resampling back onto the
canonical grid, then (when saved) the native axes of the input file::

    predictor = Predictor.from_model("runs/demo/model")
    prediction = predictor.predict("sub-01_T2w.nii.gz")
    prediction.save("out/sub-01_T2w_lesionseg.nii.gz")
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from lesionseg.config import Config, InferConfig
from lesionseg.io.checkpoint import load_model
from lesionseg.io.nifti import LoadedImage, NativeGeometry, load_image, save_mask
from lesionseg.networks.factory import build_network
from lesionseg.transforms.preprocessing import preprocessing, resample_to_grid, scalar_image

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        from lesionseg.errors import ConfigError

        raise ConfigError(f"device {device!r}: CUDA is not available on this machine (use --device cpu or auto)")
    return torch.device(device)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA when ``enabled``; a no-op on CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def sliding_window_probabilities(
    network: torch.nn.Module,
    image: torch.Tensor,
    *,
    roi_size: tuple[int, int, int],
    config: InferConfig,
    device: torch.device,
    amp: bool = False,
) -> torch.Tensor:
    """Probabilities (sigmoid of the logits) of a ``(1, X, Y, Z)`` preprocessed image, same shape, on CPU.

    Windows are blended with MONAI's Gaussian importance map; borders are padded with the image minimum.
    """
    batch = image[None].to(device)
    with torch.inference_mode(), autocast(device, amp):
        logits = sliding_window_inference(
            batch,
            roi_size=roi_size,
            sw_batch_size=config.sw_batch_size,
            predictor=network,
            overlap=config.overlap,
            mode=config.mode,
            padding_mode="constant",
            cval=float(batch.min()),
        )
    return torch.sigmoid(logits.float())[0].cpu()


@dataclass(frozen=True, eq=False)
class Prediction:
    """A prediction on the canonical (RAS) grid of an input, with its native geometry.

    Attributes:
        probabilities: float32 array, canonical grid.
        mask: uint8 0/1 array, canonical grid.
        affine: canonical affine.
        geometry: the input's native grid.
        seconds: wall time per stage (load, preprocess, network, postprocess, write).
    """

    probabilities: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    geometry: NativeGeometry
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    def save(self, path: str | Path, *, soft: bool = False) -> Path:
        """Write the mask (or, with ``soft``, the probabilities) on the input's native grid."""
        started = time.perf_counter()
        array = self.probabilities if soft else self.mask
        written = save_mask(array, self.geometry, path, soft=soft)
        self.seconds["write"] = self.seconds.get("write", 0.0) + time.perf_counter() - started
        return written


class Predictor:
    """Runs a trained network on whole images (library API; the CLI's ``infer`` wraps it)."""

    def __init__(
        self,
        network: torch.nn.Module,
        config: Config,
        *,
        device: str | torch.device = "cpu",
        metadata: dict | None = None,
    ) -> None:
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.network = network.to(self.device).eval()
        self.config = config
        self.metadata = dict(metadata or {})
        self.preprocess = preprocessing(config.preprocess)
        self.roi_size = tuple(config.infer.roi_size or config.train.patch_size)

    @classmethod
    def from_model(cls, path: str | Path, *, device: str = "auto") -> Predictor:
        """Load a model folder (or a ``best.pt``/``last.pt`` checkpoint) safely.

        Raises:
            ModelError: unreadable model, or weights that do not fit the architecture in its config.
        """
        from lesionseg.errors import ModelError

        bundle = load_model(path)
        network = build_network(bundle.config.model)
        try:
            network.load_state_dict(bundle.state_dict)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise ModelError(f"{path}: weights do not fit the architecture in its config ({first})") from None
        return cls(network, bundle.config, device=device, metadata=bundle.metadata)

    def predict_loaded(self, image: LoadedImage) -> Prediction:
        """Predict an image already loaded by :func:`lesionseg.io.nifti.load_image`."""
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        prepared = self.preprocess(scalar_image(image.data, image.affine))
        seconds["preprocess"] = time.perf_counter() - started

        started = time.perf_counter()
        probabilities = sliding_window_probabilities(
            self.network,
            prepared.data,
            roi_size=self.roi_size,  # type: ignore[arg-type]
            config=self.config.infer,
            device=self.device,
            amp=self.config.train.amp,
        )
        seconds["network"] = time.perf_counter() - started

        started = time.perf_counter()
        working = scalar_image(probabilities, prepared.affine)
        on_grid = resample_to_grid(working, image.data.shape, image.affine).data[0].numpy()
        on_grid = np.clip(on_grid, 0.0, 1.0).astype(np.float32)
        mask = (on_grid >= self.config.infer.threshold).astype(np.uint8)
        seconds["postprocess"] = time.perf_counter() - started
        return Prediction(probabilities=on_grid, mask=mask, affine=image.affine, geometry=image.geometry, seconds=seconds)

    def predict(self, path: str | Path) -> Prediction:
        """Load, validate and predict one NIfTI file.

        Raises:
            InputError: the file fails validation (see :func:`lesionseg.io.nifti.load_image`).
        """
        started = time.perf_counter()
        image = load_image(path)
        load_seconds = time.perf_counter() - started
        prediction = self.predict_loaded(image)
        prediction.seconds["load"] = load_seconds
        return prediction
