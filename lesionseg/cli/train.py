"""``lesionseg train``: train a 3D U-Net from a YAML config on a BIDS dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lesionseg.cli.common import handle_errors


def train(
    config: Annotated[
        str, typer.Argument(help="YAML config file, or a shipped config's name (demo, cord_t2w, lesion_t2w_cascade, ...).")
    ],
    data: Annotated[Path | None, typer.Option(help="BIDS dataset; default: data.root of the config.")] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder: checkpoints, TensorBoard logs, exported model.")
    ] = Path("runs/latest"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config value, e.g. train.lr=1e-3.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.pt.")] = False,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda (default: train.device).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: train.seed).")] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(help="Start from this model's weights (transfer learning; mode: --set transfer.mode=...)."),
    ] = None,
) -> None:
    """Train a lesion (or cord) segmentation model; writes OUT/model for `lesionseg infer`."""
    with handle_errors():
        from rich.console import Console

        from lesionseg.cli.progress import RichTrainingProgress
        from lesionseg.config import load_config
        from lesionseg.training.distributed import context_from_env
        from lesionseg.training.trainer import train as run_training

        overrides = list(set_ or [])
        if device is not None:
            overrides.append(f"train.device={device}")
        if seed is not None:
            overrides.append(f"train.seed={seed}")
        if init_from is not None:
            overrides.append(f"transfer.init_from={init_from}")
        cfg = load_config(config, overrides)
        console = Console(stderr=True)
        result = run_training(cfg, data_root=data, run_dir=out, resume=resume, callback=RichTrainingProgress(console))
        if not context_from_env().is_main:
            return  # under torchrun, rank 0 reports
        best = f"{result.best_val_dice:.3f} (step {result.best_step})" if result.best_val_dice is not None else "n/a"
        console.print(
            f"trained steps {result.start_step}->{result.steps} in {result.seconds:.0f} s "
            f"({result.seconds_per_step:.3f} s/step, data wait {100 * result.data_wait_fraction:.1f}%); "
            f"best val Dice {best}; model: {result.model_dir}"
        )
