"""``lesionseg infer``: segment NIfTI files, folders, BIDS datasets and DICOM series; one bad file never stops
the batch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from lesionseg.cli.common import handle_errors


# the options of `lesionseg infer`, one alias each (Typer reads them from the annotations)
InputsOption = Annotated[
    list[Path] | None, typer.Argument(help="NIfTI files, folders, BIDS datasets or DICOM folders.", show_default=False)
]

MoreInputsOption = Annotated[
    list[Path] | None, typer.Option("--input", "-i", help="An input, as an option (repeatable; SCT style).")
]

ModelOption = Annotated[
    list[Path] | None,
    typer.Option(
        help="Model folder (RUN/model), checkpoint, cascade bundle or shipped model name (lesionseg models); "
        "repeat for an ensemble. Default: the shipped default cascade."
    ),
]

CascadeOption = Annotated[
    tuple[Path, Path] | None, typer.Option(help="CORD_MODEL LESION_MODEL: segment the cord, then lesions in a crop.")
]

FpModelOption = Annotated[Path | None, typer.Option(help="False-positive-reduction model (second stage).")]

OutOption = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]

OutputFormatOption = Annotated[
    Literal["nifti", "dicom-seg"], typer.Option("--format", help="dicom-seg: also a DICOM SEG for DICOM inputs.")
]

SoftOption = Annotated[bool, typer.Option(help="Also write <stem>_lesionseg-soft.nii.gz probabilities.")]

TtaOption = Annotated[
    bool | None,
    typer.Option("--tta/--no-tta", help="Flip test-time augmentation of the lesion stages and the contrast-specific "
                 "cord stages (8 mirrorings, 8x slower). Default: each model's infer.tta (on in the shipped default)."),
]

UncertaintyOption = Annotated[bool, typer.Option(help="Write the variance over TTA flips / ensemble members.")]

ThresholdOption = Annotated[float | None, typer.Option(help="Probability threshold (default: the model's).")]

MinLesionMm3Option = Annotated[
    float | None, typer.Option(min=0, help="Remove lesions of this volume or less (cascade default: 3 mm3).")
]

MinCordFractionOption = Annotated[
    float | None,
    typer.Option(min=0, max=1, help="Cascade: keep a lesion only when this share of it lies inside the predicted "
                                    "cord (default 0.5; 0: off)."),
]

CordClaheOption = Annotated[
    float | None,
    typer.Option(min=0.001, max=1, help="Cascade: equalise each axial slice before the cord model (CLAHE) with this "
                                        "clip limit, e.g. 0.01, for scans whose cord is nearly as bright as its CSF "
                                        "(MT-off, PD). Default: off."),
]

SkipExistingOption = Annotated[bool, typer.Option(help="Skip inputs an earlier run completed (its completion record says done; resume).")]

SeriesUidOption = Annotated[str | None, typer.Option(help="DICOM: only this SeriesInstanceUID.")]

SeriesDescriptionOption = Annotated[str | None, typer.Option(help="DICOM: only series whose description matches.")]

LevelsSuffixOption = Annotated[
    str | None, typer.Option(help="Vertebral levels for the lesion table from <stem>_<SUFFIX>.nii.gz beside each input.")
]

LevelsKindOption = Annotated[
    Literal["map", "discs", "vertebrae"],
    typer.Option(help="What the --levels-suffix file holds: map, a level in every voxel of each level (e.g. SCT's "
                      "labelled cord); discs, SCT's point labels on the discs (3 = C2-C3); vertebrae, SCT's point "
                      "labels at each vertebra's mid-height (3 = C3)."),
]

AcceptNoOrientationOption = Annotated[
    bool, typer.Option(help="Take images whose header has no orientation (qform and sform codes 0) as RAS, "
                            "with a warning, instead of refusing them.")
]

MaxVoxelsOption = Annotated[int, typer.Option(help="Refuse larger images (from their header, before reading).")]

BidsDerivativesOption = Annotated[
    bool, typer.Option(help="Write OUT as a BIDS derivative dataset (dataset_description.json, BIDS names, JSON "
                            "sidecars with Sources and the models' SHA-256); inputs need BIDS names.")
]

ReportOption = Annotated[bool, typer.Option(help="HTML report per image and OUT/index.html.")]

DeviceOption = Annotated[str, typer.Option(help="auto | cpu | cuda.")]

EngineOption = Annotated[
    Literal["auto", "torch", "onnxruntime"],
    typer.Option(help="onnxruntime: run MODEL/model.onnx (lesionseg export); auto: it when every model has one and "
                      "the device is the CPU, else torch."),
]

MemoryBudgetMbOption = Annotated[
    float | None, typer.Option(help="Working memory per pass (MB); larger images go through in slabs.")
]

PrecisionOption = Annotated[
    Literal["fp32", "bf16"] | None, typer.Option(help="CPU arithmetic: bf16 autocast (default: the model's).")
]

ContrastOption = Annotated[
    str | None,
    typer.Option(help="Contrast of the inputs (T2w, T1w, PSIR, ...); default: each file's BIDS suffix. A cascade "
                      "with a lesion or cord model of that contrast (lesion-<contrast>/, cord-<contrast>/) uses it."),
]

ShardOption = Annotated[
    str | None,
    typer.Option(help="I/N: process every N-th input from the I-th (0-based); under torchrun, RANK/WORLD_SIZE."),
]

VerifyChecksumOption = Annotated[
    bool, typer.Option(help="Check each model's model.pt against the SHA-256 in its model card before use.")
]

OverlapOption = Annotated[float | None, typer.Option(help="Sliding-window overlap (default: the model's).")]

SwBatchSizeOption = Annotated[int | None, typer.Option(help="Windows per forward pass (default: the model's).")]


def infer(
    inputs: InputsOption = None,
    more_inputs: MoreInputsOption = None,
    model: ModelOption = None,
    cascade: CascadeOption = None,
    fp_model: FpModelOption = None,
    out: OutOption = Path("lesionseg-output"),
    output_format: OutputFormatOption = "nifti",
    soft: SoftOption = False,
    tta: TtaOption = None,
    uncertainty: UncertaintyOption = False,
    threshold: ThresholdOption = None,
    min_lesion_mm3: MinLesionMm3Option = None,
    min_cord_fraction: MinCordFractionOption = None,
    cord_clahe: CordClaheOption = None,
    skip_existing: SkipExistingOption = False,
    series_uid: SeriesUidOption = None,
    series_description: SeriesDescriptionOption = None,
    levels_suffix: LevelsSuffixOption = None,
    levels_kind: LevelsKindOption = "map",
    accept_no_orientation: AcceptNoOrientationOption = False,
    max_voxels: MaxVoxelsOption = 512 * 512 * 1024,
    bids_derivatives: BidsDerivativesOption = False,
    report: ReportOption = True,
    device: DeviceOption = "auto",
    engine: EngineOption = "auto",
    memory_budget_mb: MemoryBudgetMbOption = None,
    precision: PrecisionOption = None,
    contrast: ContrastOption = None,
    shard: ShardOption = None,
    verify_checksum: VerifyChecksumOption = False,
    overlap: OverlapOption = None,
    sw_batch_size: SwBatchSizeOption = None,
) -> None:
    """Segment lesions; writes masks on each input's native grid, lesion tables, reports and OUT/summary.csv."""
    with handle_errors():
        from lesionseg import __version__
        from lesionseg.api import load_segmenter
        from lesionseg.cli.batch_progress import run_with_progress
        from lesionseg.errors import ConfigError
        from lesionseg.inference.batch import BatchOptions
        from lesionseg.inference.segmenter import InferenceSettings

        if not (inputs := [*(inputs or []), *(more_inputs or [])]):
            raise ConfigError("no input: give NIfTI files, folders or DICOM folders (or -i INPUT)")
        settings = InferenceSettings(threshold=threshold, min_lesion_mm3=min_lesion_mm3, min_cord_fraction=min_cord_fraction,
                                     overlap=overlap, sw_batch_size=sw_batch_size, precision=precision,
                                     memory_budget_mb=memory_budget_mb, cord_clahe_clip_limit=cord_clahe)
        check_infer_options(settings, device=device, series_description=series_description, max_voxels=max_voxels,
                            levels_suffix=levels_suffix, levels_kind=levels_kind)
        models = _models(model, cascade, fp_model, verify_checksum)
        name = str(models[0] if models else cascade[1] if cascade else "")
        options = BatchOptions(
            soft=soft, uncertainty=uncertainty, dicom_seg=output_format == "dicom-seg", skip_existing=skip_existing,
            series_uid=series_uid, series_description=series_description, levels_suffix=levels_suffix,
            levels_kind=levels_kind, max_voxels=max_voxels, software_version=__version__, contrast=contrast,
            shard=_parse_shard(shard), accept_no_orientation=accept_no_orientation, bids_derivatives=bids_derivatives,
            model_name=Path(name).name)
        segmenter = load_segmenter(models or None, cascade=cascade, fp_model=fp_model, device=device, tta=tta,
                                   engine=engine, settings=settings)
        records = run_with_progress(segmenter, inputs, out, options, report_model=name if report else None)
        if any(record.status == "failed" for record in records):
            raise typer.Exit(1)


