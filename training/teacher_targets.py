"""What a student learns from: where the teacher's probability-flow ODE takes each of its starting points.

For pair i, x_T ~ N(0, I) is drawn from seed + i, and the teacher's deterministic sampler (DPM-Solver++,
Lu et al. 2022, arXiv:2211.01095, by default) solves the ODE from it to an image x_0^i. For every later
student timestep tau_k < T, the student will meet x_tau = sqrt(a_tau) x0 + sqrt(1 - a_tau) z (its own x0
renoised with fresh z, multistep consistency sampling); the input is built the same way from x_0^i, and its
target is the ODE solved from x_tau at tau (the consistency function of Song et al. 2023, arXiv:2303.01469).
With class labels the ODE runs under classifier-free guidance, which the student then learns to do in one pass;
with a guidance interval, guided only where sigma_t lies in it (Kynkaanniemi et al. 2024, arXiv:2404.07724), so
the student learns the wider samples of that sampler.

Pairs are computed in shards of `SHARD_SIZE` and each is written atomically, so a stopped run keeps what it
computed and the next run with the same settings goes on from there.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pipelines.character_pipeline import CharacterDDPMPipeline
from pipelines.fast_inference import inference_autocast
from pipelines.samplers import use_sampler
from pipelines.sampling import is_class_conditional, requested_classes

SHARD_SIZE = 512
# Images per teacher call: large batches keep a CPU's cores busy.
TEACHER_BATCH = 256
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class TargetSettings:
    """Everything the targets depend on; shards made under other settings are thrown away."""

    teacher: str
    timesteps: tuple[int, ...]  # the student's, descending; the first is T - 1
    teacher_sampler: str
    teacher_steps: int
    guidance_scale: float
    num_pairs: int
    seed: int
    guidance_interval: tuple[float, float] | None = None  # guide only where sigma_t is in (low, high]


@dataclass
class Targets:
    """Student inputs and ODE targets, (N, K, C, H, W) each in [-1, 1], and labels (N,) or None."""

    inputs: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor | None


def ode_steps(teacher_steps: int, timestep: int, last: int) -> int:
    """Solver steps for the ODE from `timestep`: the full run's `teacher_steps` in proportion to its length."""
    return max(2, math.ceil(teacher_steps * (timestep + 1) / (last + 1)))


@torch.no_grad()
def solve_ode(teacher: CharacterDDPMPipeline, sample: torch.Tensor, timestep: int, settings: TargetSettings,
              labels: torch.Tensor | None) -> torch.Tensor:
    """The teacher's ODE from `sample` (x at `timestep`, (B, C, H, W)) to x_0 in [-1, 1], under guidance."""
    last = settings.timesteps[0]
    options = {"latents": sample, "output_type": "pt"}
    if timestep >= last:  # from pure noise: the solver's own schedule (with its lambda clip for cosine betas)
        options["num_inference_steps"] = settings.teacher_steps
    else:
        steps = ode_steps(settings.teacher_steps, timestep, last)
        options["timesteps"] = torch.linspace(timestep, 0, steps + 1)[:-1].round().long().tolist()
    if labels is not None:
        options.update(class_labels=labels.tolist(), guidance_scale=settings.guidance_scale,
                       guidance_interval=settings.guidance_interval)
    images = teacher(batch_size=sample.shape[0], **options).images  # (B, C, H, W) in [0, 1]
    return images.float() * 2 - 1


def compute_shard(teacher: CharacterDDPMPipeline, settings: TargetSettings, first: int, count: int) -> dict:
    """Pairs first .. first + count - 1: {"inputs", "targets": (n, K, C, H, W), "labels": (n,) or None}."""
    config = teacher.unet.config
    shape = (config.in_channels, config.sample_size, config.sample_size)
    alphas = teacher.scheduler.alphas_cumprod  # a_t of the teacher's noise schedule, (T,)
    generators = [torch.Generator().manual_seed(settings.seed + i) for i in range(first, first + count)]
    # x_T and the renoising z of each later timestep: (n, K, C, H, W)
    noise = torch.stack([torch.randn((len(settings.timesteps), *shape), generator=g) for g in generators])
    labels = None
    if is_class_conditional(teacher):
        labels = requested_classes(first + count, teacher.null_class)[first:]
    inputs, targets = torch.empty_like(noise), torch.empty_like(noise)
    inputs[:, 0] = noise[:, 0]  # x_T ~ N(0, I)
    with inference_autocast(teacher.device):
        for start in range(0, count, TEACHER_BATCH):
            part = slice(start, start + TEACHER_BATCH)
            part_labels = None if labels is None else labels[part]
            targets[part, 0] = solve_ode(teacher, inputs[part, 0], settings.timesteps[0], settings, part_labels)
            for k, timestep in enumerate(settings.timesteps[1:], start=1):
                a = alphas[timestep]
                # x_tau = sqrt(a_tau) x_0 + sqrt(1 - a_tau) z: the teacher's image renoised, as the sampler does
                inputs[part, k] = a.sqrt() * targets[part, 0] + (1 - a).sqrt() * noise[part, k]
                targets[part, k] = solve_ode(teacher, inputs[part, k], timestep, settings, part_labels)
    return {"inputs": inputs, "targets": targets, "labels": labels}


def build_targets(teacher: CharacterDDPMPipeline, settings: TargetSettings, folder: Path,
                  stop_requested: Callable[[], bool] = lambda: False, progress: bool = True) -> Targets | None:
    """All pairs, from the shards in `folder` that match `settings` and computed for the rest.

    Returns:
        The targets, or None when `stop_requested()` turned true between shards (the finished ones are kept).
    """
    folder.mkdir(parents=True, exist_ok=True)
    settings_file = folder / SETTINGS_FILE
    wanted = json.dumps(asdict(settings), sort_keys=True)
    if not settings_file.is_file() or settings_file.read_text(encoding="utf-8") != wanted:
        for old in folder.glob("shard-*.pt"):  # made by other settings
            old.unlink()
        settings_file.write_text(wanted, encoding="utf-8")
    use_sampler(teacher, settings.teacher_sampler)
    shards = []
    starts = range(0, settings.num_pairs, SHARD_SIZE)
    with tqdm(total=settings.num_pairs, desc="teacher targets", unit="pair", disable=not progress) as bar:
        for first in starts:
            path = folder / f"shard-{first // SHARD_SIZE:05d}.pt"
            count = min(SHARD_SIZE, settings.num_pairs - first)
            if not path.is_file():
                if stop_requested():
                    return None
                partial = path.with_suffix(".partial")
                torch.save(compute_shard(teacher, settings, first, count), partial)
                os.replace(partial, path)
            shards.append(torch.load(path, weights_only=True))
            bar.update(count)
    labels = None if shards[0]["labels"] is None else torch.cat([s["labels"] for s in shards])
    return Targets(torch.cat([s["inputs"] for s in shards]), torch.cat([s["targets"] for s in shards]), labels)
