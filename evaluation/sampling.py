"""Seeded, batched sampling from a diffusion pipeline, for scoring."""

import contextlib

import numpy as np
import torch
from diffusers import DiffusionPipeline
from tqdm.auto import tqdm

from pipelines import GlyphDDPMPipeline
from pipelines.fast_inference import inference_autocast


def requested_classes(num_samples: int, num_classes: int) -> torch.Tensor:
    """Class indices (num_samples,) cycling 0, 1, ..., K-1, 0, ...: equal numbers per class (+-1)."""
    return torch.arange(num_samples) % num_classes


def is_class_conditional(pipeline: DiffusionPipeline) -> bool:
    """Whether the pipeline's UNet takes class labels (it has a class embedding)."""
    return pipeline.unet.config.num_class_embeds is not None


def sample_images(
    pipeline: DiffusionPipeline,
    num_samples: int,
    *,
    batch_size: int = 64,
    seed: int = 0,
    num_inference_steps: int | None = None,
    guidance_scale: float = 1.0,
    num_classes: int | None = None,
    progress: bool = True,
    autocast: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Draws `num_samples` images, one seeded generator per image, so results do not depend on batching.

    Args:
        pipeline (`DiffusionPipeline`): a `pipelines.GlyphDDPMPipeline`, or for an unconditional model also a
            stock `DDPMPipeline` (anything taking `batch_size`, `generator`, `output_type="np"`).
        num_samples (`int`): images to draw.
        batch_size (`int`, *optional*, defaults to 64): images per pipeline call.
        seed (`int`, *optional*, defaults to 0): image i uses `torch.Generator().manual_seed(seed + i)`.
        num_inference_steps (`int`, *optional*): denoising steps; the pipeline's default when None.
        guidance_scale (`float`, *optional*, defaults to 1.0): classifier-free guidance (class-conditional only).
        num_classes (`int`, *optional*): for a class-conditional pipeline, the classes to cycle through (equal
            numbers per class); defaults to all but the UNet's last ("null") class embedding.
        progress (`bool`, *optional*, defaults to True): show a progress bar over the images.
        autocast (`bool`, *optional*, defaults to True): for a `GlyphDDPMPipeline`, run the UNet under
            `pipelines.fast_inference.inference_autocast` (bf16 on a CPU with native bf16: faster, same scores).

    Returns:
        `tuple`: images (N, 1, H, W) float32 in [0, 1] on the CPU, and the requested class of each image
        (N,) int64, or None for an unconditional pipeline.
    """
    conditional = is_class_conditional(pipeline)
    labels = None
    if conditional:
        labels = requested_classes(num_samples, num_classes or pipeline.unet.config.num_class_embeds - 1)
    options = {} if num_inference_steps is None else {"num_inference_steps": num_inference_steps}
    pipeline.set_progress_bar_config(disable=True)  # one bar over all images instead of one per call
    # Only our pipeline casts the UNet's bf16 output back before the scheduler step; stock ones would hand it to
    # DPM-Solver, which then keeps x_t itself in bf16.
    fast = inference_autocast(pipeline.device) if autocast and isinstance(pipeline, GlyphDDPMPipeline) \
        else contextlib.nullcontext()
    batches = []
    with tqdm(total=num_samples, desc="sampling", unit="img", disable=not progress) as bar:
        for start in range(0, num_samples, batch_size):
            count = min(batch_size, num_samples - start)
            generators = [torch.Generator().manual_seed(seed + start + i) for i in range(count)]
            if conditional:
                options.update(class_labels=labels[start : start + count].tolist(), guidance_scale=guidance_scale)
            with fast:
                images = pipeline(batch_size=count, generator=generators, output_type="np", **options).images
            batches.append(np.asarray(images, dtype=np.float32))  # (b, H, W, C) in [0, 1]
            bar.update(count)
    images = torch.from_numpy(np.concatenate(batches)).permute(0, 3, 1, 2)  # (N, C, H, W)
    return images.mean(dim=1, keepdim=True), labels  # (N, 1, H, W): RGB models are scored in grayscale
