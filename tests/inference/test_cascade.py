"""The cascade: cord first, lesions in a crop, restriction to the cord, fallback, FP filter, native outputs."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lesionseg.cli.main import app
from lesionseg.config import CascadeConfig, SynthConfig, load_config
from lesionseg.inference.batch import BatchOptions, run_batch
from lesionseg.inference.cascade import CascadePredictor, load_pipeline
from lesionseg.inference.fp_reduction import FalsePositiveFilter
from lesionseg.inference.predictor import Prediction, Predictor
from lesionseg.io.nifti import load_image, load_label_for
from lesionseg.synth.dataset import make_dataset
from lesionseg.transforms.cropping import bounding_box
from lesionseg.transforms.postprocessing import dilate_mm
from tests.conftest import CONFIGS, real_path


class _ConstantLogits(torch.nn.Module):
    """A 'network' whose output is the same logit everywhere."""

    def __init__(self, logit: float) -> None:
        super().__init__()
        self.logit = logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.logit)


def _constant_predictor(logit: float) -> Predictor:
    return Predictor(_ConstantLogits(logit), load_config(CONFIGS / "tiny.yaml"), device="cpu")



def _phantom(phantom_dataset: Path, subject: str = "sub-002"):  # noqa: ANN202
    image = load_image(phantom_dataset / subject / "anat" / f"{subject}_T2w.nii.gz")
    cord = load_label_for(image, phantom_dataset / "derivatives/labels" / subject / "anat" / f"{subject}_T2w_seg-manual.nii.gz")
    return image, cord.data


def test_lesions_stay_inside_the_dilated_cord(phantom_dataset: Path) -> None:
    image, cord = _phantom(phantom_dataset)
    everywhere = _constant_predictor(10.0)  # would call every voxel a lesion
    no_share_rule = everywhere.config.cascade.model_copy(update={"min_cord_fraction": 0.0})
    result = CascadePredictor(None, everywhere, cascade=no_share_rule).predict_loaded(image, cord_mask=cord)
    allowed = dilate_mm(cord, image.spacing_mm, everywhere.config.cascade.cord_dilation_mm)
    assert result.lesion.mask.any()
    assert not (result.lesion.mask & (1 - allowed)).any()
    assert result.box is not None and result.warning == ""
    assert result.lesion.mask.shape == image.data.shape


def test_a_lesion_mostly_outside_the_cord_is_dropped(phantom_dataset: Path) -> None:
    image, cord = _phantom(phantom_dataset)
    everywhere = _constant_predictor(10.0)  # one 'lesion': the whole dilated cord, mostly CSF around a thin cord
    result = CascadePredictor(None, everywhere).predict_loaded(image, cord_mask=cord)
    assert not result.lesion.mask.any()
    assert "50%" in result.lesion_rule and "3 mm3" in result.lesion_rule


def test_keep_lesions_in_cord_counts_each_lesions_share() -> None:
    from lesionseg.inference.lesions import keep_lesions_in_cord

    cord = np.zeros((20, 20, 20), dtype=np.uint8)
    cord[5:15, 5:15, :] = 1
    mask = np.zeros_like(cord)
    mask[6:9, 6:9, 2:5] = 1  # all inside
    mask[13:17, 8:10, 10:12] = 1  # half inside (rows 13, 14 of 13..16)
    mask[16:19, 16:19, 16:19] = 1  # outside
    kept = keep_lesions_in_cord(mask, cord, min_fraction=0.5)
    assert kept[7, 7, 3] and kept[15, 9, 11] and not kept[17, 17, 17]
    assert not keep_lesions_in_cord(mask, cord, min_fraction=0.6)[15, 9, 11]
    assert (keep_lesions_in_cord(mask, cord, min_fraction=0.0) == mask).all()


class _BlobLogits(torch.nn.Module):
    """A 'localiser' that fires on a fixed block of its (working-grid) input only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.full_like(x, -10.0)
        logits[..., 8:12, 10:14, 20:30] = 10.0
        return logits


