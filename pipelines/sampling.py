"""The one way to sample: load a saved model, pick a sampler and its steps, draw seeded images.

`pipelines.generate`, the web demo (`app.py`), `python -m evaluation`, `evaluation.usefulness`, the training
grids and Fréchet checks (`training/validation.py`, `training/sample_quality.py`) and the benchmarks all call
`draw`; their flags come from `SamplingArguments`, so they are named the same everywhere.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from pipelines.character_pipeline import CharacterDDPMPipeline, saved_num_inference_steps
from pipelines.fast_inference import inference_autocast
from pipelines.samplers import SAMPLERS, check_sampler, check_sampler_for, is_student, sampler_name, use_sampler
from sharing import first_line


def guidance_interval_problem(interval: list[float] | None) -> str | None:
    """What is wrong with a `--guidance_interval` value, as a sentence naming the flag, or None."""
    if interval is not None and (len(interval) != 2 or not 0 <= interval[0] < interval[1]):
        return f"--guidance_interval {' '.join(map(str, interval))}: must be LOW HIGH with 0 <= LOW < HIGH"
    return None


@dataclass(kw_only=True)
class SamplingArguments:
    """How to sample: the flags of every command that draws images (their dataclasses inherit this one)."""

    # The aliases are the names of before (generate's --steps and --scheduler, evaluation's --scheduler), kept so
    # that existing scripts run.
    sampler: Optional[str] = field(
        default=None,
        metadata={
            "choices": list(SAMPLERS),
            "aliases": ["--scheduler"],
            "help": (
                "sampler instead of the one saved with the model: "
                + ", ".join(
                    f"{name} ({entry.title}, usually {entry.num_inference_steps} steps)"
                    for name, entry in SAMPLERS.items()
                )
            ),
        },
    )
    num_inference_steps: Optional[int] = field(default=None, metadata={"aliases": ["--steps"], "help": (
        "denoising steps (default: the saved sampler's steps, or the usual count of --sampler)")})
    guidance_scale: float = field(default=1.0, metadata={"help": (
        "classifier-free guidance scale of class-conditional models; 1 means no guidance")})
    guidance_scale_max: Optional[float] = field(default=None, metadata={"help": (
        "draw each image's guidance scale uniformly between --guidance_scale and this (seeded per image)")})
    guidance_interval: Optional[list[float]] = field(default=None, metadata={"help": (
        "LOW HIGH: guide only the steps whose noise level sigma_t lies in (LOW, HIGH] (arXiv:2404.07724); the "
        "others take the conditional prediction in one UNet pass")})
    noise_temperature: float = field(default=1.0, metadata={"help": (
        "scale of the initial noise x_T (1: the model's; above 1 wider, below 1 more typical samples)")})
    seed: int = field(default=0, metadata={"help": "image i is drawn with seed + i (same seed, same images)"})
    autocast: bool = field(default=True, metadata={"help": (
        "sample under bf16 autocast on a CPU with native bf16 (faster, same scores: docs/benchmarks.md); "
        "--no_autocast samples in float32")})

    def sampling_problem(self) -> str | None:
        """The first impossible sampling setting, as a sentence naming its flag, or None."""
        if self.num_inference_steps is not None and self.num_inference_steps < 1:
            return f"--num_inference_steps {self.num_inference_steps}: must be at least 1"
        if self.guidance_scale < 0:
            return f"--guidance_scale {self.guidance_scale}: must be 0 or more"
        if self.guidance_scale_max is not None and self.guidance_scale_max < self.guidance_scale:
            return f"--guidance_scale_max {self.guidance_scale_max}: must be at least --guidance_scale"
        if (problem := guidance_interval_problem(self.guidance_interval)) is not None:
            return problem
        if self.noise_temperature <= 0:
            return f"--noise_temperature {self.noise_temperature}: must be more than 0"
        if self.seed < 0:
            return f"--seed {self.seed}: must be 0 or more"
        return None

    def as_flags(self) -> list[str]:
        """The command-line words that give these settings to any sampling command. `--no_autocast` is one of
        them where it was given: on a CPU with native bf16, float32 samples differ from bf16 ones in a few
        pixels, so a command that is to draw the same images must sample in the same precision."""
        words = []
        for name, value in self.draw_options().items():
            if value is None or name == "autocast":
                continue
            words += [f"--{name}", *(map(str, value) if isinstance(value, tuple) else [str(value)])]
        return words + ([] if self.autocast else ["--no_autocast"])

    def draw_options(self) -> dict:
        """These settings as the keyword arguments of `draw`, so that every command passes all of them."""
        return {"sampler": self.sampler, "num_inference_steps": self.num_inference_steps,
                "guidance_scale": self.guidance_scale, "guidance_scale_max": self.guidance_scale_max,
                "guidance_interval": None if self.guidance_interval is None else tuple(self.guidance_interval),
                "noise_temperature": self.noise_temperature, "seed": self.seed, "autocast": self.autocast}


class ModelLoadError(Exception):
    """A model folder or Hub id that cannot be loaded; the message is one line naming it and what to do."""


def load_pipeline(model: str | os.PathLike, device: str | torch.device | None = None) -> CharacterDDPMPipeline:
    """A saved model (a folder from `train_ddpm.py` or a Hub id) as a `CharacterDDPMPipeline`, progress bar off.

    Args:
        model: the folder or Hub id.
        device: where to run it; default the GPU if there is one.

    Raises:
        ModelLoadError: one line naming the model and the reason.
    """
    model = str(model)
    try:
        pipe = CharacterDDPMPipeline.from_pretrained(model)
    except Exception as error:  # any loader failure (missing folder, offline Hub, bad files) becomes one line
        reason = first_line(error).rstrip(".")
        if not os.path.isdir(model):
            reason = f"no such folder, and as a Hub id: {reason}"
        raise ModelLoadError(f"model {model}: cannot load it ({reason}); pass a folder saved by train_ddpm.py or "
                             "a Hub model id") from error
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def is_class_conditional(pipeline: DiffusionPipeline) -> bool:
    """Whether the pipeline's UNet takes class labels (it has a class embedding)."""
    return pipeline.unet.config.num_class_embeds is not None


