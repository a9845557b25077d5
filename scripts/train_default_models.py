"""Train, evaluate and package the shipped default cascade (cord + lesion), from phantoms only.

1. Standard phantoms of the three contrasts (with lesion mimics) are written for validation (seed 100) and for
   the held-out test (seed 101); no training image is ever written: both models train on domain-randomised
   phantoms generated on the fly (configs/default_cord.yaml, configs/default_lesion.yaml, ``randomize``).
2. The cord model trains, then one cord stage per contrast in ``--cord-contrasts`` (the cord model fine-tuned on
   domain-randomised phantoms of that contrast; configs/default_cord_contrast.yaml), then the general lesion model
   (validated inside the crops of the new cord model).
3. One lesion stage per contrast: for T2w, T1w and PSIR the general lesion model fine-tuned on standard phantoms
   of that contrast (seed 102, written once, without grey matter; configs/default_lesion_contrast.yaml); for
   T2starw, whose grey matter is as bright as a faint lesion, on domain-randomised phantoms of that contrast
   (configs/default_lesion_contrast_randomized.yaml). The cascade gives an image of a known contrast (BIDS suffix
   or ``--contrast``) to its stage, any other image to the general one.
4. Evaluation: cord Dice on every real scan in ../shared/data/real (when present); lesion Dice and lesion-wise
   F1 per contrast on the held-out phantoms, with the contrast stages and with the general stage alone; lesion
   Dice on real scans with implanted lesions; false lesions on lesion-free domain-randomised phantoms (seed 103)
   and the real-scan exam (scripts/real_scan_check.py; it also gives the cord Dice of the crops run with their contrast
   declared).
5. The model folders are copied to ``lesionseg/models/NAME/{cord,cord-<contrast>,lesion,lesion-<contrast>}/`` with their
   model cards (metrics, SHA-256 of the weights) and a top-level card.

Fixed seeds throughout; on 2 CPU cores the defaults take about 30 minutes::

    python scripts/train_default_models.py --out runs/default-models [--name cascade-synth-v1]
    python scripts/train_default_models.py --evaluate lesionseg/models/cascade-synth-v1 --out runs/recheck   # re-measure
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import asdict
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from lesionseg.config import SynthConfig, load_config
from lesionseg.constants import CONTRASTS
from lesionseg.evaluation.evaluate import evaluate_folder
from lesionseg.evaluation.metrics import voxel_metrics
from lesionseg.inference.batch import run_batch
from lesionseg.inference.cascade import CascadePredictor, load_pipeline
from lesionseg.io.checkpoint import CARD_FILE, CONTRAST_STAGE_PREFIX, CORD_CONTRAST_PREFIX, bundle_stages, sha256_file
from lesionseg.io.nifti import load_image, load_label_for, save_image
from lesionseg.synth.dataset import make_dataset
from lesionseg.synth.implant import implant_lesions
from lesionseg.synth.randomized import random_phantom
from lesionseg.training.trainer import train
from real_scan_check import ScanCheck, markdown, run_checks  # scripts/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "lesionseg" / "configs"
REAL = ROOT.parent / "shared" / "data" / "real"

#: Real scans with manual cord masks: name -> (image, cord mask, factor of implanted lesions' intensity, the
#: contrast a user would declare with --contrast, None for a contrast without its own stage).
REAL_SCANS = {
    "T2w (sct errsm30 t2)": ("sct-errsm30/t2/t2.nii.gz", "sct-errsm30/t2/t2_seg-manual.nii.gz", 1.6, "T2w"),
    "T1w (sct errsm30 t1)": ("sct-errsm30/t1/t1w.nii.gz", "sct-errsm30/t1/t1w_seg-manual.nii.gz", 0.75, "T1w"),
    "T2*w axial 7.5 mm (sct errsm30 t2s)": ("sct-errsm30/t2s/t2s.nii.gz", "sct-errsm30/t2s/t2s_seg.nii.gz", 1.6,
                                            "T2starw"),
    "PAM50 T2 template": ("pam50-small/PAM50_small_t2.nii.gz", "pam50-small/PAM50_small_cord.nii.gz", 1.6, "T2w"),
}
#: The stages the script trains, in order.
STAGES = ("localizer", "cord", "cord-contrast", "lesion", "contrast")
#: Contrasts given a cord stage of their own by default (``--cord-contrasts``).
CORD_CONTRASTS = ("T2starw",)
#: Seed of the standard phantoms the contrast stages are fine-tuned on (validation: 100, test: 101).
FINETUNE_SEED = 102
#: Contrasts whose stage fine-tunes on domain-randomised phantoms of that contrast (grey matter included), not on
#: the standard phantoms (configs/default_lesion_contrast_randomized.yaml).
RANDOMIZED_CONTRASTS = ("T2starw",)
#: Seed of the lesion-free domain-randomised phantoms the false lesions are counted on.
HEALTHY_SEED = 103


def general_only(pipeline: CascadePredictor) -> CascadePredictor:
    """The same cascade without its contrast-specific lesion stages (every image goes to ``lesion/``; the cord
    stages are kept)."""
    return CascadePredictor(pipeline.cord, pipeline.lesion, cascade=pipeline.cascade, fp_filter=pipeline.fp_filter,
                            localizer=pipeline.localizer, cord_by_contrast=pipeline.cord_by_contrast)


def real_cord_dice(pipeline: CascadePredictor, real: Path) -> dict[str, float]:
    """Cord Dice of the cascade's stage 1 on each real scan."""
    scores = {}
    for name, (image_path, cord_path, _, _) in REAL_SCANS.items():
        image = load_image(real / image_path)
        truth = load_label_for(image, real / cord_path).data
        scores[name] = voxel_metrics(pipeline.predict_cord(image).mask, truth, image.spacing_mm).dice
    return scores


