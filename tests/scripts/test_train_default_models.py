"""scripts/train_default_models.py end to end with a few steps per stage (a smoke run): the bundle it writes has
a general and contrast-specific lesion stages, a contrast-specific cord stage, cards whose checksums match, and the
figures of both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lesionseg.constants import CONTRASTS
from lesionseg.inference.cascade import load_pipeline
from lesionseg.io.checkpoint import CARD_FILE, bundle_stages, verify_models

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_default_models.py"


def test_a_short_run_writes_a_carded_bundle_with_a_contrast_stage(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "run"), "--models", str(tmp_path / "models"),
         "--name", "smoke", "--localizer-steps", "2", "--cord-steps", "2", "--lesion-steps", "2", "--contrast-steps", "2", "--contrasts", "T1w", "T2starw",
         "--cord-contrast-steps", "2", "--cord-contrasts", "T2starw",
         "--test-subjects", "1", "--finetune-subjects", "3", "--healthy-phantoms", "2"],
        capture_output=True, encoding="utf-8", errors="replace", timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    bundle = tmp_path / "models" / "smoke"
    assert bundle_stages(bundle) == ("cord", "lesion", "lesion-T1w", "lesion-T2starw", "cord-T2starw", "localizer")
    assert len(verify_models([bundle])) == 6  # every card's SHA-256 is its weights'
    assert not list((tmp_path / "models").glob(".*"))  # the staging folder was renamed into place

    metadata = json.loads((bundle / "lesion-T1w" / "metadata.json").read_text())
    assert metadata["contrasts"] == ["T1w"] and not metadata["contrast_agnostic"]
    assert metadata["transfer"]["source_contrasts"] == ["T2w", "T1w", "PSIR"]  # fine-tuned from the general stage
    card = (bundle / "lesion-T1w" / CARD_FILE).read_text()
    assert "for T1w" in card and "--contrast T1w" in card and "default_lesion_contrast.yaml" in card
    assert "lesion-<contrast>/ (T1w, T2starw)" in (bundle / CARD_FILE).read_text().replace("`", "")
    t2starw = json.loads((bundle / "lesion-T2starw" / "metadata.json").read_text())  # domain-randomised phantoms
    assert t2starw["contrasts"] == ["T2starw"] and "default_lesion_contrast_randomized.yaml" in (
        bundle / "lesion-T2starw" / CARD_FILE).read_text()

    cord = json.loads((bundle / "cord-T2starw" / "metadata.json").read_text())  # the cord stage of T2starw images
    assert cord["contrasts"] == ["T2starw"] and cord["target"] == "cord"
    card = (bundle / "cord-T2starw" / CARD_FILE).read_text()
    assert "--contrast T2starw" in card and "default_cord_contrast.yaml" in card
    assert "cord-<contrast>/ (T2starw)" in (bundle / CARD_FILE).read_text().replace("`", "")

    results = json.loads((bundle / "results.json").read_text())
    for key in ("phantoms", "phantoms_general"):
        assert set(results[key]) == set(CONTRASTS)
        assert all(0.0 <= m["lesion_dice"] <= 1.0 for m in results[key].values())
    healthy = results["healthy_phantoms"]  # false lesions counted on lesion-free phantoms
    assert healthy["phantoms"] == 2 and healthy["with_false_lesion"] <= min(2, healthy["false_lesions"])
    assert (healthy["mean_false_volume_mm3"] > 0) == (healthy["with_false_lesion"] > 0)
    assert "Lesion-free domain-randomised phantoms" in (bundle / CARD_FILE).read_text()
    assert set(results["train_seconds"]) == {"localizer", "cord", "cord-T2starw", "lesion", "lesion-T1w",
                                               "lesion-T2starw", "total"}
    pipeline = load_pipeline(bundle, device="cpu")
    assert list(pipeline.lesion_by_contrast) == ["T1w", "T2starw"] and list(pipeline.cord_by_contrast) == ["T2starw"]
