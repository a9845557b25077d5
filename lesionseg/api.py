"""The Python API of ``lesionseg infer``: load a segmenter by name or path, segment images in memory or on disk.

Example::

    import lesionseg

    segmenter = lesionseg.load_segmenter()              # the shipped default cascade
    result = segmenter.segment("sub-01_T2w.nii.gz")     # or a nibabel image, or segment(array, affine)
    result.lesion_mask                                  # uint8 array on the input's own grid
    result.lesion_image().to_filename("sub-01_T2w_lesionseg.nii.gz")
    result.lesions()                                    # one dict per lesion, as in <stem>_lesions.csv

A folder of scans with every output of the command line: :func:`lesionseg.run_batch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lesionseg.inference.cascade import load_pipeline
from lesionseg.inference.segmenter import InferenceSettings, Segmenter
from lesionseg.io.registry import default_model, resolve_model


def load_segmenter(
    name_or_path: str | Path | Sequence[str | Path] | None = None,
    *,
    cascade: tuple[str | Path, str | Path] | None = None,
    fp_model: str | Path | None = None,
    device: str = "auto",
    tta: bool | None = None,
    engine: str = "auto",
    settings: InferenceSettings | None = None,
) -> Segmenter:
    """A :class:`~lesionseg.inference.segmenter.Segmenter` ready to run, as ``lesionseg infer`` builds it.

    Args:
        name_or_path: a shipped or installed model's name (``lesionseg models``), a model folder, a cascade
            bundle, or several model folders (an ensemble); the shipped default cascade when None (and no
            ``cascade``).
        cascade: (cord model, lesion model) folders, instead.
        fp_model: a false-positive-reduction model folder.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        tta: flip test-time augmentation of the lesion stages and the contrast-specific cord stages (8 mirrorings,
            8x slower); None: each model's ``infer.tta`` (on in the shipped default's lesion stages and its
            cord-T2starw; the general cord stage and the localiser never use it).
        engine: ``auto`` (ONNX Runtime on the CPU when every model folder has its exported ``model.onnx``, as the
            shipped models do; else PyTorch), ``torch`` or ``onnxruntime`` (see ``lesionseg export``).
        settings: user options (threshold, minimum lesion size, overlap, precision, memory budget, ...).

    Raises:
        ModelError: no such model, unreadable or inconsistent models.
        ConfigError: an unknown device, a setting outside its range.
    """
    if name_or_path is None and cascade is None:
        name_or_path = default_model()
    names = [] if name_or_path is None else [name_or_path] if isinstance(name_or_path, str | Path) else list(name_or_path)
    models = [resolve_model(name) for name in names]
    segmenter = load_pipeline(models or None, cascade=cascade, fp_model=fp_model, device=device, tta=tta, engine=engine)
    return segmenter.with_settings(settings) if settings is not None else segmenter
