"""ONNX export of a model folder's network (``pip install lesionseg[onnx]`` for the exporter).

``lesionseg export MODEL --format onnx`` writes ``MODEL/model.onnx`` (weights embedded, batch and the three
spatial sizes dynamic) and records its SHA-256 in ``MODEL/metadata.json``; inference then runs it through ONNX
Runtime (:class:`lesionseg.inference.engines.OnnxEngine`, chosen by ``--engine auto`` or ``onnxruntime``) with the
same preprocessing, sliding window and postprocessing as PyTorch::

    export_onnx("runs/t2w/model")
    predictor = Predictor.from_model("runs/t2w/model", engine="onnxruntime")
"""

from __future__ import annotations

import json
from pathlib import Path

from lesionseg.inference.engines import INPUT_NAME, OUTPUT_NAME, require
from lesionseg.io.atomic import atomic_write, atomic_write_text
from lesionseg.io.checkpoint import METADATA_FILE, ONNX_FILE, load_model, sha256_file


def export_onnx(model: str | Path, out: str | Path | None = None, *, opset: int = 18) -> Path:
    """Export a model folder's network to ONNX (``MODEL/model.onnx`` by default), written atomically; when it
    goes into the model folder, its SHA-256 joins ``metadata.json``'s checksums.

    Raises:
        ModelError: unreadable model, or the ``onnx``/``onnxscript`` packages are missing.
    """
    import torch

    from lesionseg.networks.factory import IN_CHANNELS, build_network

    require("onnx")
    require("onnxscript")
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

    atomic_write(destination, write)
    if destination.parent.resolve() == Path(model).resolve() and (destination.parent / METADATA_FILE).is_file():
        _record_checksum(destination)
    return destination


def _record_checksum(onnx_file: Path) -> None:
    """Add the exported file's SHA-256 to its model folder's ``metadata.json`` (``sha256``), atomically."""
    metadata_path = onnx_file.parent / METADATA_FILE
    metadata = json.loads(metadata_path.read_text())
    metadata.setdefault("sha256", {})[onnx_file.name] = sha256_file(onnx_file)
    atomic_write_text(metadata_path, json.dumps(metadata, indent=2, default=str) + "\n")
