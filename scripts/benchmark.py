"""Benchmark inference: end-to-end seconds per volume, split into stages, for the whole-image model and the
cascade, on phantoms of clinical shapes. Each figure is the median of ``--repeats`` runs with min and max.

Shapes (as stored; the phantoms are generated at these voxel sizes):

- ``sagittal_t2w``: 384 x 384 x 20 at 0.6 x 0.6 x 3 mm
- ``axial_t2s``:    320 x 320 x 15 at 0.5 x 0.5 x 5 mm
- ``iso_3d``:       64 x 256 x 320 at 1 mm

Models: trained model folders when given (``--whole-model``, ``--cord-model``, ``--lesion-model``); otherwise
untrained networks built from the shipped configs (timing does not depend on the weights), and the cascade
crops around the phantom's ground-truth cord while the cord network's cost is still timed on the whole image.

Usage::

    python scripts/benchmark.py --out runs/benchmark [--repeats 3] [--quick]

Writes ``benchmark.json`` and ``benchmark.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lesionseg.config import AcquisitionConfig, SynthConfig, load_config
from lesionseg.inference.cascade import CascadePredictor
from lesionseg.inference.predictor import Predictor
from lesionseg.io.nifti import load_image, load_label_for, save_mask
from lesionseg.networks.factory import build_network
from lesionseg.synth.dataset import make_dataset

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

#: name -> (field of view mm as R, A, S; spacing mm as R, A, S) giving the clinical stored shapes above.
SHAPES = {
    "sagittal_t2w": ((60.0, 230.4, 230.4), (3.0, 0.6, 0.6)),
    "axial_t2s": ((160.0, 160.0, 75.0), (0.5, 0.5, 5.0)),
    "iso_3d": ((64.0, 256.0, 320.0), (1.0, 1.0, 1.0)),
}
QUICK_SHAPES = {"small_t2w": ((40.0, 56.0, 96.0), (3.0, 0.8, 0.8))}


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def make_phantom(folder: Path, name: str, fov_mm: tuple, spacing_mm: tuple) -> tuple[Path, Path]:
    config = SynthConfig(subjects=1, seed=11, fov_mm=fov_mm, acquisition={"T2w": AcquisitionConfig(spacing_mm=spacing_mm)})
    make_dataset(folder / name, config)
    return (
        folder / name / "sub-001/anat/sub-001_T2w.nii.gz",
        folder / name / "derivatives/labels/sub-001/anat/sub-001_T2w_seg-manual.nii.gz",
    )


def predictor(model: Path | None, config_name: str) -> Predictor:
    if model is not None:
        return Predictor.from_model(model, device="cpu")
    config = load_config(CONFIGS / config_name)
    torch.manual_seed(0)
    return Predictor(build_network(config.model), config, device="cpu")


def time_whole(whole: Predictor, image_path: Path, out: Path) -> dict[str, float]:
    started = time.perf_counter()
    prediction = whole.predict(image_path)
    prediction.save(out)
    seconds = dict(prediction.seconds)
    seconds["total"] = time.perf_counter() - started
    return seconds


def time_cascade(cascade: CascadePredictor, image_path: Path, cord_path: Path, out: Path, use_gt_cord: bool) -> dict[str, float]:
    started = time.perf_counter()
    image = load_image(image_path)
    seconds = {"load": time.perf_counter() - started}
    if use_gt_cord:  # untrained cord network: time it, but crop around the true cord
        t = time.perf_counter()
        cascade.cord.predict_loaded(image)  # type: ignore[union-attr]
        cord_seconds = time.perf_counter() - t
        result = cascade.predict_loaded(image, cord_mask=load_label_for(image, cord_path).data)
        result.seconds["cord"] = cord_seconds
    else:
        result = cascade.predict_loaded(image)
    seconds.update(result.seconds)
    t = time.perf_counter()
    save_mask(result.lesion.mask, image.geometry, out)
    save_mask(result.cord.mask, image.geometry, out.with_name("cord.nii.gz"))
    seconds["write"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - started
    if result.box is not None:
        crop = np.prod([b - a for a, b in result.box]) / np.prod(image.data.shape)
        seconds["crop_fraction"] = float(crop)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one small shape, one repeat (a smoke run)")
    parser.add_argument("--whole-model", type=Path)
    parser.add_argument("--cord-model", type=Path)
    parser.add_argument("--lesion-model", type=Path)
    args = parser.parse_args()
    shapes = QUICK_SHAPES if args.quick else SHAPES
    repeats = 1 if args.quick else args.repeats
    args.out.mkdir(parents=True, exist_ok=True)

    whole = predictor(args.whole_model, "demo.yaml")
    cascade = CascadePredictor(predictor(args.cord_model, "cord_t2w.yaml"), predictor(args.lesion_model, "lesion_t2w_cascade.yaml"))
    use_gt_cord = args.cord_model is None
    results: dict = {
        "machine": {"cpus": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__},
        "models": {"whole": str(args.whole_model or "untrained configs/demo.yaml"),
                   "cord": str(args.cord_model or "untrained configs/cord_t2w.yaml (crop from ground-truth cord)"),
                   "lesion": str(args.lesion_model or "untrained configs/lesion_t2w_cascade.yaml")},
        "repeats": repeats,
        "inference": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        for name, (fov, spacing) in shapes.items():
            image_path, cord_path = make_phantom(Path(folder), name, fov, spacing)
            shape = load_image(image_path).geometry.shape
            runs: dict[str, list[dict[str, float]]] = {"whole": [], "cascade": []}
            time_whole(whole, image_path, Path(folder) / "warmup.nii.gz")  # first call pays one-off costs
            for _ in range(repeats):
                runs["whole"].append(time_whole(whole, image_path, Path(folder) / "whole.nii.gz"))
                runs["cascade"].append(time_cascade(cascade, image_path, cord_path, Path(folder) / "cascade.nii.gz", use_gt_cord))
            results["inference"][name] = {
                "shape": list(shape),
                "spacing_mm": list(spacing),
                **{variant: {stage: stats([r[stage] for r in records]) for stage in records[0]} for variant, records in runs.items()},
            }
            whole_s = results["inference"][name]["whole"]["total"]["median"]
            cascade_s = results["inference"][name]["cascade"]["total"]["median"]
            print(f"{name} {shape}: whole {whole_s:.2f} s, cascade {cascade_s:.2f} s", flush=True)

    (args.out / "benchmark.json").write_text(json.dumps(results, indent=2))
    lines = ["| volume | shape | whole-image s (min-max) | cascade s (min-max) | speed-up | cascade crop |", "|---|---|---|---|---|---|"]
    for name, entry in results["inference"].items():
        w, c = entry["whole"]["total"], entry["cascade"]["total"]
        crop = entry["cascade"].get("crop_fraction", {}).get("median", float("nan"))
        lines.append(
            f"| {name} | {' x '.join(map(str, entry['shape']))} | {w['median']:.2f} ({w['min']:.2f}-{w['max']:.2f}) | "
            f"{c['median']:.2f} ({c['min']:.2f}-{c['max']:.2f}) | {w['median'] / c['median']:.1f}x | {100 * crop:.0f}% |"
        )
    stage_lines = ["", "| volume | variant | " + " | ".join(("load", "preprocess", "network", "postprocess", "cord", "lesion", "write")) + " |", "|---|---|" + "---|" * 7]
    for name, entry in results["inference"].items():
        for variant in ("whole", "cascade"):
            cells = [f"{entry[variant][s]['median']:.2f}" if s in entry[variant] else "-" for s in ("load", "preprocess", "network", "postprocess", "cord", "lesion", "write")]
            stage_lines.append(f"| {name} | {variant} | " + " | ".join(cells) + " |")
    (args.out / "benchmark.md").write_text("\n".join(lines + stage_lines) + "\n")
    print("\n".join(lines + stage_lines))


if __name__ == "__main__":
    main()
