"""``lesionseg infer``: segment NIfTI files, folders, BIDS datasets and DICOM series; one bad file never stops
the batch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from lesionseg.cli.common import handle_errors


def infer(
    inputs: Annotated[list[Path], typer.Argument(help="NIfTI files, folders, BIDS datasets or DICOM folders.")],
    model: Annotated[
        list[Path] | None,
        typer.Option(
            help="Model folder (RUN/model), checkpoint, cascade bundle or shipped model name (lesionseg models); "
            "repeat for an ensemble. Default: the shipped default cascade."
        ),
    ] = None,
    cascade: Annotated[
        tuple[Path, Path] | None, typer.Option(help="CORD_MODEL LESION_MODEL: segment the cord, then lesions in a crop.")
    ] = None,
    fp_model: Annotated[Path | None, typer.Option(help="False-positive-reduction model (second stage).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("lesionseg-output"),
    output_format: Annotated[
        Literal["nifti", "dicom-seg"], typer.Option("--format", help="dicom-seg: also a DICOM SEG for DICOM inputs.")
    ] = "nifti",
    soft: Annotated[bool, typer.Option(help="Also write <stem>_lesionseg-soft.nii.gz probabilities.")] = False,
    tta: Annotated[bool, typer.Option(help="Flip test-time augmentation (8 mirrorings, 8x slower).")] = False,
    uncertainty: Annotated[bool, typer.Option(help="Write the variance over TTA flips / ensemble members.")] = False,
    threshold: Annotated[float | None, typer.Option(help="Probability threshold (default: the model's).")] = None,
    min_lesion_mm3: Annotated[
        float | None, typer.Option(min=0, help="Remove lesions of this volume or less (cascade default: 3 mm3).")
    ] = None,
    min_cord_fraction: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Cascade: keep a lesion only when this share of it lies inside the predicted "
                                        "cord (default 0.5; 0: off)."),
    ] = None,
    skip_existing: Annotated[bool, typer.Option(help="Skip inputs whose lesion mask already exists (resume).")] = False,
    series_uid: Annotated[str | None, typer.Option(help="DICOM: only this SeriesInstanceUID.")] = None,
    series_description: Annotated[str | None, typer.Option(help="DICOM: only series whose description matches.")] = None,
    levels_suffix: Annotated[
        str | None, typer.Option(help="Vertebral levels for the lesion table from <stem>_<SUFFIX>.nii.gz beside each input.")
    ] = None,
    accept_no_orientation: Annotated[
        bool, typer.Option(help="Take images whose header has no orientation (qform and sform codes 0) as RAS, "
                                "with a warning, instead of refusing them.")
    ] = False,
    max_voxels: Annotated[int, typer.Option(help="Refuse larger images (from their header, before reading).")] = 512 * 512 * 1024,
    report: Annotated[bool, typer.Option(help="HTML report per image and OUT/index.html.")] = True,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
    engine: Annotated[
        Literal["torch", "onnxruntime"], typer.Option(help="onnxruntime: run MODEL/model.onnx (lesionseg export).")
    ] = "torch",
    memory_budget_mb: Annotated[
        float | None, typer.Option(help="Working memory per pass (MB); larger images go through in slabs.")
    ] = None,
    precision: Annotated[
        Literal["fp32", "bf16"] | None, typer.Option(help="CPU arithmetic: bf16 autocast (default: the model's).")
    ] = None,
    contrast: Annotated[
        str | None,
        typer.Option(help="Contrast of the inputs (T2w, T1w, PSIR, ...); default: each file's BIDS suffix. A cascade "
                          "with a lesion model of that contrast (lesion-<contrast>/) uses it."),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(help="I/N: process every N-th input from the I-th (0-based); under torchrun, RANK/WORLD_SIZE."),
    ] = None,
    verify_checksum: Annotated[
        bool, typer.Option(help="Check each model's model.pt against the SHA-256 in its model card before use.")
    ] = False,
    overlap: Annotated[float | None, typer.Option(help="Sliding-window overlap (default: the model's).")] = None,
    sw_batch_size: Annotated[int | None, typer.Option(help="Windows per forward pass (default: the model's).")] = None,
) -> None:
    """Segment lesions; writes masks on each input's native grid, lesion tables, reports and OUT/summary.csv."""
    with handle_errors():
        from rich.console import Console
        from rich.progress import Progress
        from rich.table import Table

        from lesionseg import __version__
        from lesionseg.inference.batch import BatchOptions, collect_inputs, run_batch, shard_file_name, shard_items
        from lesionseg.inference.cascade import CascadePredictor, load_pipeline

        from lesionseg.io.registry import DEFAULT_MODEL, default_model, resolve_model
        from lesionseg.reporting.inference_html import REPORT_SUFFIX

        check_infer_options(
            {"threshold": threshold, "overlap": overlap, "sw_batch_size": sw_batch_size,
             "memory_budget_mb": memory_budget_mb, "precision": precision},
            device=device, series_description=series_description, max_voxels=max_voxels, levels_suffix=levels_suffix,
        )
        parsed_shard = _parse_shard(shard)
        console = Console(stderr=True)
        if not model and cascade is None:
            model = [default_model()]
            console.print(f"model: the default {DEFAULT_MODEL} ({model[0]}); research use only, not a medical device")
        model = [resolve_model(m) for m in model or []]
        if verify_checksum:
            from lesionseg.io.checkpoint import verify_models

            paths = [*(model or []), *(cascade or ()), *([fp_model] if fp_model else [])]
            for folder, digest in verify_models(paths).items():
                typer.echo(f"verified {folder}: SHA-256 {digest}", err=True)
        predictor = load_pipeline(
            model or None, cascade=cascade, fp_model=fp_model, device=device, tta=tta, engine=engine
        )
        lesions = predictor.lesion_stages if isinstance(predictor, CascadePredictor) else [predictor]
        updates = {"overlap": overlap, "sw_batch_size": sw_batch_size, "threshold": threshold, "min_lesion_mm3": min_lesion_mm3}
        for lesion in lesions:
            for key, value in updates.items():
                if value is not None:
                    setattr(lesion.config.infer, key, value)
        if isinstance(predictor, CascadePredictor):
            rules = {"min_lesion_mm3": min_lesion_mm3, "min_cord_fraction": min_cord_fraction}
            predictor.cascade = predictor.cascade.model_copy(update={k: v for k, v in rules.items() if v is not None})
        stages = lesions
        if isinstance(predictor, CascadePredictor):
            stages = [*lesions, predictor.cord, predictor.localizer]
        for stage in filter(None, stages):
            if precision is not None:
                stage.config.infer.precision = precision
            if memory_budget_mb is not None:
                stage.config.infer.memory_budget_mb = memory_budget_mb
        options = BatchOptions(
            soft=soft,
            uncertainty=uncertainty,
            dicom_seg=output_format == "dicom-seg",
            skip_existing=skip_existing,
            series_uid=series_uid,
            series_description=series_description,
            levels_suffix=levels_suffix,
            max_voxels=max_voxels,
            software_version=__version__,
            contrast=contrast,
            shard=parsed_shard,
            accept_no_orientation=accept_no_orientation,
            extra_outputs=((REPORT_SUFFIX, ".html"),) if report else (),
        )
        reports: dict[str, Path] = {}
        on_result = None
        if report:
            from lesionseg.reporting.inference_html import write_image_report

            name = str(model[0] if model else cascade[1] if cascade else "")

            def on_result(item, image, prediction, cord, table, record) -> None:  # noqa: ANN001
                reports[record.input] = write_image_report(
                    item, image, prediction, cord, table, record, out, model_name=name, model_version=__version__
                )

        total = len(shard_items(collect_inputs(inputs, options=options, out_dir=out)[0], options.shard))
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("infer", total=total)
            records = run_batch(
                predictor, inputs, out, options=options, on_record=lambda record: progress.advance(task), on_result=on_result
            )
        if report:
            from lesionseg.reporting.inference_html import write_index

            write_index(records, reports, out, shard_file_name("index.html", options.shard))
        table = Table(title=f"lesionseg infer -> {out}")
        for column in ("input", "status", "lesions", "volume mm3", "seconds"):
            table.add_column(column, justify="left" if column in ("input", "status") else "right")
        for record in records:
            table.add_row(Path(record.input).name, record.status, str(record.lesions), f"{record.lesion_volume_mm3:.1f}", f"{record.seconds:.2f}")
        Console().print(table)
        counts = {status: sum(1 for r in records if r.status == status) for status in ("ok", "failed", "skipped")}
        summary = out / shard_file_name("summary.csv", options.shard)
        typer.echo(f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped; summary: {summary}", err=True)
        for record in records:
            if record.warning and record.status == "ok":
                typer.echo(f"warning: {record.input}: {record.warning}", err=True)
        failed = [r for r in records if r.status == "failed"]
        for record in failed:
            typer.echo(f"error: {record.error}", err=True)
        if failed:
            raise typer.Exit(1)


def check_infer_options(
    values: dict[str, object], *, device: str, series_description: str | None, max_voxels: int,
    levels_suffix: str | None = None,
) -> None:
    """Validate the options before any model or scan is loaded: the inference settings against the ranges of
    the config's ``infer`` section, the device name, the series regular expression and the voxel limit.

    Raises:
        ConfigError: one line naming the option, its value and what is expected.
    """
    import re

    from pydantic import ValidationError

    from lesionseg.config import InferConfig
    from lesionseg.constants import DEVICE_PATTERN
    from lesionseg.errors import ConfigError

    given = {key: value for key, value in values.items() if value is not None}
    try:
        InferConfig.model_validate(given)
    except ValidationError as error:
        first = error.errors()[0]
        key = str(first["loc"][0])
        option = "--" + key.replace("_", "-")
        raise ConfigError(f"{option} {given.get(key)!r}: {first['msg'].lower()}") from None
    if not re.fullmatch(DEVICE_PATTERN, device):
        raise ConfigError(f"--device {device!r}: expected auto, cpu, cuda, cuda:N or mps")
    if series_description is not None:
        try:
            re.compile(series_description)
        except re.error as error:
            raise ConfigError(f"--series-description {series_description!r}: not a regular expression ({error})") from None
    if max_voxels < 1:
        raise ConfigError(f"--max-voxels {max_voxels}: must be at least 1")
    if levels_suffix is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", levels_suffix):
        raise ConfigError(f"--levels-suffix {levels_suffix!r}: expected a file-name suffix such as 'levels' "
                          "(letters, digits, - and _)")


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` -> (I, N); None -> this process's (RANK, WORLD_SIZE) under torchrun, else None."""
    from lesionseg.errors import ConfigError
    from lesionseg.training.distributed import context_from_env

    if text is None:
        context = context_from_env()
        return (context.rank, context.world_size) if context.enabled else None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard {text!r}: I must be in 0..N-1")
    return index, count