def implanted_lesion_dice(pipeline: CascadePredictor, real: Path, out: Path, seed: int = 7) -> dict[str, float]:
    """Lesion Dice of the cascade on each real scan with 3 implanted lesions (real anatomy, contrast, noise), the
    scan's contrast declared as a user would (``--contrast``)."""
    scores = {}
    for index, (name, (image_path, cord_path, factor, contrast)) in enumerate(REAL_SCANS.items()):
        image = load_image(real / image_path)
        cord = load_label_for(image, real / cord_path).data
        implanted = implant_lesions(image.data, cord, image.spacing_mm, np.random.default_rng([seed, index]),
                                    intensity_factor=factor)
        path = save_image(implanted.image, image.affine, out / f"implanted-{index}.nii.gz", dtype=implanted.image.dtype.type)
        result = pipeline.predict_loaded(dataclasses.replace(load_image(path), contrast=contrast))
        scores[name] = voxel_metrics(result.lesion.mask, implanted.lesion, image.spacing_mm).dice
    return scores


def phantom_metrics(pipeline: CascadePredictor, test: Path, out: Path) -> dict[str, dict[str, float]]:
    """Lesion Dice, lesion-wise F1 and cord Dice per contrast of the held-out phantoms (each file's contrast is
    its BIDS suffix)."""
    records = run_batch(pipeline, [test], out / "pred")
    failed = [r for r in records if r.status != "ok"]
    if failed:
        raise RuntimeError(f"{len(failed)} test phantoms failed: {failed[0]}")
    lesions = evaluate_folder(out / "pred", test, out / "eval")
    cords = evaluate_folder(out / "pred", test, gt_suffix="seg-manual", pred_suffix="seg")
    metrics = {}
    for contrast in CONTRASTS:
        rows = [i for i in lesions.images if i.contrast == contrast and i.metrics is not None]
        cord_rows = [i for i in cords.images if i.contrast == contrast and i.metrics is not None]
        metrics[contrast] = {
            "images": len(rows),
            "lesion_dice": statistics.fmean(i.value("dice") for i in rows),
            "lesion_f1": statistics.fmean(i.value("anima_f1") for i in rows),
            "lesion_dice_images_with_lesions": statistics.fmean(i.value("dice") for i in rows if i.value("lesions_gt")),
            "cord_dice": statistics.fmean(i.value("dice") for i in cord_rows),
        }
    return metrics


