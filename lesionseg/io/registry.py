"""Models found by name: the ones shipped inside the package (package data, read through
:mod:`importlib.resources`, so a pip-installed wheel has them) and the models a site installs into the user's
model folder (``lesionseg models install FOLDER``). Shipped configs: :func:`lesionseg.config.resolve_config`.

A model is a model folder (``model.pt``, ``config.yaml``, ``metadata.json``, ``MODEL_CARD.md``) or a cascade
bundle (``cord/`` and ``lesion/`` model folders, optionally ``localizer/``, ``fp/`` and contrast-specific lesion
and cord models ``lesion-<contrast>/``, ``cord-<contrast>/``, each with its card, and a card of the whole).
:data:`DEFAULT_MODEL` is what
``lesionseg infer`` uses when no model is given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lesionseg.config import package_folder
from lesionseg.errors import ModelError, OutputError
from lesionseg.io.checkpoint import CARD_FILE, MODEL_FILE, bundle_stages, verify_models

#: The cascade ``lesionseg infer`` uses without ``--model`` / ``--cascade``.
DEFAULT_MODEL = "cascade-synth-v6"
#: Environment variable naming another folder of shipped models (instead of the package's).
MODELS_ENV = "LESIONSEG_MODELS"
#: Environment variable naming the folder of installed models (default: the platform's user data folder).
USER_MODELS_ENV = "LESIONSEG_USER_MODELS"


def models_dir() -> Path:
    """``$LESIONSEG_MODELS``, else the models shipped in the package (``lesionseg/models``)."""
    return Path(os.environ.get(MODELS_ENV) or package_folder("models"))


def user_models_dir() -> Path:
    """``$LESIONSEG_USER_MODELS``, else ``<user data folder>/lesionseg/models`` by the platform's conventions
    (``~/.local/share`` on Linux, ``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%`` on Windows)."""
    if os.environ.get(USER_MODELS_ENV):
        return Path(os.environ[USER_MODELS_ENV])
    import platformdirs

    return platformdirs.user_data_path("lesionseg", appauthor=False) / "models"


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
    """Every model folder or bundle directly under ``folder``, by name (default: the shipped models, then the
    installed ones of :func:`user_models_dir`)."""
    if folder is None:
        return [*shipped_models(models_dir()), *shipped_models(user_models_dir())]
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
    raise ModelError(
        f"{name_or_path}: no such model folder or model name (shipped in {models_dir()}, installed in "
        f"{user_models_dir()}: {known})"
    )


def default_model() -> Path:
    """The folder of :data:`DEFAULT_MODEL`.

    Raises:
        ModelError: it is not in :func:`models_dir` (give a model explicitly).
    """
    path = models_dir() / DEFAULT_MODEL
    if not bundle_stages(path):
        raise ModelError(f"{path}: the default model is not here; give --model MODEL or --cascade CORD LESION")
    return path


def install_model(folder: str | Path, name: str | None = None) -> Path:
    """Copy a model folder or cascade bundle into :func:`user_models_dir` under ``name`` (default: its folder's
    name), after checking every stage's weights against the SHA-256 its card or metadata records.

    Returns:
        The installed folder.

    Raises:
        ModelError: not a model folder or bundle, weights that fail their checksum, or no checksum recorded.
        OutputError: the name is taken (a shipped or installed model) or the folder cannot be written.
    """
    source = Path(folder)
    if not bundle_stages(source):
        raise ModelError(f"{source}: not a model folder or cascade bundle (model.pt + config.yaml, or cord/ + lesion/)")
    verify_models([source])
    name = name or source.resolve().name
    if name in {model.name for model in shipped_models()}:
        raise OutputError(f"{name}: a model of this name is already shipped or installed; choose another --name")
    target = user_models_dir() / name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
        shutil.copytree(source, staging / name)
        os.replace(staging / name, target)  # appears whole or not at all
        shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        raise OutputError(f"{target}: cannot install ({error.strerror or error})") from None
    return target