def test_a_localiser_bounds_where_the_cord_model_runs(phantom_dataset: Path) -> None:
    from lesionseg.inference.cascade import predict_cord
    from lesionseg.transforms.cropping import box_slices, crop_box_around
    from lesionseg.transforms.postprocessing import keep_largest_component

    image, _ = _phantom(phantom_dataset)
    localizer = Predictor(_BlobLogits(), load_config(CONFIGS / "tiny.yaml"), device="cpu")
    found = localizer.predict_loaded(image).mask
    assert found.any() and not found.all()
    margin = (2.0, 2.0, 2.0)
    rules = CascadeConfig(localizer_margin_mm=margin, localizer_dilation_mm=50.0, localizer_midline_mm=None)
    cord = predict_cord(_constant_predictor(10.0), image, localizer, rules)  # a cord model firing everywhere
    largest = keep_largest_component(found)
    expected = crop_box_around(largest, image.spacing_mm, margin)
    assert bounding_box(cord.mask) == expected  # exactly the box of the largest finding, grown by the margin
    (x0, x1), (y0, y1), (z0, z1) = expected
    assert cord.mask.sum() == (x1 - x0) * (y1 - y0) * (z1 - z0) < cord.mask.size
    footprint_only = rules.model_copy(update={"localizer_dilation_mm": 0})
    near = predict_cord(_constant_predictor(10.0), image, localizer, footprint_only)
    region = box_slices(expected)
    prism = np.zeros_like(cord.mask)
    prism[region] = np.broadcast_to(largest[region].any(axis=2, keepdims=True), prism[region].shape)
    assert np.array_equal(near.mask, prism)  # the finding's footprint, through the box along the superior axis
    whole = predict_cord(_constant_predictor(10.0), image)  # without a localiser: the whole image
    assert whole.mask.all()
    nothing = Predictor(_ConstantLogits(-10.0), load_config(CONFIGS / "tiny.yaml"), device="cpu")
    assert predict_cord(_constant_predictor(10.0), image, nothing, rules).mask.all()  # no finding: whole image


def test_the_localisers_finding_is_the_tube_near_the_bodys_midline() -> None:
    from lesionseg.inference.cascade import component_near_midline

    data = np.zeros((60, 40, 20), dtype=np.float32)
    data[10:50] = 1.0  # the body spans x = 10..49: midline at 29.5
    mask = np.zeros(data.shape, dtype=np.uint8)
    mask[28:31, 20:23, 5:15] = 1  # the cord: on the midline
    mask[45:49, 20:24, :] = 1  # a jugular vein: lateral, longer and thicker
    chosen = component_near_midline(mask, data, (1.0, 1.0, 1.0), 15.0)
    assert chosen[29, 21, 10] and not chosen[46, 21, 10]
    assert component_near_midline(mask, data, (1.0, 1.0, 1.0), None)[46, 21, 10]  # off: the largest
    assert component_near_midline(mask, data, (1.0, 1.0, 1.0), 0.1)[46, 21, 10]  # none close enough: the largest


def test_of_the_tubes_on_the_midline_the_finding_is_the_posterior_one() -> None:
    """The airway lies in front of the spine (higher canonical Y), on the midline too, and can be larger."""
    from lesionseg.inference.cascade import component_near_midline

    data = np.zeros((60, 60, 20), dtype=np.float32)
    data[10:50] = 1.0
    mask = np.zeros(data.shape, dtype=np.uint8)
    mask[28:31, 20:23, 2:14] = 1  # the cord
    mask[28:31, 21:24, 16:20] = 1  # more of the cord, after a gap: the same tube
    mask[27:31, 40:44, 8:20] = 1  # the airway: anterior and larger
    mask[29:30, 5:6, 9:11] = 1  # a speck behind the cord: too small to be a candidate
    chosen = component_near_midline(mask, data, (1.0, 1.0, 1.0), 15.0)
    assert chosen[29, 21, 5] and chosen[29, 22, 18] and not chosen[29, 42, 15] and not chosen[29, 5, 10]