def healthy_false_lesions(pipeline: CascadePredictor, out: Path, count: int, seed: int = HEALTHY_SEED) -> dict:
    """False lesions of the cascade on ``count`` lesion-free domain-randomised phantoms (lesion mimics kept, a
    third of them whole fields of view; a phantom of a known contrast is named with its BIDS suffix, so it goes to
    that contrast's stage): the phantom-side twin of the real-scan exam's count on healthy subjects, scored as
    MSSEG-2 scores its cases without new lesions (lesions detected, their volume)."""
    out.mkdir(parents=True, exist_ok=True)
    lesions, volumes = [], []
    for index in range(count):
        phantom = random_phantom(np.random.default_rng([seed, index]), p_no_lesion=1.0, p_whole_fov=0.35)
        contrast = phantom.description["contrast"]
        suffix = f"_{contrast}" if contrast in CONTRASTS else ""
        image = load_image(save_image(phantom.image, phantom.affine, out / f"healthy-{index:02d}{suffix}.nii.gz"))
        mask = pipeline.predict_loaded(image).lesion.mask
        found = voxel_metrics(mask, np.zeros_like(mask), image.spacing_mm)  # against an empty truth: all false
        lesions.append(found.lesions_pred)
        volumes.append(found.volume_pred_mm3)
    return {"phantoms": count, "with_false_lesion": sum(n > 0 for n in lesions), "false_lesions": sum(lesions),
            "mean_false_volume_mm3": statistics.fmean(volumes) if volumes else 0.0}


def _stage_text(name: str, role: str, finetune_subjects: int) -> tuple[list[str], list[str], str]:
    """What a stage is, what it was trained on, and its config file, for its card."""
    randomized = [
        "- Data: domain-randomised spinal-cord phantoms only (`lesionseg.synth.randomized`: random per-tissue",
        "  intensities or the T2w / T1w / PSIR phantom contrasts, random resolution and slice thickness, bias field,",
        "  noise, motion, ghosting, anatomy variation, lesion mimics); no real scan and no patient data.",
    ]
    if role == "localizer":
        what = [f"Stage 0 (cord localiser, 1 x 1 x 2.5 mm grid) of the default lesionseg cascade `{name}`: finds the",
                "cord on a whole field of view (whole-neck axial stacks, long sagittal series) so that the cord model",
                "runs in a box around it."]
        whole = ["- Data: domain-randomised phantoms, 80% of them whole fields of view with the body around the canal",
                 "  (`lesionseg.synth.body`: skin, fat, muscles, airway, vessels, vertebrae, random compartments;",
                 "  wrap-around, coil shading, fat-suppression failure, slice gaps); no real scan and no patient data."]
        return what, whole, "default_localizer.yaml"
    if role == "cord":
        return [f"Stage 1 (spinal cord) of the default lesionseg cascade `{name}`."], randomized, "default_cord.yaml"
    if role.startswith(CORD_CONTRAST_PREFIX):
        contrast = role.removeprefix(CORD_CONTRAST_PREFIX)
        what = [f"Stage 1 (spinal cord) of the default lesionseg cascade `{name}` for {contrast} images: the cascade",
                f"picks it when the file's BIDS suffix is `_{contrast}` or `--contrast {contrast}` is given."]
        data = ["- Data: starts from `cord/` (the domain-randomised cord stage), fine-tuned on domain-randomised",
                f"  phantoms of the {contrast} contrast only (random anatomy, grey matter, resolution, artefacts and",
                f"  fields of view); validated on standard {contrast} phantoms; no real scan and no patient data. Flip",
                "  TTA on."]
        return what, data, "default_cord_contrast.yaml"
    if role == "lesion":
        what = [f"Stage 2 (MS lesions inside a crop around the cord) of the default lesionseg cascade `{name}`, for",
                "images of any contrast without a stage of their own (e.g. an MT-weighted scan, or a file whose",
                "contrast is unknown)."]
        return what, randomized, "default_lesion.yaml"
    contrast = role.removeprefix(CONTRAST_STAGE_PREFIX)
    what = [f"Stage 2 (MS lesions inside a crop around the cord) of the default lesionseg cascade `{name}`, for {contrast}",
            f"images: the cascade picks it when the file's BIDS suffix is `_{contrast}` or `--contrast {contrast}` is given."]
    if contrast in RANDOMIZED_CONTRASTS:
        data = ["- Data: starts from `lesion/` (the domain-randomised general stage), fine-tuned on domain-randomised",
                f"  phantoms of the {contrast} contrast only (grey matter on 60% of them, as bright as on real scans;",
                f"  lesion mimics); validated on standard {contrast} phantoms (seed {FINETUNE_SEED}); no real scan and",
                "  no patient data."]
        return what, data, "default_lesion_contrast_randomized.yaml"
    data = [f"- Data: starts from `lesion/` (the domain-randomised general stage), fine-tuned on {finetune_subjects} standard",
            f"  {contrast} phantoms (`lesionseg.synth.dataset`, seed {FINETUNE_SEED}, lesion mimics included; 20% of them",
            "  validate) with TorchIO augmentation; no real scan and no patient data."]
    return what, data, "default_lesion_contrast.yaml"


