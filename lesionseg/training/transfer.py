"""Transfer learning: start from another model's weights (e.g. T2w -> PSIR) and choose what trains.

``transfer.init_from`` (``lesionseg train CONFIG --init-from MODEL``) copies every tensor whose name and shape
match into the new network and reports what was loaded, skipped and newly initialised. ``transfer.mode``:

- ``full``: every parameter trains (fine-tuning);
- ``frozen_encoder``: the encoder and bottleneck keep the source weights; decoder and head train;
- ``progressive``: only the head trains at first, then every ``transfer.unfreeze_every`` steps the next block
  towards the input joins (gradual unfreezing, Howard & Ruder 2018);
- ``discriminative``: everything trains, the learning rate multiplied by ``transfer.lr_decay`` per block away
  from the head.

``transfer.reinit_head`` leaves the head freshly initialised instead of copying it (the source's head carries its
own calibration: a T2w lesion model fine-tuned on PSIR kept predicting almost nothing for hundreds of steps).
``transfer.polarity`` (default ``auto``) negates the input convolutions when the labels stand out with opposite
signs in the source's training data and the target's (:func:`align_polarity`): lesions and CSF are bright on T2w and
dark on T1w and PSIR, and a T2w model fine-tuned on them without this learned no faster than from scratch.
``transfer.rescale`` scales every loaded convolution that feeds a normalisation layer back to the weight norm of a
fresh initialisation: the network computes the same function (instance normalisation removes the scale), but a
trained network's weights are 3-6x larger than at initialisation, which shrinks Adam's effective step on them
(measured on phantoms: no gain, so it is off by default).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from lesionseg.config import TransferConfig
from lesionseg.errors import TrainingError
from lesionseg.networks.blocks import Block, network_blocks

logger = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What :func:`load_matching_weights` did with each tensor."""

    loaded: list[str] = field(default_factory=list)
    #: tensors of the source not used, with the reason (absent here, other shape)
    skipped: dict[str, str] = field(default_factory=dict)
    #: tensors of the new network left as initialised, with the reason
    new: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: counts, and the names of what was skipped or is new (the first few)."""

        def names(entries: dict[str, str]) -> str:
            shown = [f"{name} ({why})" for name, why in list(entries.items())[:4]]
            more = f", +{len(entries) - 4} more" if len(entries) > 4 else ""
            return ", ".join(shown) + more if entries else "none"

        return (
            f"loaded {len(self.loaded)} tensor(s); skipped {len(self.skipped)}: {names(self.skipped)}; "
            f"newly initialised {len(self.new)}: {names(self.new)}"
        )


def _head_names(network: torch.nn.Module) -> set[str]:
    head = [block for block in network_blocks(network) if block.role == "head"]
    prefixes = {name.rsplit(".", 1)[0] for block in head for name in block.parameters}
    return {name for name in network.state_dict() if name.rsplit(".", 1)[0] in prefixes}


def load_matching_weights(
    network: torch.nn.Module, source: dict[str, torch.Tensor], *, reinit_head: bool = False, origin: str = "source"
) -> LoadReport:
    """Copy every tensor of ``source`` whose name and shape match into ``network``.

    Raises:
        TrainingError: nothing matched (another kind of network).
    """
    report = LoadReport()
    target = network.state_dict()
    head = _head_names(network) if reinit_head else set()
    selected: dict[str, torch.Tensor] = {}
    for name, tensor in target.items():
        if name in head:
            report.new[name] = "re-initialised head"
        elif name not in source:
            report.new[name] = f"not in {origin}"
        elif tuple(source[name].shape) != tuple(tensor.shape):
            report.new[name] = f"shape {tuple(source[name].shape)} in {origin}, {tuple(tensor.shape)} here"
            report.skipped[name] = "other shape"
        else:
            selected[name] = source[name]
            report.loaded.append(name)
    for name in source:
        if name not in target:
            report.skipped[name] = "not in this network"
    if not selected:
        raise TrainingError(f"{origin}: no tensor matches this network by name and shape (another architecture?)")
    network.load_state_dict({**target, **selected})
    return report


def normalised_convolutions(network: torch.nn.Module) -> list[torch.nn.Conv3d | torch.nn.ConvTranspose3d]:
    """Convolutions whose output goes straight into a normalisation layer (MONAI ``Convolution`` blocks with a
    norm, and the conv1/norm1, conv2/norm2 pairs of DynUNet blocks), in module order."""
    found: list = []
    for module in network.modules():
        adn = getattr(module, "adn", None)
        if type(module).__name__ == "Convolution" and adn is not None and "N" in adn._modules:
            found.append(module.conv)
        for index in (1, 2):
            conv, norm = getattr(module, f"conv{index}", None), getattr(module, f"norm{index}", None)
            if conv is not None and norm is not None:
                found.append(getattr(conv, "conv", conv))
    return found


@torch.no_grad()
def rescale_to_initial_norms(network: torch.nn.Module, fresh: torch.nn.Module) -> int:
    """Scale each normalised convolution of ``network`` (weight and bias) to the weight norm it has in ``fresh``
    (the same architecture, freshly initialised). Returns how many were rescaled."""
    pairs = list(zip(normalised_convolutions(network), normalised_convolutions(fresh), strict=True))
    for layer, reference in pairs:
        factor = float(reference.weight.norm() / layer.weight.norm().clamp_min(1e-12))
        layer.weight.mul_(factor)
        if layer.bias is not None:
            layer.bias.mul_(factor)
    return len(pairs)


def input_convolutions(network: torch.nn.Module, example: torch.Tensor) -> list[tuple[str, torch.nn.Module]]:
    """The convolutions that read the network's input itself (found by running ``example`` through it), named."""
    found: list[tuple[str, torch.nn.Module]] = []
    handles = [
        module.register_forward_pre_hook(
            lambda module, inputs, name=name: found.append((name, module)) if inputs and inputs[0] is example else None
        )
        for name, module in network.named_modules()
        if isinstance(module, torch.nn.Conv3d | torch.nn.ConvTranspose3d)
    ]
    training = network.training
    try:
        with torch.no_grad():
            network.eval()(example)
    finally:
        network.train(training)
        for handle in handles:
            handle.remove()
    return found