def default_steps(pipeline: DiffusionPipeline, sampler: str | None = None) -> int:
    """The steps to sample with when none are asked for: a distilled student's own (1, 2 or 4), else the usual
    count of `sampler` (a key of `SAMPLERS`), else the pipeline's own default (the saved sampler's); at most the
    length of the noise schedule."""
    if is_student(pipeline):
        usual = saved_num_inference_steps(pipeline.scheduler)
    elif sampler is not None:
        usual = check_sampler(sampler).num_inference_steps
    elif isinstance(pipeline, CharacterDDPMPipeline):
        usual = saved_num_inference_steps(pipeline.scheduler)
    else:
        saved = sampler_name(pipeline.scheduler)
        usual = SAMPLERS[saved].num_inference_steps if saved else saved_num_inference_steps(pipeline.scheduler)
    # at most the schedule's length: DDPM on a 100-step schedule takes 100
    return min(usual, pipeline.scheduler.config.num_train_timesteps)


def requested_classes(num_samples: int, num_classes: int) -> torch.Tensor:
    """Class indices (num_samples,) cycling 0, 1, ..., K-1, 0, ...: equal numbers per class (+-1)."""
    return torch.arange(num_samples) % num_classes


@dataclass
class Drawing:
    """What `draw` returns.

    Args:
        images: (N, C, H, W) float32 in [0, 1], on the CPU.
        labels: the requested class index of each image (N,) int64, or None for an unconditional model.
        trajectory: with `gif_frames`, x_t in [0, 1] (N, C, H, W) from the noise to the final image.
        sampler: the sampler's title, e.g. "SDE-DPM-Solver++" (the scheduler's class name if not in `SAMPLERS`).
        num_inference_steps: the steps taken.
        seconds: wall time of the sampling.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    trajectory: list[torch.Tensor] | None
    sampler: str
    num_inference_steps: int
    seconds: float

    @property
    def grayscale(self) -> torch.Tensor:
        """The images as (N, 1, H, W): RGB models are scored in grayscale."""
        return self.images.mean(dim=1, keepdim=True)


def _labels(pipeline: DiffusionPipeline, class_labels, num_images: int) -> torch.Tensor | None:
    """Class indices (num_images,) for a class-conditional pipeline: every class in turn when `class_labels` is
    None, one label (index or name) for all, or one per image."""
    if not is_class_conditional(pipeline):
        if class_labels is not None:
            raise ValueError("class labels were given but this model is unconditional (no class embedding)")
        return None
    if class_labels is None:
        return requested_classes(num_images, pipeline.unet.config.num_class_embeds - 1)
    if isinstance(class_labels, torch.Tensor):
        class_labels = class_labels.tolist()
    if isinstance(class_labels, (int, str)):
        class_labels = [class_labels] * num_images
    if len(class_labels) != num_images:
        raise ValueError(f"{len(class_labels)} class labels for {num_images} images")
    return torch.tensor([pipeline._resolve_label(label) for label in class_labels], dtype=torch.long)


def guidance_scales(num_images: int, low: float, high: float | None, seed: int) -> torch.Tensor:
    """Image i's guidance scale (num_images,): `low`, or with `high` uniform in [low, high] from the generator of
    seed (seed + i, 1), which the sampling noise (seeded by seed + i alone) never uses."""
    if high is None:
        return torch.full((num_images,), float(low))
    draws = [np.random.default_rng([seed + index, 1]).random() for index in range(num_images)]
    return torch.tensor([low + (high - low) * u for u in draws], dtype=torch.float32)


@torch.no_grad()
def draw(
    pipeline: DiffusionPipeline,
    num_images: int,
    *,
    class_labels: int | str | Sequence[int | str] | torch.Tensor | None = None,
    sampler: str | None = None,
    num_inference_steps: int | None = None,
    guidance_scale: float = 1.0,
    guidance_scale_max: float | None = None,
    guidance_interval: tuple[float, float] | None = None,
    noise_temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    latents: torch.Tensor | None = None,
    gif_frames: int | None = None,
    autocast: bool = True,
    progress: bool = False,
) -> Drawing:
    """Draw `num_images` images, image i from `torch.Generator().manual_seed(seed + i)`, so that the images do
    not depend on the batch size.

    Args:
        pipeline: a `CharacterDDPMPipeline`, or for an unconditional model also a stock `DDPMPipeline`.
        num_images: how many.
        class_labels: class-conditional models: one class index or name for all, one per image, or None for
            every class in turn (equal numbers per class).
        sampler: a key of `SAMPLERS` to use instead of the pipeline's scheduler (for this call only).
        num_inference_steps: default `default_steps(pipeline, sampler)`.
        guidance_scale: classifier-free guidance (class-conditional models).
        guidance_scale_max: draw image i's scale uniformly in [guidance_scale, guidance_scale_max], from a
            generator of its own (seed + i), so that the images still do not depend on the batch size.
        guidance_interval: guide only where sigma_t is in (low, high] (`CharacterDDPMPipeline`).
        noise_temperature: x_T is this times the seeded standard normal noise.
        seed: the first image's seed.
        batch_size: images per pipeline call.
        latents: the initial noise x_T (num_images, C, H, W), to start several samplers from the same x_T; the
            seeds then only drive the samplers' own noise. Default: drawn from the seeds.
        gif_frames: also record the denoising trajectory, with enough steps for this many GIF frames.
        autocast: run the UNet of a `CharacterDDPMPipeline` under `inference_autocast` (bf16 on a CPU with native
            bf16: faster, same scores). Stock pipelines would hand the bf16 output to the scheduler, so they
            always run in float32.
        progress: a progress bar over the images.

    Returns:
        A `Drawing`.

    Raises:
        ValueError: a label, sampler or step count the model cannot take (one line).
    """
    if sampler is not None:
        check_sampler_for(pipeline, sampler)
    steps = num_inference_steps or default_steps(pipeline, sampler)
    most = pipeline.scheduler.config.num_train_timesteps
    if is_student(pipeline):  # a subset of the timesteps it was distilled on
        most = saved_num_inference_steps(pipeline.scheduler)
    if not 1 <= steps <= most:
        what = "the steps this student was distilled for" if is_student(pipeline) else (
            "the length of this model's noise schedule")
        raise ValueError(f"--num_inference_steps {steps}: must be between 1 and {most}, {what}")
    labels = _labels(pipeline, class_labels, num_images)
    guiding = guidance_scale != 1.0 or guidance_scale_max is not None or guidance_interval is not None
    if guiding and labels is None:
        raise ValueError("guidance needs a class-conditional model; this one is unconditional")
    folded = getattr(pipeline, "folded_guidance_scale", None)
    if folded is not None:  # a student guides by itself: asking for its own scale is asking for what it does
        if guidance_scale not in (1.0, folded) or guidance_scale_max is not None or guidance_interval is not None:
            raise ValueError(f"--guidance_scale {guidance_scale:g}: this student has guidance {folded:g} distilled "
                             f"into it; sample it with --guidance_scale 1 or {folded:g} (the same), without "
                             "--guidance_scale_max or --guidance_interval")
        guidance_scale = 1.0
    scales = guidance_scales(num_images, guidance_scale, guidance_scale_max, seed)
    ours = isinstance(pipeline, CharacterDDPMPipeline)
    if noise_temperature != 1.0 and not ours:
        raise ValueError("--noise_temperature needs a CharacterDDPMPipeline (stock DDPMPipeline takes no latents)")
    options = {"num_inference_steps": steps, "output_type": "pt" if ours else "np"}
    if gif_frames is not None:  # enough recorded steps for the frames: 1 + steps // k >= gif_frames
        options["trajectory_every"] = max(1, steps // (gif_frames - 1))
    fast = inference_autocast(pipeline.device) if autocast and ours else contextlib.nullcontext()
    saved = pipeline.scheduler
    if sampler is not None:
        use_sampler(pipeline, sampler)
    title = next((entry.title for entry in SAMPLERS.values() if entry.matches(pipeline.scheduler)),
                 type(pipeline.scheduler).__name__)
    pipeline.set_progress_bar_config(disable=True)  # one bar over all images instead of one per call
    batches, trajectories = [], []
    start = time.perf_counter()
    try:
        with tqdm(total=num_images, desc="sampling", unit="img", disable=not progress) as bar:
            for first in range(0, num_images, batch_size):
                count = min(batch_size, num_images - first)
                generators = [torch.Generator().manual_seed(seed + first + i) for i in range(count)]
                if labels is not None:
                    options.update(class_labels=labels[first : first + count].tolist(),
                                   guidance_scale=scales[first : first + count], guidance_interval=guidance_interval)
                if latents is not None:
                    options["latents"] = latents[first : first + count]
                elif noise_temperature != 1.0:  # the noise the pipeline would draw from these generators, scaled
                    options["latents"] = noise_temperature * randn_tensor(
                        (count, *pipeline.image_shape), generator=generators, dtype=pipeline.unet.dtype)
                with fast:
                    output = pipeline(batch_size=count, generator=generators, **options)
                images = output.images
                if not ours:  # stock pipelines: (b, H, W, C) numpy
                    images = torch.from_numpy(images).permute(0, 3, 1, 2)
                batches.append(images.float().cpu())
                if gif_frames is not None:
                    trajectories.append(output.trajectory)
                bar.update(count)
    finally:
        pipeline.scheduler = saved
    seconds = time.perf_counter() - start
    trajectory = [torch.cat(frames) for frames in zip(*trajectories)] if gif_frames is not None else None
    return Drawing(torch.cat(batches), labels, trajectory, title, steps, seconds)
