"""Compare the intensity profile across the cord of a T2w phantom with the real T2w scan in ../shared.

Both images are resampled (TorchIO) to 0.5 mm and normalised by their CSF peak; along the left-right and
antero-posterior lines through the cord centre at mid-height we report the cord/CSF and cord/tissue ratios and
the cord and CSF widths. Usage::

    python scripts/compare_profile.py [--real ../shared/data/real/sct-errsm30/t2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from lesionseg.config import AcquisitionConfig, SynthConfig
from lesionseg.io.nifti import load_image, load_label_for
from lesionseg.synth.dataset import make_dataset
from lesionseg.transforms.resampling import resample_to_spacing

STEP_MM = 0.5


def profile_stats(image_path: Path, cord_path: Path) -> dict[str, float]:
    scan = load_image(image_path)
    cord = load_label_for(scan, cord_path)
    image, _ = resample_to_spacing(scan.data, scan.affine, (STEP_MM,) * 3)
    mask = resample_to_spacing(cord.data, cord.affine, (STEP_MM,) * 3)[0] > 0.5
    z = int(np.median(np.nonzero(mask)[2]))
    cx, cy = (int(round(c)) for c in np.argwhere(mask[:, :, z]).mean(axis=0))
    stats: dict[str, float] = {}
    for axis, line, line_mask in (
        ("lr", image[:, cy, z], mask[:, cy, z]),
        ("ap", image[cx, :, z], mask[cx, :, z]),
    ):
        centre = cx if axis == "lr" else cy
        window = slice(max(0, centre - int(15 / STEP_MM)), centre + int(15 / STEP_MM))
        csf_peak = float(np.percentile(line[window], 98))
        cord_mean = float(line[line_mask].mean())
        cord_width = float(line_mask.sum() * STEP_MM)
        bright = line[window] > (cord_mean + csf_peak) / 2
        stats[f"{axis}_cord_over_csf"] = cord_mean / csf_peak
        stats[f"{axis}_cord_width_mm"] = cord_width
        stats[f"{axis}_bright_csf_mm"] = float(bright.sum() * STEP_MM)
        outer = np.concatenate([line[: max(1, window.start)], line[window.stop :]])
        stats[f"{axis}_outer_tissue_over_csf"] = float(np.median(outer)) / csf_peak if outer.size else float("nan")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/real/sct-errsm30/t2")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = {"real_t2w": profile_stats(args.real / "t2.nii.gz", args.real / "t2_seg-manual.nii.gz")}
    with tempfile.TemporaryDirectory() as folder:
        config = SynthConfig(
            subjects=5, seed=0, max_lesions=0, acquisition={"T2w": AcquisitionConfig(spacing_mm=(1.0, 1.0, 1.0))}
        )
        make_dataset(folder, config)
        phantom = [
            profile_stats(Path(folder) / f"sub-00{i}/anat/sub-00{i}_T2w.nii.gz",
                          Path(folder) / f"derivatives/labels/sub-00{i}/anat/sub-00{i}_T2w_seg-manual.nii.gz")
            for i in range(1, 6)
        ]
    results["phantom_t2w_mean_of_5"] = {k: float(np.mean([p[k] for p in phantom])) for k in phantom[0]}
    print(f"{'measure':28s} {'real T2w':>10s} {'phantom T2w':>12s}")
    for key in results["real_t2w"]:
        print(f"{key:28s} {results['real_t2w'][key]:10.2f} {results['phantom_t2w_mean_of_5'][key]:12.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
