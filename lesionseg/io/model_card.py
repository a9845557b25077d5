"""The model card every trained model gets (``MODEL_CARD.md``), like the shipped ones: what it segments, what it
was trained on, how well it validated, its versions, and the SHA-256 of its weights (which
``lesionseg infer --verify-checksum`` and ``lesionseg models install`` check)."""

from __future__ import annotations

from lesionseg.io.model_metadata import ModelMetadata

DISCLAIMER = "**Research use only. Not a medical device; not for diagnosis or treatment decisions.**"


def training_card(name: str, metadata: ModelMetadata, sha256: str) -> str:
    """A Markdown card from a model's ``metadata.json`` (written by ``lesionseg train``)."""
    dice = metadata.get("best_val_dice")
    validated = f"{dice:.3f} (step {metadata.get('best_step')})" if isinstance(dice, float) else "not validated"
    spacing = metadata.get("spacing_mm")
    lines = [
        f"# {name}",
        "",
        f"A {metadata.get('target', 'lesion')} segmentation model trained with `lesionseg train`.",
        "",
        DISCLAIMER,
        "",
        "## Training",
        f"- Data: {metadata.get('training_source', 'dataset')} from `{metadata.get('data_root', '?')}`: "
        f"{len(metadata.get('train_images') or [])} training, {len(metadata.get('val_images') or [])} validation, "
        f"{len(metadata.get('test_images') or [])} held-out images.",
        f"- Contrasts: {', '.join(metadata.get('contrasts') or []) or '?'}"
        f"{' (random intensities: contrast-agnostic)' if metadata.get('contrast_agnostic') else ''}.",
        f"- Input: any orientation ({metadata.get('orientation', 'RAS')} internally), resampled to "
        f"{spacing if spacing else 'its own'} mm; {metadata.get('normalization', '?')} normalisation.",
        f"- Network: {metadata.get('architecture', '?')}; steps: {metadata.get('steps')}; best validation Dice: {validated}.",
        f"- Versions: lesionseg {metadata.get('lesionseg_version')}, torch {metadata.get('torch_version')}, "
        f"MONAI {metadata.get('monai_version')}, TorchIO {metadata.get('torchio_version')}; created "
        f"{metadata.get('created')}.",
        "",
        "## Files",
        "- `model.pt` (weights, read with `torch.load(weights_only=True)`), `config.yaml`, `metadata.json`.",
        f"- SHA-256 (model.pt): `{sha256}`",
        "",
    ]
    return "\n".join(lines)
