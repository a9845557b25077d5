"""Where a cord model's mask differs from a reference cord mask, along the cord: above the reference's top slice,
below its bottom slice, and within its extent (the boundary), with the volume ratio.

Usage::

    python scripts/cord_extent.py MODEL IMAGE CORD_MASK [--levels LEVELS] [--out result.json]

    python scripts/cord_extent.py lesionseg/models/cascade-synth-v1/cord \\
        ../shared/data/real/pam50-small/PAM50_small_t2.nii.gz ../shared/data/real/pam50-small/PAM50_small_cord.nii.gz \\
        --levels ../shared/data/real/pam50-small/PAM50_small_levels.nii.gz

``--levels`` (a vertebral-level map, non-zero inside the cord, as the PAM50 template's) also compares the level
map's extent with the cord mask's. Slices are taken along the image's superior-inferior axis (canonical RAS).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from lesionseg.evaluation.metrics import dice
from lesionseg.inference.cascade import predict_cord
from lesionseg.inference.predictor import Predictor
from lesionseg.io.atomic import atomic_write_text
from lesionseg.io.nifti import load_image, load_label_for


def slice_extent(mask: np.ndarray) -> tuple[int, int]:
    """First and last axial (last-axis) slice holding any voxel of ``mask``."""
    slices = np.flatnonzero(mask.any(axis=(0, 1)))
    return int(slices[0]), int(slices[-1])


def breakdown(predicted: np.ndarray, reference: np.ndarray) -> dict[str, float | int]:
    """Dice, volume ratio, and the predicted voxels outside the reference below, above and within its extent."""
    low, high = slice_extent(reference)
    within = slice(low, high + 1)
    overlap = int((predicted & reference).sum())
    return {
        "dice": round(dice(predicted, reference), 4),
        "volume_ratio": round(float(predicted.sum() / reference.sum()), 3),
        "reference_slices": [low, high],
        "predicted_slices": list(slice_extent(predicted)) if predicted.any() else None,
        "extra_below": int(predicted[..., :low].sum()),
        "extra_above": int(predicted[..., high + 1 :].sum()),
        "extra_within": int(predicted[..., within].sum()) - overlap,
        "missed": int(reference.sum()) - overlap,
        "dice_within_extent": round(dice(predicted[..., within], reference[..., within]), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("image", type=Path)
    parser.add_argument("cord_mask", type=Path)
    parser.add_argument("--levels", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    image = load_image(args.image)
    reference = load_label_for(image, args.cord_mask).data > 0
    predicted = predict_cord(Predictor.from_model(args.model, device="cpu"), image).mask > 0
    result: dict = {"model": str(args.model), "image": str(args.image), **breakdown(predicted, reference)}
    if args.levels is not None:
        levels = np.asarray(nib.as_closest_canonical(nib.load(args.levels)).dataobj) > 0
        if levels.shape != reference.shape:
            raise SystemExit(f"{args.levels}: shape {levels.shape} differs from the image's {reference.shape}")
        result["levels"] = {
            "slices": list(slice_extent(levels)),
            "voxels_outside_cord_mask": int((levels & ~reference).sum()),
            "dice_with_cord_mask": round(dice(levels, reference), 4),
            "prediction": breakdown(predicted, levels),
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
