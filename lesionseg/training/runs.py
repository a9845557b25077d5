"""A run folder holds one training run: a new run never lands on another one's checkpoints, a resumed run has
the config its checkpoint was trained with, and the model is exported only from the run that trained it.

Each run has an id (a random hex string) stored in every checkpoint it writes; the export takes ``best.pt`` only
when its id is the running one's.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from lesionseg.config import Config
from lesionseg.errors import TrainingError
from lesionseg.io.checkpoint import load_checkpoint

#: What makes a folder hold a run: a checkpoint or an exported model. (A run killed before its first checkpoint
#: leaves only ``config.yaml``, ``split.json`` and logs: nothing to resume, so a new run may start there.)
RUN_FILES = ("last.pt", "best.pt", "model")
#: Config keys that may change when a run is resumed: how long it trains and where it runs, never what it learns.
RESUMABLE_KEYS = (
    "train.steps",
    "train.val_every",
    "train.device",
    "train.num_workers",
    "train.prefetch_batches",
    "data.root",
    "data.cache_dir",
    "transfer.init_from",
)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: tree}


def config_mismatch(trained: dict[str, Any], config: Config) -> str | None:
    """The first key (dotted) where ``config`` differs from the config a checkpoint was trained with, as
    ``"KEY is A in the checkpoint, B in this config"``; None when they agree on every key that is not resumable."""
    old, new = _flatten(trained), _flatten(config.model_dump(mode="json"))
    for key in sorted(set(old) | set(new)):
        if key in RESUMABLE_KEYS or any(key.startswith(f"{k}.") for k in RESUMABLE_KEYS):
            continue
        if old.get(key) != new.get(key):
            return f"{key} is {old.get(key)!r} in the checkpoint, {new.get(key)!r} in this config"
    return None


def start_run(
    run_dir: Path, config: Config, *, resume: bool, fresh_check: bool = True
) -> tuple[str, dict[str, Any] | None]:
    """Check ``run_dir`` before anything is written into it (``fresh_check``: whether this process checks that
    a new run's folder is free; under torchrun only rank 0 does, as it writes the files).

    Returns:
        The run's id (new, or the resumed checkpoint's) and the resumed checkpoint (None for a new run).

    Raises:
        TrainingError: a new run into a folder that holds another run; ``--resume`` without ``last.pt``, or with
            a config that differs from the checkpoint's in anything but :data:`RESUMABLE_KEYS` (named, one line).
    """
    if not resume:
        present = [name for name in RUN_FILES if fresh_check and (run_dir / name).exists()]
        if present:
            raise TrainingError(
                f"{run_dir}: holds another training run ({', '.join(present)}); continue it with --resume or "
                "train into another --out"
            )
        return uuid.uuid4().hex, None
    last = run_dir / "last.pt"
    if not last.is_file():
        raise TrainingError(f"{run_dir}: no last.pt to resume from (train without --resume first)")
    state = load_checkpoint(last)
    mismatch = config_mismatch(state.get("config") or {}, config)
    if mismatch is not None:
        raise TrainingError(
            f"{last}: cannot resume: {mismatch} (only {', '.join(RESUMABLE_KEYS)} may change; train a new run "
            "into another --out)"
        )
    return str(state.get("run_id") or ""), state


def best_weights(run_dir: Path, run_id: str) -> dict[str, Any] | None:
    """The weights of ``run_dir/best.pt`` when this run wrote it; None when there is none.

    Raises:
        TrainingError: ``best.pt`` belongs to another run (it is never exported as this one's model).
    """
    path = run_dir / "best.pt"
    if not path.is_file():
        return None
    state = load_checkpoint(path)
    if str(state.get("run_id") or "") != run_id:
        raise TrainingError(f"{path}: written by another training run; not exported as this run's model")
    return state["model"]
