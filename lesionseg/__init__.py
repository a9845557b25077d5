"""lesionseg: multiple-sclerosis lesion segmentation in the spinal cord on MRI.

The command line (``lesionseg``) is a thin layer over this package::

    import lesionseg

    segmenter = lesionseg.load_segmenter()         # the shipped default cascade (or a name, folder, bundle)
    result = segmenter.segment("scan.nii.gz")      # a path, a nibabel image, or segment(array, affine)
    result.lesion_mask, result.cord_mask           # arrays on the input's own grid
    result.lesion_image().to_filename("scan_lesionseg.nii.gz")

    config = lesionseg.load_config("demo")         # a shipped config by name, or a YAML file
    run = lesionseg.train(config, data_root="phantoms/train", run_dir="runs/demo")
    lesionseg.load_segmenter(run.model_dir).segment("scan.nii.gz")

Names are imported on first use, so ``import lesionseg`` (and ``lesionseg --help``) stays fast.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

try:
    __version__ = metadata.version("lesionseg")
except metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0+unknown"

_EXPORTS = {
    "load_segmenter": "lesionseg.api",
    "InferenceSettings": "lesionseg.inference.segmenter",
    "Segmentation": "lesionseg.inference.segmenter",
    "Segmenter": "lesionseg.inference.segmenter",
    "CascadePredictor": "lesionseg.inference.cascade",
    "BatchOptions": "lesionseg.inference.batch",
    "Config": "lesionseg.config",
    "load_config": "lesionseg.config",
    "resolve_config": "lesionseg.config",
    "LesionsegError": "lesionseg.errors",
    "InputError": "lesionseg.errors",
    "ConfigError": "lesionseg.errors",
    "ModelError": "lesionseg.errors",
    "OutputError": "lesionseg.errors",
    "discover": "lesionseg.io.bids",
    "split_subjects": "lesionseg.io.bids",
    "load_image": "lesionseg.io.nifti",
    "load_label_for": "lesionseg.io.nifti",
    "save_mask": "lesionseg.io.nifti",
    "make_dataset": "lesionseg.synth.dataset",
    "train": "lesionseg.training.trainer",
    "TrainResult": "lesionseg.training.trainer",
    "Predictor": "lesionseg.inference.predictor",
    "run_batch": "lesionseg.inference.batch",
    "evaluate_folder": "lesionseg.evaluation.evaluate",
    "voxel_metrics": "lesionseg.evaluation.metrics",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lesionseg' has no attribute {name!r}")