def test_an_image_goes_to_the_lesion_model_of_its_contrast(phantom_dataset: Path) -> None:
    from dataclasses import replace

    image, cord = _phantom(phantom_dataset)
    rules = load_config(CONFIGS / "tiny.yaml", ["cascade.min_cord_fraction=0"]).cascade  # constant 'lesions'
    cascade = CascadePredictor(None, _constant_predictor(-10.0), cascade=rules,
                               lesion_by_contrast={"PSIR": _constant_predictor(10.0)})
    psir = cascade.predict_loaded(replace(image, contrast="PSIR"), cord_mask=cord)
    assert psir.lesion.mask.any() and psir.lesion_contrast == "PSIR"
    for contrast in ("T2w", None):  # another contrast, or none known: the general model
        other = cascade.predict_loaded(replace(image, contrast=contrast), cord_mask=cord)
        assert not other.lesion.mask.any() and other.lesion_contrast == ""


def test_an_image_goes_to_the_cord_model_of_its_contrast(phantom_dataset: Path) -> None:
    from dataclasses import replace

    image, _ = _phantom(phantom_dataset)
    cascade = CascadePredictor(_constant_predictor(-10.0), _constant_predictor(-10.0),
                               cord_by_contrast={"T2starw": _constant_predictor(10.0)})
    t2starw = cascade.predict_loaded(replace(image, contrast="T2starw"))
    assert t2starw.cord.mask.any() and t2starw.cord_contrast == "T2starw" and t2starw.warning == ""
    assert cascade.segment(replace(image, contrast="T2starw")).cord_stage == "cord-T2starw"
    for contrast in ("T2w", None):  # another contrast, or none known: the general cord model (finds nothing here)
        other = cascade.predict_loaded(replace(image, contrast=contrast))
        assert not other.cord.mask.any() and other.cord_contrast == "" and other.warning.startswith("no cord found")
    assert cascade.segment(replace(image, contrast="T2w")).cord_stage == "cord"
    # a cord mask given by the user: no cord model ran
    assert cascade.predict_loaded(replace(image, contrast="T2starw"), cord_mask=t2starw.cord.mask).cord_contrast == ""


def test_without_restriction_the_crop_bounds_the_lesions(phantom_dataset: Path) -> None:
    image, cord = _phantom(phantom_dataset)
    config = load_config(CONFIGS / "tiny.yaml", ["cascade.restrict_to_cord=false", "cascade.min_cord_fraction=0"])
    result = CascadePredictor(None, _constant_predictor(10.0), cascade=config.cascade).predict_loaded(image, cord_mask=cord)
    (x0, x1), (y0, y1), (z0, z1) = result.box
    assert result.lesion.mask.sum() == (x1 - x0) * (y1 - y0) * (z1 - z0)
    assert result.lesion.mask.sum() < result.lesion.mask.size


def test_no_cord_falls_back_to_whole_image_with_a_warning(phantom_dataset: Path) -> None:
    image, _ = _phantom(phantom_dataset)
    nowhere = _constant_predictor(-10.0)
    result = CascadePredictor(nowhere, _constant_predictor(10.0)).predict_loaded(image)
    assert result.box is None and "no cord found" in result.warning
    assert result.lesion.mask.all()


