"""The benchmark (``lesionseg benchmark``, ``scripts/benchmark.py``): every stage of inference and training timed
on this machine, written as JSON and Markdown. Each time is the median of ``repeats`` runs with min and max.

It measures:

- end-to-end inference per volume on phantoms of clinical shapes (sagittal T2w 384 x 384 x 20 at 0.6 x 0.6 x 3
  mm, axial T2*w 320 x 320 x 15 at 0.5 x 0.5 x 5 mm, 3D 64 x 256 x 320 at 1 mm), split into load, preprocess,
  network, postprocess and write, for the whole-image model, the cascade, the cascade in bf16 autocast and the
  cascade through ONNX Runtime (when installed);
- the networks' arithmetic (FLOPs counted with ``torch.utils.flop_counter``) per second of pure forward time, as
  a percentage of the fp32 matrix-multiplication peak measured here, and the share of wall time outside the
  network forward passes;
- peak resident memory of whole-image and cascade inference on a 512 x 512 x 256 volume (a fresh process each);
- training seconds per step and the fraction of it spent waiting for data;
- (nnU-Net v2 side by side: ``lesionseg benchmark --nnunet DATASET``, :mod:`lesionseg.benchmark_nnunet`.)

Models: trained model folders when given; otherwise untrained networks from the shipped configs (timing does not
depend on the weights) and the cascade crops around the phantom's ground-truth cord while the cord network is
still run and timed on the whole image.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

CONFIGS = Path(__file__).resolve().parent / "configs"
STAGES = ("load", "preprocess", "network", "postprocess", "write")

#: name -> (field of view mm as R, A, S; spacing mm as R, A, S) giving the clinical stored shapes above.
SHAPES = {
    "sagittal_t2w": ((60.0, 230.4, 230.4), (3.0, 0.6, 0.6)),
    "axial_t2s": ((160.0, 160.0, 75.0), (0.5, 0.5, 5.0)),
    "iso_3d": ((64.0, 256.0, 320.0), (1.0, 1.0, 1.0)),
}
QUICK_SHAPES = {"small_t2w": ((40.0, 56.0, 96.0), (3.0, 0.8, 0.8))}
#: The memory test volume: 512 x 512 x 256 voxels of 0.5 x 0.5 x 1 mm.
LARGE_SHAPE = (512, 512, 256)


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


class TimedNetwork:
    """An engine whose calls are timed (seconds accumulate until :meth:`reset`)."""

    def __init__(self, engine: Any) -> None:
        self.inner = engine
        self.name = engine.name
        self.seconds = 0.0

    def __call__(self, batch: np.ndarray, *, bf16: bool = False) -> np.ndarray:
        started = time.perf_counter()
        output = self.inner(batch, bf16=bf16)
        self.seconds += time.perf_counter() - started
        return output

    def reset(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """The best fp32 matrix-multiplication rate of this machine with torch's threads (GFLOP/s)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def make_phantom(folder: Path, name: str, fov_mm: tuple, spacing_mm: tuple) -> tuple[Path, Path]:
    """A T2w phantom at the given field of view and voxel size, and its cord mask."""
    from lesionseg.config import AcquisitionConfig, SynthConfig
    from lesionseg.synth.dataset import make_dataset

    config = SynthConfig(subjects=1, seed=11, fov_mm=fov_mm, acquisition={"T2w": AcquisitionConfig(spacing_mm=spacing_mm)})
    make_dataset(folder / name, config)
    return (
        folder / name / "sub-001/anat/sub-001_T2w.nii.gz",
        folder / name / "derivatives/labels/sub-001/anat/sub-001_T2w_seg-manual.nii.gz",
    )


def model_folder(model: Path | None, config_name: str, folder: Path) -> Path:
    """``model``, or an untrained network of ``configs/<config_name>`` saved as a model folder."""
    if model is not None:
        return model
    from lesionseg.config import load_config
    from lesionseg.io.checkpoint import save_model_folder
    from lesionseg.networks.factory import build_network

    config = load_config(CONFIGS / config_name)
    torch.manual_seed(0)
    metadata = {"contrasts": list(config.data.contrasts), "target": config.data.target}
    return save_model_folder(folder / config_name.removesuffix(".yaml"), build_network(config.model).state_dict(), config, metadata)


@dataclass
class Variant:
    """One way of running inference: whole-image or cascade, with an engine and a precision."""

    name: str
    cascade: bool
    engine: str = "torch"  # the reference; "auto" would pick ONNX Runtime where models are exported
    precision: str = "fp32"


VARIANTS = (Variant("whole", False), Variant("cascade", True), Variant("cascade-bf16", True, precision="bf16"),
            Variant("cascade-onnx", True, engine="onnxruntime"))