@torch.no_grad()
def invert_input(network: torch.nn.Module, example: torch.Tensor) -> list[str]:
    """Negate the weights of every convolution that reads the input, so that the network computes on ``x`` what it
    computed on ``-x`` (a convolution is linear: ``conv(-x; W, b) = conv(x; -W, b)``). Returns their names.

    Raises:
        TrainingError: no convolution reads the input directly (another kind of network).
    """
    convolutions = input_convolutions(network, example)
    if not convolutions:
        raise TrainingError("cannot invert the input polarity of this network: no convolution reads its input")
    for _, convolution in convolutions:
        convolution.weight.neg_()
    return [name for name, _ in convolutions]


def label_contrast(images: torch.Tensor, labels: torch.Tensor, shell: int = 1) -> tuple[float, int]:
    """How the labelled structure stands out from its surroundings in a batch: per image with a label, the median
    intensity inside it minus the median in a shell of ``shell`` voxels around it, over the image's standard
    deviation; returns the sum over those images and their count (positive: brighter, e.g. T2w lesions).

    Medians and a thin shell: lesions at the cord's edge touch the CSF, which is brighter than a T2w lesion and
    darker than a PSIR one; the shell's mean then takes the wrong sign, its median (the cord) does not."""
    inside = labels > 0.5
    grown = torch.nn.functional.max_pool3d(inside.float(), 2 * shell + 1, stride=1, padding=shell) > 0.5
    around = grown & ~inside
    total, count = 0.0, 0
    for image, core, ring in zip(images, inside, around, strict=True):
        if core.any() and ring.any():
            total += float((image[core].median() - image[ring].median()) / image.std().clamp_min(1e-6))
            count += 1
    return total, count


def align_polarity(network: torch.nn.Module, config: TransferConfig, source: dict[str, Any],
                   target_contrast: float | None, example: torch.Tensor) -> dict[str, Any]:
    """Make the loaded ``network`` read target images with the polarity its source model was trained on.

    ``transfer.polarity`` ``invert`` negates the input convolutions; ``auto`` does so when the labels stand out
    with opposite signs in the source's training data (``source["label_contrast"]``, from the source model's
    metadata) and in the target's (``target_contrast``, from the first training batches), unless the source is
    contrast-agnostic (``source["contrast_agnostic"]``: trained on domain-randomised phantoms of both polarities):
    MS lesions are bright on T2w (like the CSF) and dark on T1w and PSIR (like the CSF there); inverted, they look
    as the source learned them. ``example``: an input batch (to find the convolutions that read it).

    Returns:
        What to record in the model's metadata: the choice, the two label contrasts, the convolutions negated.
    """
    record: dict[str, Any] = {"polarity": config.polarity}
    choice = config.polarity
    if config.polarity == "auto":
        source_contrast = source.get("label_contrast")
        record["label_contrast"] = {"source": source_contrast, "target": target_contrast}
        if source.get("contrast_agnostic"):
            logger.info("input polarity kept: the source model was trained on images of any contrast")
            choice = "keep"
        elif source_contrast is None or target_contrast is None:
            logger.warning("input polarity kept: the label contrast of the %s is unknown (set transfer.polarity)",
                           "source model" if source_contrast is None else "target's first batches")
            choice = "keep"
        else:
            choice = "invert" if source_contrast * target_contrast < 0 else "keep"
            logger.info("input polarity: labels stand out by %+.2f SD in the source's data, %+.2f in the target's: %s",
                        source_contrast, target_contrast, choice)
    record["chosen"] = choice
    if choice == "invert":
        record["inverted"] = invert_input(network, example)
    return record


