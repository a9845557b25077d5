"""Torch devices and mixed precision, shared by training and the PyTorch inference engine."""

from __future__ import annotations

import contextlib
import re

import torch

from lesionseg.constants import DEVICE_PATTERN
from lesionseg.errors import ConfigError


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error.

    Raises:
        ConfigError: not one of auto, cpu, cuda, cuda:N, mps; or CUDA asked for on a machine without it.
    """
    if not re.fullmatch(DEVICE_PATTERN, device):
        raise ConfigError(f"device {device!r}: expected auto, cpu, cuda, cuda:N or mps")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available on this machine (use --device cpu or auto)")
    return torch.device(device)


def autocast(device: torch.device, enabled: bool, cpu_bf16: bool = False) -> contextlib.AbstractContextManager:
    """Mixed precision: float16 on CUDA when ``enabled``; bfloat16 on the CPU when ``cpu_bf16``; else none."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    if cpu_bf16 and device.type == "cpu":
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
