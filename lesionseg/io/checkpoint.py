"""Checkpoints and model folders on disk.

- A training checkpoint (``last.pt``, ``best.pt``) is a dict of tensors and plain values (model and optimiser
  state, step, seed, resolved config), written atomically and read with ``torch.load(..., weights_only=True)``.
- A model folder holds ``model.pt`` (a state dict), ``config.yaml`` (the resolved config) and
  ``metadata.json`` (versions, contrast, spacing, orientation, training data, metrics).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from lesionseg.config import Config, config_from_dict, load_config
from lesionseg.errors import LesionsegError, ModelError
from lesionseg.io.atomic import atomic_write, atomic_write_text
from lesionseg.io.validate import one_line

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.yaml"
METADATA_FILE = "metadata.json"


def save_config(config: Config, path: str | Path) -> Path:
    """Write ``config`` as YAML (atomically), so a run can be reproduced from its folder."""
    return atomic_write_text(Path(path), yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def save_checkpoint(payload: dict[str, Any], path: Path) -> Path:
    """Write a checkpoint dict atomically (temporary file + rename)."""
    return atomic_write(Path(path), lambda temporary: torch.save(payload, temporary))


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``: no code runs while loading).

    Raises:
        ModelError: missing, unreadable or unsafe file, or not a lesionseg checkpoint.
    """
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
    """Weights, the config they were trained with, and their metadata."""

    state_dict: dict[str, torch.Tensor]
    config: Config
    metadata: dict[str, Any]
    source: Path


def save_model_folder(
    folder: Path, state_dict: dict[str, torch.Tensor], config: Config, metadata: dict[str, Any]
) -> Path:
    """Write ``model.pt`` + ``config.yaml`` + ``metadata.json`` into ``folder`` (each atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(state_dict, folder / MODEL_FILE)
    save_config(config, folder / CONFIG_FILE)
    atomic_write_text(folder / METADATA_FILE, json.dumps(metadata, indent=2, default=str) + "\n")
    return folder


def load_model(path: str | Path) -> ModelBundle:
    """Load a model folder, or a training checkpoint (``best.pt``/``last.pt``) that embeds its config.

    Raises:
        ModelError: the folder or file is missing, incomplete or unreadable.
    """
    path = Path(path)
    try:
        if path.is_dir():
            state = load_checkpoint(path / MODEL_FILE)
            config = load_config(path / CONFIG_FILE)
            metadata_path = path / METADATA_FILE
            metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
            return ModelBundle(state_dict=state, config=config, metadata=metadata, source=path)
        payload = load_checkpoint(path)
        if "model" not in payload or "config" not in payload:
            raise ModelError(f"{path}: not a lesionseg training checkpoint (no 'model' or 'config' entry)")
        config = config_from_dict(payload["config"], source=f"{path} (embedded config)")
        return ModelBundle(
            state_dict=payload["model"], config=config, metadata=dict(payload.get("metadata", {})), source=path
        )
    except ModelError:
        raise
    except (LesionsegError, OSError, ValueError) as error:
        raise ModelError(f"{path}: cannot load model ({one_line(error)})") from None