def trainable_blocks(blocks: list[Block], config: TransferConfig, step: int) -> list[Block]:
    """The blocks that train at ``step`` under ``config.mode``."""
    if config.mode == "frozen_encoder":
        return [block for block in blocks if not block.is_encoder_side]
    if config.mode == "progressive":
        count = 1 + step // config.unfreeze_every
        return blocks[-count:] if count < len(blocks) else list(blocks)
    return list(blocks)


def apply_freezing(network: torch.nn.Module, config: TransferConfig, step: int) -> list[str]:
    """Set ``requires_grad`` of every parameter as ``config.mode`` says at ``step``; returns the trainable
    block names. Frozen parameters get no gradient, so AdamW leaves them (and their weight decay) alone."""
    blocks = network_blocks(network)
    trainable = trainable_blocks(blocks, config, step)
    names = {name for block in trainable for name in block.parameters}
    for name, parameter in network.named_parameters():
        parameter.requires_grad_(name in names)
    return [block.name for block in trainable]


def parameter_groups(network: torch.nn.Module, config: TransferConfig, lr: float) -> list[dict[str, Any]]:
    """Optimiser parameter groups: one per block with ``lr x lr_decay^k`` (k blocks from the head) in
    ``discriminative`` mode, else a single group."""
    if config.mode != "discriminative":
        return [{"params": list(network.parameters()), "lr": lr}]
    parameters = dict(network.named_parameters())
    blocks = network_blocks(network)
    return [
        {"params": [parameters[name] for name in block.parameters], "lr": lr * config.lr_decay ** (len(blocks) - 1 - index),
         "block": block.name}
        for index, block in enumerate(blocks)
    ]


def prepare_transfer(
    network: torch.nn.Module, config: TransferConfig, *, step: int, resuming: bool, distributed: bool = False
) -> dict[str, Any]:
    """Initialise ``network`` from ``config.init_from`` (unless resuming: the checkpoint has the weights) and
    freeze what ``config.mode`` says at ``step``.

    Returns:
        What to record in the model's metadata (source, its contrasts, mode, load report).

    Raises:
        ConfigError: a freezing mode without ``init_from``, or progressive unfreezing under torchrun.
        ModelError: the source cannot be loaded.
        TrainingError: nothing in the source fits the network.
    """
    from lesionseg.errors import ConfigError
    from lesionseg.io.checkpoint import load_model

    if config.init_from is None:
        if config.mode != "full" or config.reinit_head:
            raise ConfigError(f"transfer.mode {config.mode!r} / reinit_head need transfer.init_from (--init-from MODEL)")
        return {}
    if config.mode == "progressive" and distributed:
        raise ConfigError("transfer.mode 'progressive' changes trainable parameters during training, which "
                          "DistributedDataParallel does not allow: use frozen_encoder, discriminative or full")
    source = load_model(config.init_from)
    record: dict[str, Any] = {
        "init_from": str(config.init_from),
        "source_contrasts": source.metadata.contrasts,
        "source_target": source.metadata.target,
        # what align_polarity compares with the target's first batches
        "source_label_contrast": source.metadata.label_contrast,
        "source_contrast_agnostic": source.metadata.contrast_agnostic,
        "mode": config.mode,
        "reinit_head": config.reinit_head,
        "rescale": config.rescale,
    }
    if not resuming:
        fresh = copy.deepcopy(network)
        report = load_matching_weights(
            network, source.state_dict, reinit_head=config.reinit_head, origin=str(config.init_from)
        )
        logger.info("initialised from %s: %s", config.init_from, report.summary())
        record["load_report"] = report.summary()
        if config.rescale:
            record["rescaled_convolutions"] = rescale_to_initial_norms(network, fresh)
    if config.mode in ("frozen_encoder", "progressive"):
        trainable = apply_freezing(network, config, step)
        logger.info("transfer mode %s: training %s", config.mode, ", ".join(trainable))
    return record