def _models(model: list[Path] | None, cascade, fp_model: Path | None, verify_checksum: bool) -> list[Path]:  # noqa: ANN001
    """The model folders (the default cascade when none is given), their checksums verified on request."""
    from lesionseg.io.registry import DEFAULT_MODEL, default_model, resolve_model

    if not model and cascade is None:
        model = [default_model()]
        typer.echo(f"model: the default {DEFAULT_MODEL} ({model[0]}); research use only, not a medical device", err=True)
    models = [resolve_model(m) for m in model or []]
    if verify_checksum:
        from lesionseg.io.checkpoint import verify_models

        for folder, digest in verify_models([*models, *(cascade or ()), *([fp_model] if fp_model else [])]).items():
            typer.echo(f"verified {folder}: SHA-256 {digest}", err=True)
    return models


def check_infer_options(
    settings: object, *, device: str, series_description: str | None, max_voxels: int, levels_suffix: str | None = None,
    levels_kind: str = "map",
) -> None:
    """Validate the options before any model or scan is loaded: the inference settings against the ranges of
    the config's ``infer`` section, the device name, the series regular expression and the voxel limit.

    Raises:
        ConfigError: one line naming the option, its value and what is expected.
    """
    import re
    from dataclasses import asdict

    from pydantic import ValidationError

    from lesionseg.config import InferConfig
    from lesionseg.constants import DEVICE_PATTERN
    from lesionseg.errors import ConfigError

    given = {key: value for key, value in asdict(settings).items() if value is not None}
    for key in ("min_cord_fraction", "cord_clahe_clip_limit"):  # cascade settings, range-checked by typer
        given.pop(key, None)
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
    if levels_kind != "map" and levels_suffix is None:
        raise ConfigError(f"--levels-kind {levels_kind}: give --levels-suffix too "
                          "(the point-label file beside each input)")


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` -> (I, N); None -> this process's (RANK, WORLD_SIZE) under torchrun, else None."""
    from lesionseg.errors import ConfigError
    from lesionseg.ranks import context_from_env

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