def load_variant(variant: Variant, models: dict[str, Path]) -> Any:
    """The predictor of a variant, its networks wrapped in :class:`TimedNetwork`."""
    from lesionseg.inference.cascade import CascadePredictor
    from lesionseg.inference.predictor import Predictor
    from lesionseg.inference.segmenter import InferenceSettings

    def load(path: Path) -> Predictor:
        predictor = Predictor.from_model(path, device="cpu", engine=variant.engine)
        predictor = predictor.with_settings(InferenceSettings(precision=variant.precision))  # type: ignore[arg-type]
        predictor.members = [TimedNetwork(member) for member in predictor.members]
        predictor.network = predictor.members[0]
        return predictor

    if variant.cascade:
        return CascadePredictor(load(models["cord"]), load(models["lesion"]))
    return load(models["whole"])


def _networks(predictor: Any) -> list[TimedNetwork]:
    return [member for stage in predictor.stages for member in stage.members]


def time_once(predictor: Any, image_path: Path, cord_path: Path, out: Path, use_gt_cord: bool) -> dict[str, float]:
    """One end-to-end run: seconds per stage, pure network seconds, and the crop fraction (cascade)."""
    from lesionseg.io.nifti import load_image, load_label_for, save_mask

    for network in _networks(predictor):
        network.reset()
    started = time.perf_counter()
    image = load_image(image_path)
    seconds = {"load": time.perf_counter() - started}
    if predictor.segments_cord:
        cord_mask, cord_seconds = None, 0.0
        if use_gt_cord:  # untrained cord network: run and time it, but crop around the true cord
            t = time.perf_counter()
            predictor.cord.predict_loaded(image)
            cord_seconds = time.perf_counter() - t
            cord_mask = load_label_for(image, cord_path).data
        result = predictor.predict_loaded(image, cord_mask=cord_mask)
        if use_gt_cord:
            result.seconds["cord"] = cord_seconds
        seconds.update(result.seconds)
        masks = [result.lesion.mask, result.cord.mask]
        if result.box is not None:
            seconds["crop_fraction"] = float(np.prod([b - a for a, b in result.box]) / np.prod(image.data.shape))
    else:
        result = predictor.predict_loaded(image)
        seconds.update(result.seconds)
        masks = [result.mask]
    t = time.perf_counter()
    for index, mask in enumerate(masks):
        save_mask(mask, image.geometry, out.with_name(f"{out.stem}-{index}.nii.gz"))
    seconds["write"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - started
    seconds["network_forward"] = sum(network.reset() for network in _networks(predictor))
    seconds["overhead_fraction"] = 1.0 - seconds["network_forward"] / seconds["total"]
    return seconds


def count_flops(predictor: Any, image_path: Path, cord_path: Path, use_gt_cord: bool) -> float:
    """FLOPs of every network forward pass of one run (PyTorch engine)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        time_once(predictor, image_path, cord_path, Path(tempfile.mkdtemp()) / "flops.nii.gz", use_gt_cord)
    return float(counter.get_total_flops())


def peak_rss(models: dict[str, Path], cascade: bool, folder: Path, budget_mb: float | None = None) -> dict[str, float]:
    """Peak resident memory (MiB) of a fresh process that loads and segments the 512 x 512 x 256 volume."""
    code = (
        "import json, resource, sys; from lesionseg.benchmark import _large_volume_child; "
        "_large_volume_child(sys.argv[1:]); "
        "print(json.dumps({'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
    )
    arguments = [str(folder / "large.nii.gz"), str(folder / "large_out.nii.gz"), str(models["whole"]), str(models["cord"]),
                 str(models["lesion"]), "cascade" if cascade else "whole", str(budget_mb or "")]
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["seconds"] = time.perf_counter() - started
    return result


def write_large_volume(path: Path, source: Path) -> None:
    """A 512 x 512 x 256 volume (0.5 x 0.5 x 1 mm): a phantom resampled onto that grid."""
    import nibabel as nib
    import torchio as tio

    target = np.diag([0.5, 0.5, 1.0, 1.0])
    target[:3, 3] = -np.array(LARGE_SHAPE) * np.array([0.5, 0.5, 1.0]) / 2
    resampled = tio.Resample((LARGE_SHAPE, target))(tio.ScalarImage(source))
    nib.save(nib.Nifti1Image(resampled.data[0].numpy().astype(np.int16), target), path)


def _large_volume_child(arguments: list[str]) -> None:
    """Run by :func:`peak_rss` in a fresh process."""
    from lesionseg.inference.cascade import CascadePredictor
    from lesionseg.inference.predictor import Predictor
    from lesionseg.inference.segmenter import InferenceSettings

    image, out, whole, cord, lesion, variant, budget = arguments
    predictor = (
        CascadePredictor.from_models(cord, lesion, device="cpu") if variant == "cascade"
        else Predictor.from_model(whole, device="cpu")
    )
    if budget:
        predictor = predictor.with_settings(InferenceSettings(memory_budget_mb=float(budget)))
    result = predictor.predict(image)
    (result.lesion if variant == "cascade" else result).save(out)


def training_benchmark(quick: bool, folder: Path) -> dict[str, Any]:
    """Seconds per step and data-wait fraction of the demo's whole-image and cascaded lesion training."""
    from lesionseg.config import SynthConfig, load_config
    from lesionseg.synth.dataset import make_dataset
    from lesionseg.training.trainer import train

    data = folder / "train-data"
    make_dataset(data, SynthConfig(subjects=3 if quick else 8, seed=0))
    steps = 10 if quick else 300
    results = {}
    for name, config_name in (("whole", "demo.yaml"), ("cascade", "lesion_t2w_cascade.yaml")):
        config = load_config(CONFIGS / config_name, ["data.split.val_fraction=0", f"train.steps={steps}",
                                                      "train.device=cpu"])
        result = train(config, data_root=data, run_dir=folder / f"train-{name}")
        results[name] = {"steps": steps, "seconds_per_step": result.seconds_per_step,
                         "data_wait_fraction": result.data_wait_fraction, "config": f"configs/{config_name}"}
    return results


def time_variant(
    variant: Variant, models: dict[str, Path], folder: Path, image_path: Path, cord_path: Path, use_gt_cord: bool,
    *, repeats: int, peak: float,
) -> dict[str, Any]:
    """Median (and spread) of each stage's seconds over ``repeats`` runs after a warm-up; for the fp32 PyTorch
    variants also the network's GFLOP, GFLOP/s and share of the machine's matmul peak."""
    variant_models = dict(models)
    if variant.engine == "onnxruntime":
        variant_models.update(cord=folder / "cord-onnx", lesion=folder / "lesion-onnx")
    predictor = load_variant(variant, variant_models)
    time_once(predictor, image_path, cord_path, folder / "warmup.nii.gz", use_gt_cord)  # one-off costs
    runs = [time_once(predictor, image_path, cord_path, folder / "out.nii.gz", use_gt_cord) for _ in range(repeats)]
    timing = {key: stats([r[key] for r in runs if key in r]) for key in runs[0]}
    if variant.engine == "torch" and variant.precision == "fp32":
        flops = count_flops(predictor, image_path, cord_path, use_gt_cord)
        forward = timing["network_forward"]["median"]
        timing.update(gflop=flops / 1e9, gflops_per_second=flops / 1e9 / forward,
                      percent_of_peak=100 * flops / 1e9 / forward / peak)
    return timing


def _header(peak: float, whole_model: Path | None, cord_model: Path | None, lesion_model: Path | None) -> dict[str, Any]:
    """The machine and the models a benchmark ran on."""
    return {
        "machine": {"threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
                    "processor": platform.processor() or platform.machine(), "fp32_matmul_peak_gflops": peak},
        "models": {"whole": str(whole_model or "untrained demo config"),
                   "cord": str(cord_model or "untrained cord_t2w config (crop from the ground-truth cord)"),
                   "lesion": str(lesion_model or "untrained lesion_t2w_cascade config")},
    }


def run(
    out: Path,
    *,
    repeats: int = 3,
    quick: bool = False,
    whole_model: Path | None = None,
    cord_model: Path | None = None,
    lesion_model: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every measurement, write ``benchmark.json`` and ``benchmark.md`` into ``out``, return the results."""
    out.mkdir(parents=True, exist_ok=True)
    shapes = QUICK_SHAPES if quick else SHAPES
    repeats = 1 if quick else repeats
    # the ONNX variant needs onnxruntime, and two exports (about 30 s): left out of quick runs
    onnx = importlib.util.find_spec("onnxruntime") is not None and not quick
    variants = [v for v in VARIANTS if v.engine != "onnxruntime" or onnx]
    peak = matmul_peak_gflops(1024 if quick else 2048)
    log(f"fp32 matmul peak: {peak:.0f} GFLOP/s on {torch.get_num_threads()} threads")
    results: dict[str, Any] = {**_header(peak, whole_model, cord_model, lesion_model), "repeats": repeats,
                               "inference": {}}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        models = {"whole": model_folder(whole_model, "demo.yaml", folder),
                  "cord": model_folder(cord_model, "cord_t2w.yaml", folder),
                  "lesion": model_folder(lesion_model, "lesion_t2w_cascade.yaml", folder)}
        if any(v.engine == "onnxruntime" for v in variants):
            from lesionseg.inference.onnx import export_onnx

            for name in ("cord", "lesion"):  # exported into copies: the given model folders are left untouched
                export_onnx(shutil.copytree(models[name], folder / f"{name}-onnx"))
        use_gt_cord = cord_model is None
        for name, (fov, spacing) in shapes.items():
            image_path, cord_path = make_phantom(folder, name, fov, spacing)
            entry: dict[str, Any] = {"spacing_mm": list(spacing)}
            for variant in variants:
                entry[variant.name] = time_variant(variant, models, folder, image_path, cord_path, use_gt_cord,
                                                   repeats=repeats, peak=peak)
                log(f"{name}: {variant.name} {entry[variant.name]['total']['median']:.2f} s")
            from lesionseg.io.nifti import load_image

            entry["shape"] = list(load_image(image_path).geometry.shape)
            results["inference"][name] = entry
        if not quick:
            source, _ = make_phantom(folder, "large-source", (256.0, 256.0, 256.0), (1.0, 1.0, 2.0))
            write_large_volume(folder / "large.nii.gz", source)
            results["memory"] = {
                "shape": list(LARGE_SHAPE),
                "whole": peak_rss(models, cascade=False, folder=folder),
                "cascade": peak_rss(models, cascade=True, folder=folder),
                "whole, memory budget 512 MB": peak_rss(models, cascade=False, folder=folder, budget_mb=512),
            }
            log(f"peak RSS 512x512x256: {results['memory']}")
        results["training"] = training_benchmark(quick, folder)
        log(f"training: {results['training']}")
    (out / "benchmark.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "benchmark.md").write_text(markdown(results))
    log(markdown(results))
    return results


def markdown(results: dict[str, Any]) -> str:
    """The benchmark's tables."""
    machine = results["machine"]
    lines = [
        f"Machine: {machine['processor']}, {machine['threads']} threads, torch {machine['torch']}; fp32 matmul peak "
        f"{machine['fp32_matmul_peak_gflops']:.0f} GFLOP/s. Median of {results['repeats']} run(s) (min-max).",
        "",
        "| volume | shape | variant | total s | load | preprocess | network | postprocess | write | network forward s | "
        "outside network | GFLOP/s (% of peak) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["inference"].items():
        for variant, timing in entry.items():
            if not isinstance(timing, dict) or "total" not in timing:
                continue
            total = timing["total"]
            stages = []
            for stage in STAGES:
                if stage in timing:
                    stages.append(f"{timing[stage]['median']:.2f}")
                elif stage == "network" and "cord" in timing:
                    stages.append(f"cord {timing['cord']['median']:.2f} + lesion {timing['lesion']['median']:.2f}")
                else:
                    stages.append("-")
            rate = (f"{timing['gflops_per_second']:.0f} ({timing['percent_of_peak']:.0f}%)"
                    if "gflops_per_second" in timing else "-")
            lines.append(
                f"| {name} | {' x '.join(map(str, entry['shape']))} | {variant} | {total['median']:.2f} "
                f"({total['min']:.2f}-{total['max']:.2f}) | " + " | ".join(stages)
                + f" | {timing['network_forward']['median']:.2f} | {100 * timing['overhead_fraction']['median']:.0f}% | {rate} |"
            )
    if "memory" in results:
        memory = results["memory"]
        lines += ["", "| peak RSS, 512 x 512 x 256 volume | MiB | seconds |", "|---|---|---|"]
        for variant, entry in memory.items():
            if isinstance(entry, dict):
                lines.append(f"| {variant} | {entry['peak_rss_mib']:.0f} | {entry['seconds']:.1f} |")
    lines += ["", "| training | config | steps | s/step | waiting for data |", "|---|---|---|---|---|"]
    for name, entry in results["training"].items():
        lines.append(f"| {name} | {entry['config']} | {entry['steps']} | {entry['seconds_per_step']:.3f} | "
                     f"{100 * entry['data_wait_fraction']:.1f}% |")
    lines += ["", "nnU-Net v2 side by side: `lesionseg benchmark --nnunet DATASET`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one small shape, one repeat, a short training (a smoke run)")
    parser.add_argument("--whole-model", type=Path)
    parser.add_argument("--cord-model", type=Path)
    parser.add_argument("--lesion-model", type=Path)
    args = parser.parse_args(argv)
    run(args.out, repeats=args.repeats, quick=args.quick, whole_model=args.whole_model, cord_model=args.cord_model,
        lesion_model=args.lesion_model)
