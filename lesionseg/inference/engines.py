"""Engines: what runs a network on a batch of preprocessed patches, PyTorch or ONNX Runtime.

An engine is a callable ``(N, 1, X, Y, Z) float32 array -> logits of that shape``; everything around it
(resampling, normalisation, sliding window, flips, thresholds) is NumPy, SciPy and SimpleITK, so that inference
with ONNX Runtime never imports torch, MONAI or TorchIO (about 4 s of the start-up of every process).

``engine="auto"`` picks ONNX Runtime on the CPU when it is installed and every model folder holds its exported
``model.onnx`` (the shipped models do), else PyTorch; a GPU (``--device cuda``, or ``auto`` on a machine with an
NVIDIA driver) always runs PyTorch.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from lesionseg.errors import ModelError
from lesionseg.io.checkpoint import ONNX_FILE

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

EngineName = Literal["auto", "torch", "onnxruntime"]
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


class Engine(Protocol):
    """Logits of a batch of patches, ``(N, 1, X, Y, Z)`` float32 in and out."""

    name: str

    def __call__(self, batch: np.ndarray, *, bf16: bool = False) -> np.ndarray: ...


class TorchEngine:
    """A PyTorch network on a device (CUDA float16 with ``amp``; CPU bfloat16 autocast when asked per call)."""

    name = "torch"

    def __init__(self, network: torch.nn.Module, device: str | torch.device, *, amp: bool = False) -> None:
        from lesionseg.networks.devices import resolve_device

        self.device = resolve_device(device) if isinstance(device, str) else device
        self.network = network.to(self.device).eval()
        self.amp = amp

    def __call__(self, batch: np.ndarray, *, bf16: bool = False) -> np.ndarray:
        import torch

        from lesionseg.networks.devices import autocast

        with torch.inference_mode(), autocast(self.device, self.amp, cpu_bf16=bf16):
            logits = self.network(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device))
        return logits.float().cpu().numpy()


def require(module: str, install: str = "'lesionseg[onnx]'") -> None:
    """Raise a one-line install hint (``pip install INSTALL``) when a package is missing."""
    if importlib.util.find_spec(module) is None:
        raise ModelError(f"the '{module}' package is missing: pip install {install}")


class OnnxEngine:
    """An exported network (``MODEL/model.onnx``) run by ONNX Runtime on the CPU."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        require("onnxruntime", "onnxruntime")  # a core dependency: missing only from a broken environment
        import onnxruntime as ort

        self.path = Path(path)
        self._warned = False
        if not self.path.is_file():
            raise ModelError(
                f"{self.path}: no ONNX model; create it with: lesionseg export {self.path.parent} --format onnx"
            )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path}: cannot load ONNX model ({str(error).splitlines()[0]})") from None

    def __call__(self, batch: np.ndarray, *, bf16: bool = False) -> np.ndarray:
        if bf16 and not self._warned:
            logger.warning("%s: bf16 is a PyTorch setting; ONNX Runtime runs in float32 (use --engine torch)",
                           self.path)
            self._warned = True
        array = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: array})[0]


def _gpu_likely(device: str) -> bool:
    """Whether ``device`` means a GPU, judged without importing torch (``auto``: an NVIDIA driver is loaded)."""
    if device == "auto":
        return Path("/proc/driver/nvidia/version").exists()
    return device != "cpu"


def choose_engine(engine: str, folders: Sequence[Path], device: str) -> str:
    """The engine that will run ``folders``' networks: ``engine`` itself unless it is ``auto`` (see the module)."""
    if engine != "auto":
        return engine
    if _gpu_likely(device) or importlib.util.find_spec("onnxruntime") is None:
        return "torch"
    return "onnxruntime" if all(Path(f).is_dir() and (Path(f) / ONNX_FILE).is_file() for f in folders) else "torch"


def load_torch_engine(bundle: Any, device: str | torch.device) -> TorchEngine:
    """A :class:`TorchEngine` of a loaded model bundle (:func:`lesionseg.io.checkpoint.load_model`).

    Raises:
        ModelError: weights that do not fit the architecture in the bundle's config.
    """
    from lesionseg.networks.factory import build_network

    network = build_network(bundle.config.model)
    try:
        network.load_state_dict(bundle.state_dict)
    except RuntimeError as error:
        message = str(error).strip().splitlines()[0]
        raise ModelError(f"{bundle.source}: weights do not fit the architecture in its config ({message})") from None
    return TorchEngine(network, device, amp=bundle.config.train.amp)
