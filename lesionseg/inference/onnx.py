"""ONNX export and an ONNX Runtime engine for inference (optional extra: ``pip install lesionseg[onnx]``).

``lesionseg export MODEL --format onnx`` writes ``MODEL/model.onnx`` (weights embedded, batch and the three
spatial sizes dynamic); ``lesionseg infer --engine onnxruntime --model MODEL`` then runs the network through
ONNX Runtime instead of PyTorch, with the same preprocessing, sliding window and postprocessing::

    export_onnx("runs/t2w/model")
    predictor = Predictor.from_model("runs/t2w/model", engine="onnxruntime")
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from lesionseg.errors import ModelError
from lesionseg.io.atomic import atomic_write
from lesionseg.io.checkpoint import load_model
from lesionseg.networks.factory import IN_CHANNELS, build_network

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ModelError(f"the ONNX engine needs the '{module}' package: pip install 'lesionseg[onnx]'")


def export_onnx(model: str | Path, out: str | Path | None = None, *, opset: int = 18) -> Path:
    """Export a model folder's network to ONNX (``MODEL/model.onnx`` by default), written atomically.

    Raises:
        ModelError: unreadable model, or the ``onnx``/``onnxscript`` packages are missing.
    """
    _require("onnx")
    _require("onnxscript")
    bundle = load_model(model)
    network = build_network(bundle.config.model)
    network.load_state_dict(bundle.state_dict)
    network.eval()
    roi = tuple(bundle.config.infer.roi_size or bundle.config.train.patch_size)
    example = torch.zeros((2, IN_CHANNELS, *roi))
    spatial = {axis: torch.export.Dim.AUTO for axis in (2, 3, 4)}
    destination = Path(out) if out is not None else Path(model) / ONNX_FILE

    def write(temporary: Path) -> None:
        torch.onnx.export(
            network,
            (example,),
            str(temporary),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"x": {0: torch.export.Dim("batch", max=1024), **spatial}},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )

    return atomic_write(destination, write)


class OnnxNetwork(torch.nn.Module):
    """An ONNX Runtime session behind the interface of a network: ``(N, 1, X, Y, Z)`` tensor in, logits out."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        super().__init__()
        _require("onnxruntime")
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: no ONNX model; create it with: lesionseg export {path.parent} --format onnx")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: cannot load ONNX model ({str(error).splitlines()[0]})") from None
        self.path = path

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run([OUTPUT_NAME], {INPUT_NAME: array})[0])
