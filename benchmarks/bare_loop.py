"""The bare baseline of `benchmarks/time_to_quality.py`: a plain loop around the same diffusers parts.

    python -m benchmarks.bare_loop --dataset mnist --minutes 20 --output_dir runs/ttq/bare_loop

What a practitioner would write in sixty lines, with no framework: UNet2DModel (32, 64, 64), three
DownBlock2D/UpBlock2D levels, no attention, one ResNet block per level, 8 norm groups; linear betas
over 1000 steps, epsilon targets, plain MSE; AdamW 1e-3, 100 warm-up steps, then cosine decay to the
step count estimated from the first 50 steps' speed; batches of 64 drawn at random from one in-memory
tensor; bf16 autocast (where the CPU has native bf16); gradient clipping at 1; EMA with a constant
decay of 0.999. Saved (at `--snapshot_minutes` and at the end) with `save_pipeline`, so with the
same default sampler as every other recipe (SDE-DPM-Solver++, 10 steps).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from transformers import HfArgumentParser

from data_prep.arguments import DataArguments
from data_prep.resolve import resolve_dataset
from pipelines import save_pipeline
from pipelines.fast_inference import cpu_has_native_bf16
from training.data import cached_images, to_model_range
from training.saving import SNAPSHOT_DIR, SNAPSHOT_PROGRESS

WARMUP, ESTIMATE_AFTER, BATCH, EMA_DECAY = 100, 50, 64, 0.999


@dataclass(kw_only=True)
class BareLoopArguments(DataArguments):
    """The options of `python -m benchmarks.bare_loop`."""

    dataset: str = field(default="mnist", metadata={"help": "any train_ddpm.py --dataset value"})
    output_dir: str = field(metadata={"help": "where the pipeline and its snapshots go"})
    minutes: float = field(default=20.0, metadata={"help": "wall-clock training budget"})
    snapshot_minutes: list[float] = field(default_factory=list, metadata={"help": "also save the model then"})
    num_threads: Optional[int] = field(default=None, metadata={"help": "CPU threads (default: torch's)"})
    seed: int = field(default=0, metadata={"help": "seeds the weights and the batches"})


def parse_args(argv: list[str] | None = None) -> BareLoopArguments:
    (args,) = HfArgumentParser(BareLoopArguments, description=__doc__.split("\n\n")[0]).parse_args_into_dataclasses(
        args=argv)
    return args


def save(folder: Path, unet: UNet2DModel, scheduler: DDPMScheduler, step: int, elapsed: float) -> None:
    """The model as a pipeline, with the step and time it was saved at (as train_ddpm.py's snapshots)."""
    progress = {"global_step": step, "training_time_s": round(elapsed, 1)}
    save_pipeline(folder, unet, scheduler, card_info=progress)
    (folder / SNAPSHOT_PROGRESS).write_text(json.dumps(progress) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    torch.manual_seed(args.seed)
    data = resolve_dataset(args.dataset, args.data_dir, args.seed)
    images = cached_images(data.splits["train"], data.image_column, 28, 1)  # (N, 1, 28, 28) uint8
    unet = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64),
                       layers_per_block=1, norm_num_groups=8, down_block_types=("DownBlock2D",) * 3,
                       up_block_types=("UpBlock2D",) * 3)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    ema = AveragedModel(unet, multi_avg_fn=get_ema_multi_avg_fn(EMA_DECAY))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if cpu_has_native_bf16() else contextlib.nullcontext()
    total_steps, step, start, pending = None, 0, time.perf_counter(), sorted(args.snapshot_minutes)
    while (elapsed := time.perf_counter() - start) < 60 * args.minutes:
        if step == ESTIMATE_AFTER:  # the step count the budget allows at the speed so far
            total_steps = int(step * 60 * args.minutes / elapsed)
        lr = 1e-3 * min(1.0, (step + 1) / WARMUP)
        if total_steps and step >= WARMUP:  # cosine decay from the end of warm-up to the estimated last step
            lr = 1e-3 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - WARMUP) / max(1, total_steps - WARMUP))))
        for group in optimizer.param_groups:
            group["lr"] = lr
        clean = to_model_range(images[torch.randint(0, len(images), (BATCH,))])  # x_0, (B, 1, 28, 28)
        noise = torch.randn_like(clean)
        t = torch.randint(0, 1000, (BATCH,))
        with autocast:
            prediction = unet(scheduler.add_noise(clean, noise, t), t).sample  # eps_theta(x_t, t)
        loss = F.mse_loss(prediction.float(), noise)  # the "simple" loss, eq. (14) of Ho et al. 2020
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update_parameters(unet)
        step += 1
        while pending and elapsed >= 60 * pending[0]:
            save(Path(args.output_dir, SNAPSHOT_DIR, f"{pending.pop(0):g}min"), ema.module, scheduler, step, elapsed)
    for minutes in pending:  # points at or past the end of the budget: the final model
        save(Path(args.output_dir, SNAPSHOT_DIR, f"{minutes:g}min"), ema.module, scheduler, step, elapsed)
    save(Path(args.output_dir), ema.module, scheduler, step, elapsed)
    print(f"bare loop: {step} steps in {elapsed / 60:.1f} min, saved to {args.output_dir}")


if __name__ == "__main__":
    main()
