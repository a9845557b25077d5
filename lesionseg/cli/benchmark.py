"""``lesionseg benchmark``: time every stage of inference and training on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lesionseg.cli.common import handle_errors


def benchmark(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for benchmark.json and benchmark.md.")
    ] = Path("runs/benchmark"),
    repeats: Annotated[int, typer.Option(help="Runs per figure (median, min, max).")] = 3,
    quick: Annotated[bool, typer.Option(help="One small volume, one run, short training: a smoke run.")] = False,
    whole_model: Annotated[Path | None, typer.Option(help="Whole-image model folder (default: untrained).")] = None,
    cord_model: Annotated[Path | None, typer.Option(help="Cord model folder (default: untrained).")] = None,
    lesion_model: Annotated[Path | None, typer.Option(help="Cascaded lesion model folder (default: untrained).")] = None,
    real_scans: Annotated[Path | None, typer.Option(
        help="Only time `lesionseg infer` on the whole-neck axial scans of this folder (../shared/data/real-fullfov): "
             "one scan end to end and a batch, per engine (real-scans.json/.md).")] = None,
    nnunet: Annotated[Path | None, typer.Option(
        help="Only lesionseg and nnU-Net v2 side by side on this nnU-Net raw dataset (DatasetNNN_Name with a test "
             "split, e.g. from ../shared/bench/make_toy_dataset.py): train both for equal minutes, predict, Dice "
             "(nnunet-side-by-side.json/.md). Needs nnunetv2 (the nnunet extra of lesionseg) or "
             "--nnunet-python.")] = None,
    nnunet_python: Annotated[str | None, typer.Option(
        help="A Python that has nnunetv2 (default: this one).")] = None,
    config: Annotated[str, typer.Option(help="lesionseg's training config for --nnunet.")] = "bench",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a value of that config.")] = None,
    tta: Annotated[bool, typer.Option(help="Also time nnU-Net with its mirroring TTA (--nnunet; 6x slower).")] = True,
) -> None:
    """Inference per stage (whole image, cascade, bf16, ONNX Runtime), FLOP rate vs the machine's peak, peak
    memory on a 512 x 512 x 256 volume, training step time and data wait; or, with --real-scans, the shipped
    default on real scans in fresh processes; or, with --nnunet, lesionseg and nnU-Net v2 side by side."""
    with handle_errors():
        if nnunet is not None:
            from lesionseg.benchmark_nnunet import markdown, run_side_by_side

            typer.echo(markdown(run_side_by_side(nnunet, out, nnunet_python=nnunet_python, config=config,
                                                 overrides=set_, tta=tta,
                                                 log=lambda line: typer.echo(line, err=True))))
            return
        if real_scans is not None:
            from lesionseg.benchmark_real import markdown, run_real_scans

            typer.echo(markdown(run_real_scans(real_scans, out, repeats=repeats,
                                               log=lambda line: typer.echo(line, err=True))))
            return
        from lesionseg.benchmark import run

        run(out, repeats=repeats, quick=quick, whole_model=whole_model, cord_model=cord_model, lesion_model=lesion_model,
            log=lambda line: typer.echo(line, err=True))
