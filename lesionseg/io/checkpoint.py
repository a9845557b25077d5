"""Checkpoints and model folders on disk.

- A training checkpoint (``last.pt``, ``best.pt``) is a dict of tensors and plain values (model and optimiser
  state, step, seed, resolved config), written atomically and read with ``torch.load(..., weights_only=True)``.
- A model folder holds ``model.pt`` (a state dict), ``config.yaml`` (the resolved config) and
  ``metadata.json`` (versions, contrast, spacing, orientation, training data, metrics).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass, replace
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from lesionseg.config import Config, config_from_dict, load_config
from lesionseg.errors import LesionsegError, ModelError
from lesionseg.io.atomic import atomic_write, atomic_write_text
from lesionseg.io.model_metadata import ModelMetadata
from lesionseg.io.validate import one_line

if TYPE_CHECKING:
    import torch

MODEL_FILE = "model.pt"
#: The network exported for ONNX Runtime (``lesionseg export``); its SHA-256 is in ``metadata.json``.
ONNX_FILE = "model.onnx"
CONFIG_FILE = "config.yaml"
METADATA_FILE = "metadata.json"
CARD_FILE = "MODEL_CARD.md"
#: Prefix of a cascade bundle's contrast-specific lesion stages: ``lesion-T1w/`` serves T1w images.
CONTRAST_STAGE_PREFIX = "lesion-"
#: A bundle's cord stage of one contrast: ``cord-<contrast>/`` (e.g. ``cord-T2starw``), as Spinal Cord Toolbox's
#: ``sct_deepseg_sc -c t1|t2|t2s``.
CORD_CONTRAST_PREFIX = "cord-"
#: How a model card records the checksum of its weights: a line ``SHA-256 (model.pt): <64 hex digits>``.
CARD_CHECKSUM = re.compile(r"SHA-256 \(model\.pt\):\s*`?([0-9a-f]{64})`?")


def save_config(config: Config, path: str | Path) -> Path:
    """Write ``config`` as YAML (atomically), so a run can be reproduced from its folder."""
    return atomic_write_text(Path(path), yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def save_checkpoint(payload: dict[str, Any], path: Path) -> Path:
    """Write a checkpoint dict atomically (temporary file + rename)."""
    import torch

    return atomic_write(Path(path), lambda temporary: torch.save(payload, temporary))


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``: no code runs while loading).

    Raises:
        ModelError: missing, unreadable or unsafe file, or not a lesionseg checkpoint.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # pickle errors, unsafe globals, truncated zip, ...
        match = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        cause = (
            f"refused to unpickle {match.group(1)}; only tensors and plain values are loaded"
            if match
            else one_line(error)
        )
        raise ModelError(f"{path}: cannot load checkpoint safely ({cause})") from None
    if not isinstance(payload, dict):
        raise ModelError(f"{path}: not a lesionseg checkpoint (expected a dict, got {type(payload).__name__})")
    return payload


@dataclass(frozen=True, eq=False)
class ModelBundle:
    """Weights (None when read for an exported engine), the config they were trained with, and their metadata."""

    state_dict: dict[str, torch.Tensor] | None
    config: Config
    metadata: ModelMetadata
    source: Path


def save_model_folder(
    folder: Path, state_dict: dict[str, torch.Tensor], config: Config, metadata: dict[str, Any] | ModelMetadata
) -> Path:
    """Write ``model.pt`` + ``config.yaml`` + ``metadata.json`` + ``MODEL_CARD.md`` into ``folder`` (each
    atomically); the card records the weights' SHA-256 like a shipped model's."""
    from lesionseg.io.model_card import training_card

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(state_dict, folder / MODEL_FILE)
    save_config(config, folder / CONFIG_FILE)
    digest = sha256_file(folder / MODEL_FILE)
    base = metadata.as_dict() if isinstance(metadata, ModelMetadata) else dict(metadata)
    typed = ModelMetadata.model_validate({**base, "sha256": {MODEL_FILE: digest}})
    atomic_write_text(folder / METADATA_FILE, json.dumps(typed.as_dict(), indent=2, default=str) + "\n")
    name = folder.parent.name if folder.name == "model" else folder.name
    atomic_write_text(folder / CARD_FILE, training_card(name, typed, digest))
    return folder


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model_folder(folder: str | Path) -> str:
    """Check ``model.pt`` against the SHA-256 its model card records (``MODEL_CARD.md``, else ``metadata.json``).

    Returns:
        The verified checksum.

    Raises:
        ModelError: no recorded checksum, or the weights differ from it.
    """
    folder = Path(folder)
    expected, source = None, None
    card = folder / CARD_FILE
    if card.is_file():
        match = CARD_CHECKSUM.search(card.read_text(encoding="utf-8"))
        expected, source = (match.group(1), CARD_FILE) if match else (None, None)
    if expected is None and (folder / METADATA_FILE).is_file():
        try:
            expected = json.loads((folder / METADATA_FILE).read_text()).get("sha256", {}).get(MODEL_FILE)
        except (ValueError, AttributeError):
            expected = None
        source = METADATA_FILE
    if expected is None:
        raise ModelError(f"{folder}: no SHA-256 of {MODEL_FILE} recorded in {CARD_FILE} or {METADATA_FILE}")
    if not (folder / MODEL_FILE).is_file():
        raise ModelError(f"{folder / MODEL_FILE}: no such file")
    actual = sha256_file(folder / MODEL_FILE)
    if actual != expected:
        raise ModelError(
            f"{folder / MODEL_FILE}: SHA-256 {actual[:12]}... differs from {expected[:12]}... recorded in {source} "
            "(corrupted or replaced weights)"
        )
    _verify_export(folder)
    return actual


def _verify_export(folder: Path) -> None:
    """Check ``model.onnx``, when present, against the SHA-256 ``metadata.json`` records for it.

    Raises:
        ModelError: an exported network with no recorded checksum, or one that differs from it.
    """
    if not (folder / ONNX_FILE).is_file():
        return
    try:
        expected = json.loads((folder / METADATA_FILE).read_text()).get("sha256", {}).get(ONNX_FILE)
    except (OSError, ValueError, AttributeError):
        expected = None
    if expected is None:
        raise ModelError(f"{folder / ONNX_FILE}: no SHA-256 recorded in {METADATA_FILE} (re-export it)")
    if sha256_file(folder / ONNX_FILE) != expected:
        raise ModelError(f"{folder / ONNX_FILE}: SHA-256 differs from {METADATA_FILE} (corrupted or replaced)")


def contrast_stages(bundle: Path, prefix: str = CONTRAST_STAGE_PREFIX) -> dict[str, Path]:
    """A bundle's contrast-specific stages: lesion stages ``{"T1w": bundle / "lesion-T1w", ...}``, or cord stages
    with ``prefix=CORD_CONTRAST_PREFIX``."""
    return {
        folder.name.removeprefix(prefix): folder
        for folder in sorted(bundle.glob(f"{prefix}*"))
        if (folder / MODEL_FILE).is_file()
    }


def bundle_stages(folder: Path) -> tuple[str, ...]:
    """A model folder's stages: ``(".",)`` for a single model, the stage folders' names for a bundle, () for neither."""
    if (folder / MODEL_FILE).is_file():
        return (".",)
    stages = [name for name in ("cord", "lesion") if (folder / name / MODEL_FILE).is_file()]
    if not stages:
        return ()
    stages += [path.name for path in contrast_stages(folder).values()]
    stages += [path.name for path in contrast_stages(folder, CORD_CONTRAST_PREFIX).values()]
    return (*stages, *[name for name in ("fp", "localizer", "discs") if (folder / name / MODEL_FILE).is_file()])


def verify_models(paths: list[str | Path]) -> dict[Path, str]:
    """:func:`verify_model_folder` on each model folder, expanding cascade bundles (:func:`bundle_stages`).

    Raises:
        ModelError: a path that is not a model folder, or weights that differ from their recorded checksum.
    """
    verified: dict[Path, str] = {}
    for path in map(Path, paths):
        parts = [path / name for name in bundle_stages(path) if name != "."]
        for folder in parts or [path]:
            if not folder.is_dir():
                raise ModelError(f"{folder}: only a model folder (with {CARD_FILE} or {METADATA_FILE}) has a checksum")
            verified[folder] = verify_model_folder(folder)
    return verified


def _same_value(recorded: Any, value: Any) -> bool:
    if isinstance(recorded, list | tuple) and isinstance(value, list | tuple):
        return len(recorded) == len(value) and all(_same_value(a, b) for a, b in zip(recorded, value, strict=True))
    if isinstance(recorded, int | float) and isinstance(value, int | float):
        return abs(float(recorded) - float(value)) <= 1e-6
    return recorded == value


def check_metadata(bundle: ModelBundle) -> None:
    """Refuse a model whose metadata contradicts its config or this version's conventions.

    The metadata (target, classes, orientation, spacing, normalisation, architecture) describes what the weights
    were trained for; the config is what inference will do. A disagreement means an edited or mixed-up folder.

    Raises:
        ModelError: naming the first field that disagrees.
    """
    meta, config = bundle.metadata, bundle.config
    recorded = meta.recorded()
    expected: dict[str, Any] = {
        "target": config.data.target,
        "out_channels": 1,
        "in_channels": 1,
        "orientation": "RAS",
        "spacing_mm": list(config.preprocess.spacing_mm) if config.preprocess.spacing_mm else None,
        "normalization": config.preprocess.normalization,
        "contrast_normalization": dict(config.preprocess.contrast_normalization),
        "architecture": config.model.architecture,
    }
    for key, value in expected.items():
        if key in recorded and not _same_value(getattr(meta, key), value):
            raise ModelError(f"{bundle.source}: metadata {key} is {getattr(meta, key)!r} but its config says {value!r}")


def _typed(metadata: Any, path: Path) -> ModelMetadata:
    """``metadata.json`` as :class:`ModelMetadata`.

    Raises:
        ModelError: not a JSON object, or a known key of the wrong type (one line naming it).
    """
    if not isinstance(metadata, dict):
        raise ModelError(f"{path}: {METADATA_FILE} is not a JSON object")
    try:
        return ModelMetadata.model_validate(metadata)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ModelError(f"{path}: metadata {key}: {first['msg'].lower()} (got {first.get('input')!r})") from None


def read_model_folder(path: str | Path) -> ModelBundle:
    """A model folder's config and metadata without its weights (for an exported engine: no torch needed).

    Raises:
        ModelError: not a model folder, an unreadable config or metadata, or metadata that contradicts the config.
    """
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise ModelError(f"{path}: not a model folder (no {CONFIG_FILE})")
    with _as_model_error(path):
        metadata_path = path / METADATA_FILE
        metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
        bundle = ModelBundle(state_dict=None, config=load_config(path / CONFIG_FILE), metadata=_typed(metadata, path),
                             source=path)
        check_metadata(bundle)
        return bundle


@contextlib.contextmanager
def _as_model_error(path: Path) -> Iterator[None]:
    """Any config, metadata or file error inside, as one ModelError line naming ``path``."""
    try:
        yield
    except ModelError:
        raise
    except (LesionsegError, OSError, ValueError) as error:
        raise ModelError(f"{path}: cannot load model ({one_line(error)})") from None


def load_model(path: str | Path) -> ModelBundle:
    """Load a model folder (its weights, then :func:`read_model_folder`), or a training checkpoint
    (``best.pt``/``last.pt``) that embeds its config.

    Raises:
        ModelError: the folder or file is missing, incomplete or unreadable, or its metadata contradicts its config
            (:func:`check_metadata`).
    """
    path = Path(path)
    if path.is_dir():
        state = load_checkpoint(path / MODEL_FILE)
        return replace(read_model_folder(path), state_dict=state)
    payload = load_checkpoint(path)
    with _as_model_error(path):
        if "model" not in payload or "config" not in payload:
            raise ModelError(f"{path}: not a lesionseg training checkpoint (no 'model' or 'config' entry)")
        config = config_from_dict(payload["config"], source=f"{path} (embedded config)")
        metadata = _typed(payload.get("metadata", {}), path)
        bundle = ModelBundle(state_dict=payload["model"], config=config, metadata=metadata, source=path)
        check_metadata(bundle)
        return bundle
