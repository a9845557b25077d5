"""The blocks of a MONAI U-Net, from input to output, for transfer learning (freezing, unfreezing, learning
rates per block).

A block is a named group of parameters with a role: ``encoder`` (one per resolution level, input side first),
``bottleneck``, ``decoder`` (deepest first) and ``head`` (the last layer, which produces the logits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Role = Literal["encoder", "bottleneck", "decoder", "head"]


@dataclass(frozen=True)
class Block:
    """A group of parameters of one role at one depth (0 = full resolution)."""

    role: Role
    depth: int
    parameters: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.role if self.role in ("bottleneck", "head") else f"{self.role}{self.depth}"

    @property
    def is_encoder_side(self) -> bool:
        return self.role in ("encoder", "bottleneck")


def _unet_position(name: str) -> tuple[Role, int]:
    """MONAI ``UNet``: ``model.0`` encoder, ``model.1.submodule`` the next level, ``model.2`` decoder, nested."""
    parts = name.split(".")[1:]  # drop "model"
    depth = 0
    while True:
        if parts[0] == "0":
            return "encoder", depth
        if parts[0] == "2":
            return ("head", 0) if depth == 0 else ("decoder", depth)
        parts, depth = parts[2:], depth + 1  # "1", "submodule"
        if not parts[0].isdigit():  # the innermost level is a single layer, not a (down, skip, up) sequence
            return "bottleneck", depth


def _dynunet_position(name: str, levels: int) -> tuple[Role, int]:
    """MONAI ``DynUNet``: input_block, downsamples.i, bottleneck, upsamples.i (deepest first), output_block."""
    parts = name.split(".")
    if parts[0] == "input_block":
        return "encoder", 0
    if parts[0] == "downsamples":
        return "encoder", int(parts[1]) + 1
    if parts[0] == "bottleneck":
        return "bottleneck", levels
    if parts[0] == "upsamples":
        return "decoder", levels - int(parts[1]) - 1
    return "head", 0  # output_block and deep-supervision heads


_ORDER = {"encoder": 0, "bottleneck": 1, "decoder": 2, "head": 3}


def network_blocks(network: torch.nn.Module) -> list[Block]:
    """The blocks of a MONAI ``UNet`` or ``DynUNet``, ordered from input to output.

    Raises:
        TypeError: another kind of network.
    """
    names = [name for name, _ in network.named_parameters()]
    class_name = type(network).__name__
    if class_name == "UNet":
        positions = {name: _unet_position(name) for name in names}
    elif class_name == "DynUNet":
        levels = len(network.downsamples) + 1  # type: ignore[arg-type]
        positions = {name: _dynunet_position(name, levels) for name in names}
    else:
        raise TypeError(f"no block structure known for {class_name}")
    grouped: dict[tuple[Role, int], list[str]] = {}
    for name in names:
        grouped.setdefault(positions[name], []).append(name)
    keys = sorted(grouped, key=lambda key: (_ORDER[key[0]], key[1] if key[0] == "encoder" else -key[1]))
    return [Block(role, depth, tuple(grouped[(role, depth)])) for role, depth in keys]
