"""`--mixed_precision auto`: pick float32 or bf16 autocast by what is faster for this model on this machine.

Whether bf16 pays depends on the hardware, not on the model alone: on a CPU with native bf16 the tiny
UNet's training step is 1.3-1.5x faster under bf16 autocast, on one without it several times slower,
and on an H200 these small UNets are no faster in bf16 (docs/benchmarks.md). So `auto`:

1. keeps bf16 or fp16 that `accelerate launch --mixed_precision` (or `accelerate config`) asked for (accelerate
   passes on `no` whether it was asked for or not, so `no` cannot be kept: `--mixed_precision no` forces it);
2. takes float32 on a CPU whose feature flags show no native bf16, without measuring;
3. otherwise times a few training steps of a copy of the model in both precisions, interleaved, on the
   main process, and every process uses its choice.
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import time

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from diffusers import UNet2DModel

from pipelines.fast_inference import cpu_has_native_bf16

# bf16 must be at least this much faster to be chosen: closer calls are within timing noise, and float32
# is the exact one.
MIN_SPEEDUP = 1.05
WARMUP_STEPS, TIMED_ROUNDS, STEPS_PER_ROUND = 2, 3, 2


def time_training_step(unet: UNet2DModel, batch_size: int, precision: str, device: torch.device,
                       num_classes: int | None) -> callable:
    """A function that runs one training step (forward, backward, AdamW) of a copy of `unet` on random data."""
    model = copy.deepcopy(unet).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size = model.config.sample_size
    images = torch.randn(batch_size, model.config.in_channels, size, size, device=device)  # (B, C, H, W)
    labels = None if num_classes is None else torch.zeros(batch_size, dtype=torch.long, device=device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())

    def step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        timesteps = torch.randint(0, 1000, (batch_size,), device=device)
        with autocast:
            prediction = model(images, timesteps, class_labels=labels).sample
        prediction.float().square().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return step


def measure_bf16_speedup(unet: UNet2DModel, batch_size: int, device: torch.device,
                         num_classes: int | None) -> float:
    """fp32 step time / bf16 step time, from interleaved rounds (medians), with the global RNG untouched."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        steps = {p: time_training_step(unet, batch_size, p, device, num_classes) for p in ("no", "bf16")}
        for step in steps.values():
            for _ in range(WARMUP_STEPS):
                step()
        times = {p: [] for p in steps}
        for _ in range(TIMED_ROUNDS):
            for precision, step in steps.items():
                times[precision].append(sum(step() for _ in range(STEPS_PER_ROUND)))
    return statistics.median(times["no"]) / statistics.median(times["bf16"])


def bf16_possible(device: torch.device) -> bool | None:
    """Whether bf16 can be fast on `device`: False where it certainly is not, None where it must be measured."""
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else False
    if device.type == "cpu":
        return False if cpu_has_native_bf16() is False else None
    return False


def resolve_mixed_precision(requested: str, unet: UNet2DModel, batch_size: int, state: PartialState,
                            num_classes: int | None) -> tuple[str, str]:
    """The precision to train in, and why.

    Args:
        requested (`str`): `--mixed_precision`: `auto`, `no`, `bf16` or `fp16`.
        unet (`UNet2DModel`): the model to be trained (a copy is timed; it is not changed).
        batch_size (`int`): images per micro-batch per process.
        state (`PartialState`): the processes; the main one measures, all use its choice.
        num_classes (`int`, *optional*): classes of a class-conditional model.

    Returns:
        `tuple[str, str]`: the accelerate `mixed_precision` value and a sentence saying why it was chosen.
    """
    if requested != "auto":
        return requested, f"--mixed_precision {requested}"
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if launcher in ("fp16", "bf16"):
        return launcher, f"{launcher}, as accelerate launch was configured"
    possible = bf16_possible(state.device)
    if possible is False:
        what = "this CPU has no native bf16" if state.device.type == "cpu" else f"{state.device.type} has no bf16"
        return "no", f"float32 ({what})"
    choice = [None]
    if state.is_main_process:
        speedup = measure_bf16_speedup(unet, batch_size, state.device, num_classes)
        faster = speedup >= MIN_SPEEDUP
        choice = [("bf16" if faster else "no", f"{'bf16' if faster else 'float32'} (bf16 steps measured "
                                               f"{speedup:.2f}x the speed of float32 steps here)")]
    broadcast_object_list(choice)
    return choice[0]