def card(name: str, role: str, folder: Path, results: dict, train_seconds: float | None, finetune_subjects: int,
         reused: str | None = None) -> str:
    """The model card of one stage (``role``: ``localizer``, ``cord``, ``lesion`` or ``lesion-<contrast>``);
    ``reused``: the earlier bundle's stage it is a copy of."""
    metadata = json.loads((folder / "metadata.json").read_text())
    size_mb = (folder / "model.pt").stat().st_size / 2**20
    what, data, config_file = _stage_text(name, role, finetune_subjects)
    lines = [
        f"# {name} / {role}",
        "",
        *what,
        "",
        "**Research use only. Not a medical device; not for diagnosis or treatment decisions.**",
        "",
        "## Training",
        *data,
        *([f"- This stage is {reused} (not retrained for this release)."] if reused else []),
        f"- Config: `config.yaml` (from `configs/{config_file}`); steps: {metadata.get('steps')};"
        + (f" {train_seconds / 60:.0f} min on 2 CPU cores." if train_seconds else ""),
        f"- Input: any orientation (canonical RAS internally), resampled to {metadata.get('spacing_mm')} mm;"
        " one z-score normalisation for every contrast.",
        f"- Size: {size_mb:.1f} MB; lesionseg {metadata.get('lesionseg_version')}, torch {metadata.get('torch_version')},"
        f" MONAI {metadata.get('monai_version')}.",
        "",
        "## Measured (scripts/train_default_models.py)",
        *results_lines(results),
        "",
        "## Intended use and limits",
        "- Cord and lesion masks on adult cervical spinal-cord MRI (T2w, T2*w, T1w, PSIR), as a starting point to",
        "  be checked by an expert; retrain or fine-tune (`lesionseg train --init-from`) on labelled local data.",
        "- Lesion figures are on phantoms and implanted lesions: no public labelled MS spinal-cord dataset exists,",
        "  so accuracy on real MS lesions is not measured.",
        "",
        f"SHA-256 (model.pt): {sha256_file(folder / 'model.pt')}",
        "",
    ]
    return "\n".join(lines)


def results_lines(results: dict) -> list[str]:
    lines = []
    if results.get("real_scan_check"):
        checks = [ScanCheck(**row) for row in results["real_scan_check"]]
        lines += ["Real-scan exam (`python scripts/real_scan_check.py`; every subject is healthy, so every lesion is a "
                  "false positive):", "", *markdown(checks).splitlines(), ""]
    return lines + _phantom_and_crop_lines(results)


def _phantom_and_crop_lines(results: dict) -> list[str]:
    # a bundle without contrast stages: the general stage is the cascade
    implanted = results.get("implanted_lesion_dice", {})
    general_implanted = results.get("implanted_lesion_dice_general", implanted)
    lines = ["| real scan | cord Dice | lesion Dice, 3 implanted lesions (contrast declared) "
             "| same, general lesion stage only |", "|---|---|---|---|"]
    for scan, value in results.get("real_cord_dice", {}).items():
        lines.append(f"| {scan} | {value:.3f} | {implanted.get(scan, float('nan')):.3f} | "
                     f"{general_implanted.get(scan, float('nan')):.3f} |")
    if not results.get("real_cord_dice"):
        lines.append("| (../shared/data/real absent: not measured) | - | - | - |")
    general = results.get("phantoms_general", results.get("phantoms", {}))
    lines += ["", "| held-out phantoms | images | lesion Dice | lesion Dice (images with lesions) | lesion-wise F1 | cord Dice "
              "| lesion Dice, general lesion stage only |", "|---|---|---|---|---|---|---|"]
    for contrast, m in results.get("phantoms", {}).items():
        alone = general.get(contrast, {}).get("lesion_dice", float("nan"))
        lines.append(f"| {contrast} | {m['images']} | {m['lesion_dice']:.3f} | {m['lesion_dice_images_with_lesions']:.3f} | "
                     f"{m['lesion_f1']:.3f} | {m['cord_dice']:.3f} | {alone:.3f} |")
    healthy = results.get("healthy_phantoms")
    if healthy:
        lines += ["", (f"Lesion-free domain-randomised phantoms (seed {HEALTHY_SEED}, lesion mimics kept): a false lesion "
                       f"on {healthy['with_false_lesion']} of {healthy['phantoms']} ({healthy['false_lesions']} lesions, "
                       f"mean {healthy['mean_false_volume_mm3']:.0f} mm3 per phantom).")]
    return lines