class _Intensity(torch.nn.Module):
    """A 'network' whose logit is the normalised intensity of each voxel (pointwise)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_a_crop_is_normalised_like_the_whole_image(phantom_dataset: Path) -> None:
    # training normalises an image whole, then crops it: inference must give a voxel the same input wherever
    # the crop box falls (a per-crop z-score would shift every intensity with the box)
    image, cord = _phantom(phantom_dataset)
    predictor = Predictor(_Intensity(), load_config(CONFIGS / "tiny.yaml", ["preprocess.spacing_mm=null"]), device="cpu")
    whole, _, _ = predictor.predict_region(image, None)
    tight = bounding_box(cord)
    (x0, x1), (y0, y1), (z0, z1) = tight
    wide = ((0, image.data.shape[0]), (max(y0 - 6, 0), y1 + 6), (z0, z1))
    in_tight, _, _ = predictor.predict_region(image, tight)
    in_wide, _, _ = predictor.predict_region(image, wide)
    region = (slice(x0, x1), slice(y0, y1), slice(z0, z1))
    np.testing.assert_allclose(in_tight[region], in_wide[region], atol=1e-5)
    np.testing.assert_allclose(in_tight[region], whole[region], atol=2e-3)
    assert not in_tight[:x0].any() and not in_wide[:, : max(y0 - 6, 0)].any()


def test_the_cord_model_can_run_on_equalised_slices(phantom_dataset: Path) -> None:
    from lesionseg.inference.cascade import predict_cord
    from lesionseg.inference.segmenter import InferenceSettings
    from lesionseg.transforms.normalization import equalize_slices

    image, _ = _phantom(phantom_dataset)
    seen = []
    cord = _constant_predictor(-10.0)
    cord.predict_array_with_variance = lambda array, affine, contrast=None, **_: (
        seen.append(np.array(array)) or (np.zeros(array.shape, np.float32), None, {}))
    predict_cord(cord, image, cascade=CascadeConfig())
    np.testing.assert_array_equal(seen[-1], image.data)  # off by default
    predict_cord(cord, image, cascade=CascadeConfig(cord_clahe_clip_limit=0.02))
    np.testing.assert_allclose(seen[-1], equalize_slices(image.data, 0.02))
    settings = InferenceSettings(cord_clahe_clip_limit=0.02)
    cascade = CascadePredictor(cord, _constant_predictor(-10.0)).with_settings(settings)
    assert cascade.cascade.cord_clahe_clip_limit == 0.02  # lesionseg infer --cord-clahe 0.02
    assert "equalised by CLAHE (clip limit 0.02)" in cascade.lesion_rule  # said in the summary and the report
    assert "CLAHE" not in CascadePredictor(cord, _constant_predictor(-10.0)).lesion_rule
    refused = CliRunner().invoke(app, ["infer", str(phantom_dataset), "--cord-clahe", "2"])
    assert refused.exit_code != 0 and "--cord-clahe" in refused.output


def test_fp_filter_keeps_or_removes_candidates(phantom_dataset: Path) -> None:
    image, cord = _phantom(phantom_dataset)
    candidates = np.zeros(image.data.shape, dtype=np.uint8)
    candidates[cord > 0] = 1
    candidates[:2, :2, :2] = 1  # a second, separate candidate
    first = Prediction(candidates.astype(np.float32), candidates, image.affine, image.geometry)
    kept = FalsePositiveFilter(_constant_predictor(10.0))(image, first)
    assert np.array_equal(kept.mask, candidates)
    removed = FalsePositiveFilter(_constant_predictor(-10.0))(image, first)
    assert removed.mask.sum() == 0
    labels, scores = FalsePositiveFilter(_constant_predictor(0.0)).scores(image, candidates)
    assert labels.max() == 2 and scores == pytest.approx([0.5, 0.5])


def test_cascade_outputs_are_on_native_grids(trained_tiny_cord_model: Path, trained_tiny_model: Path, tmp_path: Path) -> None:
    predictor = load_pipeline(cascade=(trained_tiny_cord_model, trained_tiny_model), device="cpu")
    paths = [real_path("sct-errsm30/t2/t2.nii.gz"), real_path("sct-errsm30/t2s/t2s.nii.gz")]
    records = run_batch(predictor, paths, tmp_path)
    assert [r.status for r in records] == ["ok", "ok"]
    for path, record in zip(paths, records, strict=True):
        source = nib.load(path)
        for output in (record.output, record.cord_output):
            written = nib.load(output)
            assert written.shape == source.shape[:3]
            np.testing.assert_array_equal(written.affine, source.affine)
        assert Path(record.cord_output).name.endswith("_seg.nii.gz")


def test_cascade_bundle_folder_and_cli(trained_tiny_cord_model: Path, trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    import shutil

    from lesionseg.errors import ModelError
    from lesionseg.io.checkpoint import bundle_stages, verify_models

    bundle = tmp_path / "bundle"
    shutil.copytree(trained_tiny_cord_model, bundle / "cord")
    shutil.copytree(trained_tiny_model, bundle / "lesion")
    assert isinstance(load_pipeline(bundle, device="cpu"), CascadePredictor)
    # a contrast-specific lesion stage is found, listed, verified and used for its contrast
    shutil.copytree(trained_tiny_model, bundle / "lesion-T2w")  # the tiny model is a T2w model
    assert bundle_stages(bundle) == ("cord", "lesion", "lesion-T2w")
    assert len(verify_models([bundle])) == 3
    pipeline = load_pipeline(bundle, device="cpu")
    assert list(pipeline.lesion_by_contrast) == ["T2w"]
    assert pipeline.lesion_for("T2w") is pipeline.lesion_by_contrast["T2w"] and pipeline.lesion_for("T1w") is pipeline.lesion
    records = run_batch(pipeline, [phantom_dataset / "sub-001"], tmp_path / "staged")  # contrast: the BIDS suffix
    stages = {Path(r.input).name.split("_")[-1].split(".")[0]: r.lesion_stage for r in records}
    assert stages == {"T2w": "lesion-T2w", "T1w": "lesion", "PSIR": "lesion"}
    records = run_batch(pipeline, [phantom_dataset / "sub-001"], tmp_path / "as-psir", options=BatchOptions(contrast="PSIR"))
    assert {r.lesion_stage for r in records} == {"lesion"}
    assert all("trained on T2w, this is PSIR" in r.warning for r in records)
    report_out = tmp_path / "report"
    t2w = phantom_dataset / "sub-001" / "anat" / "sub-001_T2w.nii.gz"
    shown = CliRunner().invoke(app, ["infer", str(t2w), "--model", str(bundle), "--out", str(report_out), "--device", "cpu"])
    assert shown.exit_code == 0, shown.output
    assert "lesion model lesion-T2w" in (report_out / "sub-001_T2w_report.html").read_text()  # the report says which ran
    assert "inside the cord mask" in (report_out / "sub-001_T2w_report.html").read_text()  # and which lesions it kept
    strict = tmp_path / "strict"
    shown = CliRunner().invoke(app, ["infer", str(t2w), "--model", str(bundle), "--out", str(strict), "--device", "cpu",
                                     "--min-cord-fraction", "0.9", "--min-lesion-mm3", "5"])
    assert shown.exit_code == 0, shown.output
    import csv

    row = next(csv.DictReader((strict / "summary.csv").open()))
    assert row["lesion_rule"] == "lesions > 5 mm3 with >= 90% of their voxels inside the cord mask"
    shutil.copytree(trained_tiny_model, bundle / "lesion-PSIR")  # a T2w model in the PSIR slot: refused
    with pytest.raises(ModelError, match="lesion-PSIR: the PSIR lesion model was trained on T2w"):
        load_pipeline(bundle, device="cpu")
    shutil.rmtree(bundle / "lesion-PSIR")
    # a contrast-specific cord stage likewise: found, listed, used for its contrast and named in the summary
    shutil.copytree(trained_tiny_cord_model, bundle / "cord-T2w")
    assert bundle_stages(bundle) == ("cord", "lesion", "lesion-T2w", "cord-T2w")
    pipeline = load_pipeline(bundle, device="cpu")
    assert list(pipeline.cord_by_contrast) == ["T2w"] and pipeline.cord_for("T1w") is pipeline.cord
    records = run_batch(pipeline, [phantom_dataset / "sub-001"], tmp_path / "cord-staged")
    stages = {Path(r.input).name.split("_")[-1].split(".")[0]: r.cord_stage for r in records}
    assert stages == {"T2w": "cord-T2w", "T1w": "cord", "PSIR": "cord"}
    row = next(r for r in csv.DictReader((tmp_path / "cord-staged" / "summary.csv").open()) if "T2w" in r["input"])
    assert row["cord_stage"] == "cord-T2w"
    assert not any("contrast not declared" in r.warning for r in records)  # each phantom's name declares it
    unnamed = tmp_path / "unnamed" / "scan.nii.gz"  # a name without a BIDS suffix: the general stages, and a warning
    unnamed.parent.mkdir()
    shutil.copy(phantom_dataset / "sub-001" / "anat" / "sub-001_T2w.nii.gz", unnamed)
    [record] = run_batch(pipeline, [unnamed], tmp_path / "unnamed-out")
    assert record.cord_stage == "cord" and record.lesion_stage == "lesion"
    assert "contrast not declared" in record.warning and "own stages for T2w" in record.warning
    shutil.copytree(trained_tiny_cord_model, bundle / "cord-PSIR")  # a T2w cord model in the PSIR slot: refused
    with pytest.raises(ModelError, match="cord-PSIR: the PSIR cord model was trained on T2w"):
        load_pipeline(bundle, device="cpu")
    shutil.rmtree(bundle / "cord-PSIR")
    shutil.copytree(trained_tiny_model, bundle / "cord-T1w")  # a lesion model as a cord stage: refused
    with pytest.raises(ModelError, match="cord-T1w: a lesion model given as the cascade's cord model"):
        load_pipeline(bundle, device="cpu")
    shutil.rmtree(bundle / "cord-T1w")
    result = CliRunner().invoke(
        app, ["infer", str(phantom_dataset / "sub-001"), "--cascade", str(trained_tiny_cord_model), str(trained_tiny_model), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").rglob("*_seg.nii.gz"))) == 3
    assert len(list((tmp_path / "out").rglob("*_lesionseg.nii.gz"))) == 3
    shutil.copytree(trained_tiny_cord_model, bundle / "localizer")  # a cord model as the bundle's localiser
    assert bundle_stages(bundle)[-1] == "localizer"
    assert load_pipeline(bundle, device="cpu").localizer is not None
    shutil.copytree(trained_tiny_model, bundle / "wrong", dirs_exist_ok=True)
    shutil.rmtree(bundle / "localizer")
    shutil.copytree(trained_tiny_model, bundle / "localizer")  # a lesion model as the localiser: refused
    with pytest.raises(ModelError, match="a lesion model given as the cascade's cord model"):
        load_pipeline(bundle, device="cpu")


def _label_model(label: np.ndarray) -> Predictor:
    """A predictor whose every region prediction is ``label`` (a phantom's own discs or C2)."""
    model = _constant_predictor(-10.0)
    model.predict_region = lambda image, box: (label.astype(np.float32), None, {})
    return model


def test_disc_and_c2_models_give_the_cord_its_vertebral_levels(tmp_path: Path) -> None:
    from lesionseg.analysis.discs import find_c2, find_discs

    config = SynthConfig(subjects=1, seed=3, fov_mm=(40.0, 56.0, 120.0), top_of_spine=True, random_orientation=True)
    make_dataset(tmp_path, config)
    image = load_image(tmp_path / "sub-001/anat/sub-001_T2w.nii.gz")
    labels = tmp_path / "derivatives/labels/sub-001/anat"
    cord, discs, c2 = (load_label_for(image, labels / f"sub-001_T2w_{name}.nii.gz").data
                       for name in ("seg-manual", "disc-manual", "c2-manual"))
    disc_model, c2_model = _label_model(discs), _label_model(c2)
    cascade = CascadePredictor(None, _constant_predictor(-10.0), discs=disc_model, c2=c2_model)
    result = cascade.predict_loaded(image, cord_mask=cord)
    heights = find_discs(discs, cord, image.spacing_mm)
    assert find_c2(heights, c2, cord, image.spacing_mm) == 0  # C2 above the phantom's top disc
    assert len(heights) >= 2 and result.levels is not None
    in_c2 = c2.any(axis=(0, 1))
    assert set(np.unique(result.levels[:, :, in_c2][cord[:, :, in_c2] > 0])) == {2}
    lowest = result.levels[:, :, : int(heights[-1])]
    assert set(np.unique(lowest[lowest > 0])) == {2 + len(heights)}
    assert disc_model in cascade.stages and c2_model in cascade.stages
    without_c2 = CascadePredictor(None, _constant_predictor(-10.0), discs=disc_model, c2=_label_model(0 * c2))
    assert without_c2.predict_loaded(image, cord_mask=cord).levels is None  # no C2 in view: no names


def test_a_disc_model_without_a_c2_model_is_refused(tmp_path: Path) -> None:
    from lesionseg.errors import ModelError

    with pytest.raises(ModelError, match="discs: the vertebral levels need both a disc and a C2 model"):
        CascadePredictor.from_models(tmp_path / "cord", tmp_path / "lesion", discs_model=tmp_path / "discs")


def test_the_default_t2starw_stage_reports_no_lesion_on_a_healthy_real_t2starw() -> None:
    """The healthy errsm30 T2*w (axial gradient echo, a bright grey-matter butterfly), declared T2starw, goes to the
    default cascade's T2starw stages: no lesion (the general stage takes the grey matter for one), and a cord that
    keeps out of the bright CSF (against the manual mask: the general cord stage's Dice 0.829, cord-T2starw's 0.895).
    """
    from dataclasses import replace

    from lesionseg.evaluation.metrics import dice
    from lesionseg.io.registry import default_model
    from lesionseg.transforms.postprocessing import label_components

    image = load_image(real_path("sct-errsm30/t2s/t2s.nii.gz"))
    manual = load_label_for(image, real_path("sct-errsm30/t2s/t2s_seg.nii.gz")).data > 0
    pipeline = load_pipeline(default_model(), device="cpu")
    assert "T2starw" in pipeline.lesion_by_contrast and "T2starw" in pipeline.cord_by_contrast
    declared = pipeline.predict_loaded(replace(image, contrast="T2starw"))
    assert label_components(declared.lesion.mask)[1] == 0 and declared.cord_contrast == "T2starw"
    assert declared.cord.mask.any(axis=(0, 1)).all()  # the cord on every slice
    assert dice(declared.cord.mask, manual) > 0.88 > dice(pipeline.predict_cord(image).mask, manual)


def test_no_tta_reaches_the_contrast_specific_cord_stages_too() -> None:
    """``--no-tta`` (``tta=False``) turns flip TTA off in every stage that has it by default: the lesion stages and
    cord-T2starw; the general cord stage never uses it."""
    from lesionseg.io.registry import default_model

    by_default = load_pipeline(default_model(), device="cpu")
    assert by_default.cord_by_contrast["T2starw"].tta and by_default.lesion.tta and not by_default.cord.tta
    without = load_pipeline(default_model(), device="cpu", tta=False)
    assert not without.cord_by_contrast["T2starw"].tta and not without.lesion.tta
    assert not any(stage.tta for stage in without.lesion_by_contrast.values())


def test_the_summary_and_report_give_the_cords_coverage_and_area(tmp_path: Path) -> None:
    """An axial stack (0.8 x 0.8 x 5 mm) whose cord mask stops two slices short of the top: the summary has the
    slices with cord, the median area and a warning; the report says the same."""
    data = np.zeros((48, 48, 12), np.int16)
    x, y = np.meshgrid(np.arange(48), np.arange(48), indexing="ij")
    tube = ((x - 24) ** 2 + (y - 20) ** 2) <= 25  # 81 voxels of 0.64 mm2: 51.8 mm2
    data[tube] = 100
    scan = tmp_path / "stack.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 5.0, 1.0])), scan)
    cord = _constant_predictor(-10.0)
    found = np.zeros(data.shape, np.float32)
    found[tube, :10] = 1.0
    cord.predict_array_with_variance = lambda array, affine, contrast=None, **_: (found, None, {})
    from lesionseg.reporting.inference_html import ReportWriter

    [record] = run_batch(CascadePredictor(cord, _constant_predictor(-10.0)), [scan], tmp_path / "out",
                         writers=[ReportWriter("tiny", "test")])
    assert (record.cord_slices, record.axial_slices, record.cord_csa_mm2) == (10, 12, 51.8)
    assert "cord found on 10 of 12 axial slices, not on the 2 highest" in record.warning
    import csv

    row = next(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    assert (row["cord_slices"], row["axial_slices"], row["cord_csa_mm2"]) == ("10", "12", "51.8")
    report = (tmp_path / "out" / "stack_report.html").read_text()
    assert "on 10 of 12 axial slices; median cross-sectional area 52 mm2" in report
    found[tube, 10:] = 1.0  # the cord on every slice: no warning
    [record] = run_batch(CascadePredictor(cord, _constant_predictor(-10.0)), [scan], tmp_path / "all")
    assert record.cord_slices == 12 and "axial slices" not in record.warning
