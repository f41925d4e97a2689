"""Where a model runs: device resolution, thread count and the label written beside timings."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from mmls.core.errors import InputError


def resolve_device(spec: str, where: str = "params.yaml") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise InputError(where, f"{spec!r} is not a device (auto, cpu, cuda, cuda:N)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(where, f"device {spec!r} requested but CUDA is not available")
    return device


def set_threads(threads: int | None) -> None:
    """Fix torch's intra-op thread count (results depend on it); None keeps torch's default."""
    if threads is not None:
        torch.set_num_threads(threads)


def device_label(device: torch.device) -> str:
    """Readable device of a measurement, e.g. ``cpu (2 threads)`` or ``cuda (NVIDIA A100)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


#: Mixed precision: ``fp32`` (none) | ``bf16`` (CUDA, and CPUs with bfloat16 support) | ``fp16``
#: (CUDA only). The paper's tables use fp32, which is bitwise reproducible on CPU.
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@contextlib.contextmanager
def autocast(device: torch.device, amp: str) -> Iterator[None]:
    """torch.autocast with the named dtype on CUDA, and with bf16 on CPU; nothing with
    ``fp32`` (or ``fp16`` on CPU, which :func:`check_amp` refuses before any training)."""
    if amp == "fp32" or (device.type != "cuda" and amp != "bf16"):
        yield
        return
    with torch.autocast(device.type, dtype=AMP_DTYPES[amp]):
        yield


def check_amp(device: torch.device, amp: str, where: str) -> None:
    """``fp16`` needs CUDA (its gradient scaler); ``bf16`` and ``fp32`` run anywhere."""
    if amp == "fp16" and device.type != "cuda":
        raise InputError(where, "fp16 needs CUDA; on CPU use bf16 or fp32")


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Move an image batch to ``device`` in the configured memory layout."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return x.to(device, non_blocking=True, memory_format=fmt)
