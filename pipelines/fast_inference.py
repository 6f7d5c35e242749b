"""What is fast on the machine at hand: native bf16 on the CPU, and the autocast that uses it.

bf16 autocast makes the convolutions and matmuls of these small UNets run in bfloat16. On a CPU with
native bf16 instructions (x86 `avx512_bf16` or `amx_bf16`, Arm `bf16`) that is faster; on one without,
PyTorch emulates bf16 and the same step is several times slower (`docs/benchmarks.md`). Autocast
leaves the scheduler's element-wise arithmetic (x_t -> x_t-1) in float32, so only the UNet's forward
pass changes precision.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

# CPU feature flags (as /proc/cpuinfo spells them) that mean bf16 arithmetic runs natively.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """Whether this CPU computes bf16 natively, from its feature flags.

    Args:
        cpuinfo (`str` or `Path`, *optional*): the Linux CPU description to read.

    Returns:
        `bool` or `None`: True or False from the flags; None where they cannot be read (not Linux), in
        which case a caller that cares should measure.
    """
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):  # x86 says "flags", Arm says "Features"
            return bool(NATIVE_BF16_FLAGS & set(value.split()))
    return None


def inference_autocast(device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """The autocast to sample under: bf16 on a CPU with native bf16, none elsewhere.

    Measured by `python -m benchmarks.sampling --score` (`docs/benchmarks.md`): on a CPU with native
    bf16 the tiny UNet samples faster with the same scores. GPUs keep float32, since these UNets are
    too small for bf16 to pay there (their steps are bound by kernel launches).

    Args:
        device (`torch.device` or `str`, *optional*): where the pipeline runs.

    Returns:
        A context manager: `with inference_autocast(pipe.device): images = pipe(...).images`.
    """
    if torch.device(device).type == "cpu" and cpu_has_native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
