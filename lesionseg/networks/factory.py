"""MONAI 3D U-Nets built from :class:`~lesionseg.config.ModelConfig`.

The network has one input channel (the image) and one output channel (logits of the target: lesion or cord);
probabilities are ``sigmoid(logits)``.
"""

from __future__ import annotations

import logging

import torch
from monai.networks.nets import DynUNet, UNet

from lesionseg.config import ModelConfig

logger = logging.getLogger(__name__)

IN_CHANNELS = 1
OUT_CHANNELS = 1


def build_network(config: ModelConfig) -> torch.nn.Module:
    """A MONAI ``UNet`` or ``DynUNet`` as the config describes."""
    if config.architecture == "dynunet":
        depth = len(config.channels)
        return DynUNet(
            spatial_dims=3,
            in_channels=IN_CHANNELS,
            out_channels=OUT_CHANNELS,
            kernel_size=[3] * depth,
            strides=[1, *config.strides],
            upsample_kernel_size=list(config.strides),
            filters=list(config.channels),
            dropout=config.dropout or None,
            norm_name=config.norm,
            res_block=config.num_res_units > 0,
        )
    return UNet(
        spatial_dims=3,
        in_channels=IN_CHANNELS,
        out_channels=OUT_CHANNELS,
        channels=tuple(config.channels),
        strides=tuple(config.strides),
        num_res_units=config.num_res_units,
        dropout=config.dropout,
        norm=config.norm,
    )


def count_parameters(network: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


def size_multiple(config: ModelConfig) -> int:
    """Input sizes must be multiples of this (the product of the strides)."""
    multiple = 1
    for stride in config.strides:
        multiple *= stride
    return multiple
