"""The real-scan exam of a cascade, without labels: every scan of ../shared/data/real-fullfov and ../shared/data/real.

Per scan: axial slices with a cord mask (of the slices the cord spans: the manual mask's where there is one, the
whole stack on the whole-neck axial scans, otherwise first to last slice with cord), connected components of the
cord mask, median tilt-corrected cross-sectional area (mm2), lesions reported (every subject is healthy: each one
is a false positive), cord Dice between the MToff and MTon scans of one session (same grid), cord Dice against the
manual mask where there is one (PAM50: also inside the level map's extent) and seconds per scan. The errsm30 crops,
whose names declare no contrast, are also run with the contrast a user would declare (``--contrast``), i.e. through
that contrast's cord and lesion stages: their lesions and cord Dice are reported beside the general stages'. A PNG
montage per scan (and per declared run) shows every slice of the acquisition plane with the cord (cyan) and lesion
(red) contours: look at each one.

    python scripts/real_scan_check.py --out runs/real-check [--model lesionseg/models/cascade-synth-v6]
    python scripts/real_scan_check.py --out runs/real-check-clahe --cord-clahe 0.01   # lesionseg infer --cord-clahe

Writes ``OUT/results.json``, ``OUT/table.md``, ``OUT/montages/<scan>.png`` and
``OUT/montages/<scan>_as-<contrast>.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lesionseg.analysis.cord_qc import component_count, cord_coverage, is_axial_stack, median_csa_mm2
from lesionseg.evaluation.metrics import dice
from lesionseg.inference.cascade import CascadePredictor, load_pipeline
from lesionseg.inference.predictor import Predictor
from lesionseg.inference.segmenter import InferenceSettings
from lesionseg.io.nifti import LoadedImage, load_image, load_label_for, strip_nifti_extension
from lesionseg.io.registry import default_model
from lesionseg.reporting.figures import acquisition_axis, montage
from lesionseg.transforms.postprocessing import label_components

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Real crops with manual cord masks (and the PAM50 level map), relative to ../shared/data/real.
MANUAL = {
    "sct-errsm30/t2/t2.nii.gz": "sct-errsm30/t2/t2_seg-manual.nii.gz",
    "sct-errsm30/t1/t1w.nii.gz": "sct-errsm30/t1/t1w_seg-manual.nii.gz",
    "sct-errsm30/t2s/t2s.nii.gz": "sct-errsm30/t2s/t2s_seg.nii.gz",
    "pam50-small/PAM50_small_t2.nii.gz": "pam50-small/PAM50_small_cord.nii.gz",
}
LEVELS = {"pam50-small/PAM50_small_t2.nii.gz": "pam50-small/PAM50_small_levels.nii.gz"}
#: The contrast a user would declare (``--contrast``) for the crops whose names are not BIDS: these are also run
#: through that contrast's cord and lesion stages, and their figures reported beside the general stages'.
DECLARED = {
    "sct-errsm30/t2/t2.nii.gz": "T2w", "sct-errsm30/t1/t1w.nii.gz": "T1w", "sct-errsm30/t2s/t2s.nii.gz": "T2starw",
}


@dataclass
class ScanCheck:
    """The label-free (and, where there is a manual mask, labelled) figures of one scan."""

    scan: str
    slices_with_cord: int
    slices_spanned: int
    gaps: int
    multi_component_slices: int
    components: int
    median_csa_mm2: float | None
    lesions: int
    lesion_volume_mm3: float
    seconds: float
    dice_manual: float | None = None
    dice_in_levels: float | None = None
    dice_mt_pair: float | None = None
    #: with the contrast declared (:data:`DECLARED`): that contrast, the lesions its stages report and their cord's Dice
    declared_contrast: str | None = None
    lesions_declared: int | None = None
    dice_manual_declared: float | None = None


def _spanned(cord: np.ndarray, manual: np.ndarray | None, whole_stack: bool) -> int:
    if manual is not None:
        return cord_coverage(manual).with_cord
    if whole_stack:
        return int(cord.shape[2])
    coverage = cord_coverage(cord)
    return coverage.with_cord + coverage.gaps


def _declared(pipeline: CascadePredictor, image: LoadedImage, contrast: str, check: ScanCheck, truth: np.ndarray | None,
              montage_path: Path) -> None:
    """Run the cascade on ``image`` declared as ``contrast`` (``lesionseg infer --contrast``: that contrast's cord and
    lesion stages), record its lesions and cord Dice in ``check`` and write its montage."""
    result = pipeline.predict_loaded(replace(image, contrast=contrast))
    check.declared_contrast = contrast
    check.lesions_declared = label_components(result.lesion.mask)[1]
    if truth is not None:
        check.dice_manual_declared = round(dice(result.cord.mask, truth), 3)
    _montage(image, result.cord.mask, result.lesion.mask, truth, montage_path,
             f"{check.scan} as {contrast}: {check.lesions_declared} lesion(s)")


def _montage(image: LoadedImage, cord: np.ndarray, lesion: np.ndarray, truth: np.ndarray | None, path: Path,
             title: str) -> None:
    """Every slice of the acquisition plane with the cord (cyan), lesion (red) and manual cord (yellow) contours."""
    masks = {"cord": (cord, "cyan"), "lesion": (lesion, "red")}
    if truth is not None:
        masks["manual cord"] = (truth, "yellow")
    axis = acquisition_axis(image.data.shape)
    few = image.data.shape[axis] <= 30  # a whole-neck stack: large panels, to see the cord in a 23 cm field
    figure = montage(image.data, masks, axis=axis, spacing_mm=image.spacing_mm, columns=6 if few else 10,
                     panel_inches=3.4 if few else 2.0, title=title)
    figure.savefig(path, dpi=70)
    plt.close(figure)


def check_scan(pipeline: CascadePredictor, path: Path, name: str, out: Path, manual: Path | None,
               levels: Path | None, contrast: str | None = None) -> tuple[ScanCheck, np.ndarray]:
    """Run the cascade on one scan, measure it and write its montage; returns the figures and the cord mask."""
    started = time.perf_counter()
    image = load_image(path)
    result = pipeline.predict_loaded(image)
    seconds = time.perf_counter() - started
    cord, lesion = result.cord.mask, result.lesion.mask
    truth = load_label_for(image, manual).data > 0 if manual else None
    coverage = cord_coverage(cord)
    labels, count = label_components(lesion)
    check = ScanCheck(
        scan=name, slices_with_cord=coverage.with_cord,
        slices_spanned=_spanned(cord, truth, whole_stack=is_axial_stack(image.spacing_mm) and truth is None),
        gaps=coverage.gaps, multi_component_slices=coverage.multi_component_slices, components=component_count(cord),
        median_csa_mm2=median_csa_mm2(cord, image.spacing_mm),
        lesions=count, lesion_volume_mm3=round(float(lesion.sum()) * float(np.prod(image.spacing_mm)), 1),
        seconds=round(seconds, 2),
    )
    if truth is not None:
        check.dice_manual = round(dice(cord, truth), 3)
    if contrast is not None:
        _declared(pipeline, image, contrast, check, truth, out / "montages" / f"{name}_as-{contrast}.png")
    if levels is not None:
        extent = load_image(levels).data.any(axis=(0, 1))  # vertebral levels 1..N: an image, not a binary label
        check.dice_in_levels = round(dice(cord[:, :, extent], truth[:, :, extent]), 3)
    _montage(image, cord, lesion, truth, out / "montages" / f"{name}.png",
             f"{name}: cord on {coverage.with_cord}/{check.slices_spanned} slices, {check.components} component(s), "
             f"{count} lesion(s)")
    return check, cord


def scans(shared: Path) -> list[tuple[Path, str, Path | None, Path | None, str | None]]:
    """(image, name, manual cord mask, level map, declared contrast) of every scan in the two folders that exist."""
    found = []
    fullfov = shared / "real-fullfov"
    for path in sorted(fullfov.glob("*.nii.gz")):
        found.append((path, strip_nifti_extension(path), None, None, None))
    real = shared / "real"
    for image, manual in MANUAL.items():
        if (real / image).exists():
            name = image.split("/")[0] + "_" + strip_nifti_extension(image)
            levels = real / LEVELS[image] if image in LEVELS else None
            found.append((real / image, name, real / manual, levels, DECLARED.get(image)))
    return found


def markdown(checks: list[ScanCheck]) -> str:
    """The table of the closing note and the model card."""
    header = ("| scan | cord slices | components | median CSA mm2 | lesions (mm3) | MToff vs MTon Dice | "
              "Dice vs manual | s |\n|---|---|---|---|---|---|---|---|\n")
    rows = []
    for c in checks:
        manual = "-" if c.dice_manual is None else f"{c.dice_manual:.3f}"
        if c.dice_manual_declared is not None:
            manual += f"; as {c.declared_contrast}: {c.dice_manual_declared:.3f}"
        if c.dice_in_levels is not None:
            manual += f" (in level map: {c.dice_in_levels:.3f})"
        pair = "-" if c.dice_mt_pair is None else f"{c.dice_mt_pair:.3f}"
        csa = "-" if c.median_csa_mm2 is None else f"{c.median_csa_mm2:.0f}"
        lesions = f"{c.lesions} ({c.lesion_volume_mm3:.0f})"
        if c.declared_contrast is not None:
            lesions += f"; as {c.declared_contrast}: {c.lesions_declared}"
        rows.append(f"| {c.scan} | {c.slices_with_cord} / {c.slices_spanned} | {c.components} | {csa} | "
                    f"{lesions} | {pair} | {manual} | {c.seconds:.1f} |")
    return header + "\n".join(rows) + "\n"


def run_checks(pipeline: CascadePredictor, shared: Path, out: Path) -> list[ScanCheck]:
    """:func:`check_scan` on every scan of :func:`scans`, with the MToff / MTon cord Dice of each pair."""
    checks, cords = [], {}
    for path, name, manual, levels, contrast in scans(shared):
        check, cords[name] = check_scan(pipeline, path, name, out, manual, levels, contrast)
        checks.append(check)
        print(json.dumps(asdict(check)), flush=True)
    for check in checks:
        partner = check.scan.replace("acq-MTon", "acq-MToff")
        if partner != check.scan and partner in cords:
            score = round(dice(cords[check.scan], cords[partner]), 3)
            check.dice_mt_pair = score
            next(c for c in checks if c.scan == partner).dice_mt_pair = score
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None, help="a cascade bundle (default: the shipped default)")
    parser.add_argument("--localizer", type=Path, default=None,
                        help="a cord localiser (model folder or checkpoint) to use instead of the bundle's own")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder (holds real, real-fullfov)")
    parser.add_argument("--cord-clahe", type=float, default=None,
                        help="equalise each axial slice before the cord model (lesionseg infer --cord-clahe)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    (args.out / "montages").mkdir(parents=True, exist_ok=True)
    pipeline = load_pipeline(args.model or default_model(), device="cpu")
    if args.cord_clahe is not None:
        pipeline = pipeline.with_settings(InferenceSettings(cord_clahe_clip_limit=args.cord_clahe))
    if args.localizer is not None:
        pipeline.localizer = Predictor.from_model(args.localizer, device="cpu")
    checks = run_checks(pipeline, args.shared, args.out)
    (args.out / "results.json").write_text(json.dumps([asdict(c) for c in checks], indent=1) + "\n")
    table = markdown(checks)
    (args.out / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