def evaluate_bundle(bundle: Path, test: Path, out: Path, healthy: int) -> dict:
    """Every figure of the cards: with the bundle's contrast stages, and with its general lesion stage alone;
    ``healthy``: lesion-free phantoms to count false lesions on."""
    pipeline = load_pipeline(bundle, device="cpu")
    results: dict = {"phantoms": phantom_metrics(pipeline, test, out / "phantoms")}
    if healthy:
        results["healthy_phantoms"] = healthy_false_lesions(pipeline, out / "healthy", healthy)
    if REAL.is_dir() or (REAL.parent / "real-fullfov").is_dir():
        (out / "real-check" / "montages").mkdir(parents=True, exist_ok=True)
        results["real_scan_check"] = [asdict(c) for c in run_checks(pipeline, REAL.parent, out / "real-check")]
    if pipeline.lesion_by_contrast:
        results["phantoms_general"] = phantom_metrics(general_only(pipeline), test, out / "phantoms-general")
    if REAL.is_dir():
        (out / "implanted").mkdir(parents=True, exist_ok=True)
        results["real_cord_dice"] = real_cord_dice(pipeline, REAL)
        results["implanted_lesion_dice"] = implanted_lesion_dice(pipeline, REAL, out / "implanted")
        if pipeline.lesion_by_contrast:
            results["implanted_lesion_dice_general"] = implanted_lesion_dice(general_only(pipeline), REAL, out / "implanted")
    return results


def continued(args: argparse.Namespace, role: str) -> list[str]:
    """With ``--continue``: the localizer, cord or general lesion stage starts from the reused bundle's weights of
    that stage (input polarity kept)."""
    if not args.continue_training:
        return []
    return [f"transfer.init_from={args.reuse / role}", "transfer.polarity=keep"]


def train_stages(args: argparse.Namespace, val: Path, finetune: Path, out: Path) -> dict:
    """Train the stages named in ``args.stages`` in order (localiser, cord, cord stages per contrast, general
    lesion, lesion stages per contrast); a cord or lesion stage starts from / crops with the cord model just trained,
    else the reused bundle's."""
    trained: dict = {}
    if "localizer" in args.stages:
        overrides = [f"train.steps={args.localizer_steps}"] if args.localizer_steps else []
        trained["localizer"] = train(load_config(CONFIGS / "default_localizer.yaml", overrides + continued(args, "localizer")),
                                     data_root=val, run_dir=out / "localizer")
    if "cord" in args.stages:
        overrides = [f"train.steps={args.cord_steps}"] if args.cord_steps else []
        trained["cord"] = train(load_config(CONFIGS / "default_cord.yaml", overrides + continued(args, "cord")),
                                data_root=val, run_dir=out / "cord")
    cord = trained["cord"].model_dir if "cord" in trained else args.reuse / "cord"
    for contrast in args.cord_contrasts if "cord-contrast" in args.stages else []:
        overrides = [f"data.contrasts=[{contrast}]", f"randomize.contrasts=[{contrast}]", f"transfer.init_from={cord}"]
        overrides += [f"train.steps={args.cord_contrast_steps}"] if args.cord_contrast_steps else []
        role = f"{CORD_CONTRAST_PREFIX}{contrast}"
        trained[role] = train(load_config(CONFIGS / "default_cord_contrast.yaml", overrides), data_root=val,
                              run_dir=out / role)
    if "lesion" in args.stages:
        overrides = [f"cascade.cord_model={cord}"] + ([f"train.steps={args.lesion_steps}"] if args.lesion_steps else [])
        overrides += continued(args, "lesion")
        trained["lesion"] = train(load_config(CONFIGS / "default_lesion.yaml", overrides), data_root=val,
                                  run_dir=out / "lesion")
    general = trained["lesion"].model_dir if "lesion" in trained else args.reuse / "lesion"
    for contrast in args.contrasts if "contrast" in args.stages else []:
        overrides = [f"data.contrasts=[{contrast}]", f"transfer.init_from={general}", f"cascade.cord_model={cord}"]
        overrides += [f"train.steps={args.contrast_steps}"] if args.contrast_steps else []
        config_file = "default_lesion_contrast.yaml"
        if contrast in RANDOMIZED_CONTRASTS:
            overrides.append(f"randomize.contrasts=[{contrast}]")
            config_file = "default_lesion_contrast_randomized.yaml"
        role = f"{CONTRAST_STAGE_PREFIX}{contrast}"
        trained[role] = train(load_config(CONFIGS / config_file, overrides), data_root=finetune, run_dir=out / role)
    return trained


