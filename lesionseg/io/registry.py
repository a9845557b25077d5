"""Shipped models: the folders under ``models/`` (or ``$LESIONSEG_MODELS``), found by name.

A shipped model is a model folder (``model.pt``, ``config.yaml``, ``metadata.json``, ``MODEL_CARD.md``) or a
cascade bundle (``cord/`` and ``lesion/`` model folders, optionally ``fp/`` and contrast-specific lesion models
``lesion-<contrast>/``, each with its card, and a card of the whole).
:data:`DEFAULT_MODEL` is what ``lesionseg infer`` uses when no model is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lesionseg.errors import ModelError
from lesionseg.io.checkpoint import CARD_FILE, MODEL_FILE, bundle_stages

#: The cascade ``lesionseg infer`` uses without ``--model`` / ``--cascade``.
DEFAULT_MODEL = "cascade-synth-v2"
#: Environment variable naming another folder of shipped models.
MODELS_ENV = "LESIONSEG_MODELS"


def models_dir() -> Path:
    """``$LESIONSEG_MODELS``, else the ``models/`` folder beside the package (a source checkout)."""
    return Path(os.environ.get(MODELS_ENV) or Path(__file__).resolve().parents[2] / "models")


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model: its name, folder, stages (``cord``/``lesion`` or the folder itself) and card."""

    name: str
    path: Path
    stages: tuple[str, ...]
    card: str

    @property
    def title(self) -> str:
        """The card's first heading, without the ``#``."""
        return next((line.lstrip("# ").strip() for line in self.card.splitlines() if line.startswith("#")), self.name)

    @property
    def size_mb(self) -> float:
        return sum(p.stat().st_size for p in self.path.rglob(MODEL_FILE)) / 2**20


def shipped_models(folder: Path | None = None) -> list[ShippedModel]:
    """Every model folder or bundle directly under ``folder`` (default :func:`models_dir`), by name."""
    folder = folder or models_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        stages = bundle_stages(path)
        if stages:
            card = path / CARD_FILE
            found.append(ShippedModel(path.name, path, stages, card.read_text(encoding="utf-8") if card.is_file() else ""))
    return found


def resolve_model(name_or_path: str | Path) -> Path:
    """A model path as given when it exists, else the shipped model of that name.

    Raises:
        ModelError: neither a path nor a shipped model's name.
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = {model.name: model.path for model in shipped_models()}
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    known = ", ".join(shipped) or "none"
    raise ModelError(f"{name_or_path}: no such model folder or shipped model (shipped in {models_dir()}: {known})")


def default_model() -> Path:
    """The folder of :data:`DEFAULT_MODEL`.

    Raises:
        ModelError: it is not in :func:`models_dir` (give a model explicitly).
    """
    path = models_dir() / DEFAULT_MODEL
    if not bundle_stages(path):
        raise ModelError(f"{path}: the default model is not here; give --model MODEL or --cascade CORD LESION")
    return path
