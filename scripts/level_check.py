"""The vertebral-level exam: automatic levels against the real scans that carry level labels.

For ../shared/data/real/pam50-small (PAM50_small_levels.nii.gz, levels 1..20 in the cord) and the errsm30 T2w
(t2_seg-manual_labeled.nii.gz, levels 2..5): the cascade's cord model, a disc model and a C2 model run on the scan,
the discs along the cord are named from C2 (the disc at its lower end is C2-C3, :mod:`lesionseg.analysis.discs`), and
every labelled cord voxel of the reference gets the level of its axial slice. Reported per scan: % of labelled voxels
whose level is right (on errsm30 also by SCT's vertebral mid-height labels of the scan, which disagree by one level),
and for each disc of the reference (a change of level between two slices) the signed distance (mm, + = ours
higher) to our disc of the same name. A PNG per scan (the mid-sagittal slice, reference levels left, ours right,
discs marked) is written for looking at.

    python scripts/level_check.py --discs runs/discs/model --c2 runs/c2/model --out runs/level-check [--model CASCADE]

Writes ``OUT/levels.json``, ``OUT/levels.md`` and ``OUT/<scan>.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lesionseg.analysis.discs import find_c2, find_discs, vertebral_levels
from lesionseg.analysis.levels import level_name, levels_from_points, slice_levels
from lesionseg.inference.cascade import load_pipeline
from lesionseg.inference.predictor import Predictor
from lesionseg.io.nifti import load_image
from lesionseg.io.registry import default_model

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
#: scan -> its reference level map (cord voxels labelled with SCT level values)
SCANS = {
    "errsm30 T2w": ("sct-errsm30/t2/t2.nii.gz", "sct-errsm30/t2/t2_seg-manual_labeled.nii.gz"),
    "PAM50 T2": ("pam50-small/PAM50_small_t2.nii.gz", "pam50-small/PAM50_small_levels.nii.gz"),
}
#: scan -> SCT's vertebral mid-height point labels of the same scan, a second reference: on errsm30 they name every
#: level one higher than its labelled cord does (docs/lesion-analysis.md, "Vertebral levels")
POINT_LABELS = {"errsm30 T2w": "sct-errsm30/t2/labels.nii.gz"}


def check(name: str, image_path: Path, reference_path: Path, cascade, models: tuple[Predictor, Predictor],
          out: Path) -> dict:
    """Levels of one scan against its reference; writes its PNG."""
    image = load_image(image_path)
    reference = np.rint(load_image(reference_path).data).astype(np.int32)  # same grid as the scan (checked)
    assert reference.shape == image.data.shape, reference_path
    cord = cascade.predict_cord(image).mask
    disc_mask, c2_mask = (model.predict_loaded(image).mask for model in models)
    peaks = find_discs(disc_mask, cord, image.spacing_mm)
    heights, ours = vertebral_levels(disc_mask, c2_mask, cord, image.spacing_mm, labelled=np.ones_like(reference))
    labelled = reference > 0
    correct = float((ours[labelled] == reference[labelled]).mean()) if labelled.any() else float("nan")
    result = {"scan": name, "labelled_voxels": int(labelled.sum()), "percent_correct": round(100 * correct, 1)}
    if name in POINT_LABELS and (REAL / POINT_LABELS[name]).is_file():
        points = levels_from_points(np.rint(load_image(REAL / POINT_LABELS[name]).data).astype(np.int32), "vertebrae")
        result["percent_correct_point_labels"] = round(100 * float((ours[labelled] == points[labelled]).mean()), 1)
    found = {f"{level_name(2 + k)}-{level_name(3 + k)}": height for k, height in enumerate(heights)}
    errors = {disc.name: round((found[disc.name] - disc.z) * image.spacing_mm[2], 1) if disc.name in found else None
              for disc in slice_levels(reference).discs}
    _figure(name, image.data, reference, ours, (disc_mask, c2_mask), out / f"{name.replace(' ', '_')}.png")
    return {**result, "discs_found": len(heights), "disc_error_mm": errors, "disc_peaks": [round(h, 1) for h in peaks],
            "c2_below_peak": find_c2(peaks, c2_mask, cord, image.spacing_mm)}


def _figure(name: str, image: np.ndarray, reference: np.ndarray, ours: np.ndarray,
            masks: tuple[np.ndarray, np.ndarray], path: Path) -> None:
    x = int(np.median(np.nonzero(reference)[0])) if reference.any() else image.shape[0] // 2
    figure, axes = plt.subplots(1, 2, figsize=(8, 8 * image.shape[2] / max(image.shape[1], 1) / 2 + 1))
    for axis, levels, title in ((axes[0], reference, "reference"), (axes[1], ours * (reference > 0), "automatic")):
        axis.imshow(image[x].T, origin="lower", cmap="gray")
        shown = np.ma.masked_equal(levels[x].T, 0)
        axis.imshow(shown % 2, origin="lower", cmap="coolwarm", alpha=0.5, vmin=0, vmax=1)
        for mask, colour in zip(masks, ("yellow", "lime"), strict=True):  # discs, C2
            if mask[x].any():
                axis.contour(mask[x].T, levels=[0.5], colors=colour, linewidths=0.6)
        axis.set_title(f"{name}: {title}")
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--discs", type=Path, required=True, help="disc model folder")
    parser.add_argument("--c2", type=Path, required=True, help="C2 model folder")
    parser.add_argument("--model", type=Path, default=None, help="cascade bundle (default: the shipped default)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cascade = load_pipeline(args.model or default_model(), device="cpu")
    models = (Predictor.from_model(args.discs, device="cpu"), Predictor.from_model(args.c2, device="cpu"))
    results = [check(name, REAL / image, REAL / reference, cascade, models, args.out)
               for name, (image, reference) in SCANS.items() if (REAL / image).is_file()]
    (args.out / "levels.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| scan | labelled cord voxels | level right | right by the point labels | discs found | "
             "disc error (mm, + = ours higher) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['scan']} | {r['labelled_voxels']} | {r['percent_correct']}% | "
              f"{r.get('percent_correct_point_labels', '-')} | {r['discs_found']} | "
              + ", ".join(f"{k} {v}" for k, v in r["disc_error_mm"].items()) + " |" for r in results]
    (args.out / "levels.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