def package(args: argparse.Namespace, bundle: Path, results: dict, seconds: dict) -> Path:
    """Write ``bundle``'s stages with their cards, a top-level card and ``results.json`` to ``MODELS/NAME``
    (through a staging folder renamed at the end)."""
    target = args.models / args.name
    staging = args.models / f".{args.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    stages = bundle_stages(bundle)
    reused_from = args.reuse.name if args.reuse else "the earlier release"
    for role in stages:
        shutil.copytree(bundle / role, staging / role, ignore=shutil.ignore_patterns(CARD_FILE))
        reused = f"`{reused_from}/{role}`, unchanged" if role in results.get("reused_stages", []) else None
        (staging / role / CARD_FILE).write_text(card(args.name, role, staging / role, results, seconds.get(role),
                                                     args.finetune_subjects, reused))
    contrasts = [role.removeprefix(CONTRAST_STAGE_PREFIX) for role in stages if role.startswith(CONTRAST_STAGE_PREFIX)]
    randomized = [contrast for contrast in contrasts if contrast in RANDOMIZED_CONTRASTS]
    contrast_note = (
        f" `lesion-<contrast>/` ({', '.join(contrasts)}) are `lesion/` fine-tuned on phantoms of one contrast"
        f" (standard ones{'; domain-randomised ones for ' + ', '.join(randomized) if randomized else ''}); the cascade"
        " gives an image of that contrast (BIDS suffix or `--contrast`) to its stage."
        if contrasts else ""
    )
    cords = [role.removeprefix(CORD_CONTRAST_PREFIX) for role in stages if role.startswith(CORD_CONTRAST_PREFIX)]
    if cords:
        contrast_note += (f" `cord-<contrast>/` ({', '.join(cords)}) are `cord/` fine-tuned on domain-randomised"
                          " phantoms of one contrast, used for images of that contrast after the localiser.")
    trained = [role for role in stages if role not in results.get("reused_stages", [])]
    (staging / CARD_FILE).write_text("\n".join([
        f"# {args.name}: the default lesionseg cascade", "",
        "`lesionseg infer SCAN` uses it when no model is given."
        + (" `localizer/` finds the cord on a whole field of view (1 x 1 x 2.5 mm grid),"
           if "localizer" in stages else ""),
        "`cord/` segments the spinal cord, `lesion/` the MS lesions inside a crop around it; a lesion is kept when at",
        "least half of it lies inside the cord mask and it is larger than 3 mm3. Trained on phantoms only",
        f"(domain-randomised for `localizer/`, `cord/` and `lesion/`); see each stage's card.{contrast_note}", "",
        "**Research use only. Not a medical device; not for diagnosis or treatment decisions.**", "",
        f"Trained by `python scripts/train_default_models.py --out {args.out} --name {args.name}"
        + (f" --stages {' '.join(args.stages)} --reuse {args.reuse}" if args.reuse else "")
        + (" --continue" if getattr(args, "continue_training", False) else "") + "`: "
        + ", ".join(trained) + f" in {(seconds.get('total') or 0) / 60:.0f} min on 2 CPU cores"
        + (f"; {', '.join(results['reused_stages'])} unchanged from `{reused_from}`"
           if results.get("reused_stages") else "")
        + ".", "",
        *results_lines(results), "",
    ]))
    results = {**results, "train_seconds": seconds}
    (staging / "results.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/default-models"))
    parser.add_argument("--name", default="cascade-synth-v3")
    parser.add_argument("--models", type=Path, default=ROOT / "lesionseg" / "models", help="where the bundle is written")
    parser.add_argument("--cord-steps", type=int, default=None, help="default: configs/default_cord.yaml")
    parser.add_argument("--lesion-steps", type=int, default=None, help="default: configs/default_lesion.yaml")
    parser.add_argument("--contrast-steps", type=int, default=None, help="default: configs/default_lesion_contrast.yaml")
    parser.add_argument("--contrasts", nargs="*", default=list(CONTRASTS), help="contrasts given a lesion stage of their own")
    parser.add_argument("--cord-contrasts", nargs="*", default=list(CORD_CONTRASTS),
                        help="contrasts given a cord stage of their own (stage cord-contrast)")
    parser.add_argument("--cord-contrast-steps", type=int, default=None,
                        help="default: configs/default_cord_contrast.yaml")
    parser.add_argument("--finetune-subjects", type=int, default=20, help="standard phantoms the contrast stages learn from")
    parser.add_argument("--test-subjects", type=int, default=8)
    parser.add_argument("--healthy-phantoms", type=int, default=24,
                        help="lesion-free random phantoms the cards count false lesions on (0: none)")
    parser.add_argument("--evaluate", type=Path, default=None, help="only evaluate this bundle (no training)")
    parser.add_argument("--localizer-steps", type=int, default=None, help="default: configs/default_localizer.yaml")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="stages to train (cord-contrast: the cord-<contrast> stages, contrast: the "
                             "lesion-<contrast> stages); the others come from --reuse")
    parser.add_argument("--reuse", type=Path, default=None, help="a bundle whose other stages are kept unchanged")
    parser.add_argument("--continue", dest="continue_training", action="store_true",
                        help="the localizer, cord and general lesion stages start from --reuse's weights of those stages")
    parser.add_argument("--package", action="store_true",
                        help="with --evaluate: write the evaluated bundle to MODELS/NAME with re-measured cards")
    args = parser.parse_args()
    if (set(STAGES) - set(args.stages) or args.continue_training) and args.reuse is None:
        parser.error("training only some stages, or --continue, needs --reuse BUNDLE")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    test = out / "test"
    if not (test / "participants.tsv").is_file():
        make_dataset(test, SynthConfig(subjects=args.test_subjects, seed=101, contrasts=list(CONTRASTS), max_mimics=3))
    if args.evaluate is not None:
        results = evaluate_bundle(args.evaluate, test, out / "eval", args.healthy_phantoms)
        (out / "results.json").write_text(json.dumps(results, indent=2))
        if args.package:  # re-measured cards for the evaluated bundle, its training times and stages kept
            earlier = json.loads((args.evaluate / "results.json").read_text())
            results["reused_stages"] = earlier.get("reused_stages", [])
            package(args, args.evaluate, results, earlier["train_seconds"])
        print("\n".join(results_lines(results)))
        return

    val = out / "val"
    if not (val / "participants.tsv").is_file():
        make_dataset(val, SynthConfig(subjects=3, seed=100, contrasts=list(CONTRASTS), max_mimics=3))
    finetune = out / "finetune"
    if args.contrasts and not (finetune / "participants.tsv").is_file():
        make_dataset(finetune, SynthConfig(subjects=args.finetune_subjects, seed=FINETUNE_SEED, contrasts=list(CONTRASTS),
                                           max_mimics=3))
    started = time.perf_counter()
    trained = train_stages(args, val, finetune, out)
    stages = {role: result.model_dir for role, result in trained.items()}
    if args.reuse is not None:  # every other stage as it is in an earlier bundle
        stages = {role: args.reuse / role for role in bundle_stages(args.reuse) if role not in trained} | stages
    seconds: dict[str, float | None] = {role: None for role in stages}
    seconds.update({role: result.seconds for role, result in trained.items()})
    seconds["total"] = time.perf_counter() - started

    bundle = out / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    for role, folder in stages.items():
        shutil.copytree(folder, bundle / role)
    results = evaluate_bundle(bundle, test, out / "eval", args.healthy_phantoms)
    results["train_seconds"] = seconds
    (out / "results.json").write_text(json.dumps(results, indent=2))

    results["reused_stages"] = [role for role in stages if role not in trained]
    target = package(args, bundle, results, seconds)
    print("\n".join(results_lines(results)))
    print(f"written: {target}")


if __name__ == "__main__":
    main()
