"""Watching it learn: a validation loss comparable across steps, and sample grids from the EMA weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers import DDPMScheduler, UNet2DModel

from pipelines import CharacterDDPMPipeline, image_grid
from pipelines.samplers import fast_sampler
from pipelines.sampling import draw
from training.losses import denoising_loss


class ValidationSet:
    """Test images with timesteps and noise drawn once, so every evaluation sees the same problem.

    Timesteps are spread evenly over [0, T) (a stratified estimate of the loss over t), and the noise
    comes from a fixed seed; a lower number at a later step therefore means a better denoiser, not
    luckier noise.

    Args:
        images: uint8 (N, C, H, W) test images.
        labels: (N,) class indices, or None.
        num_train_timesteps: T.
        seed: seed of the noise.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, num_train_timesteps: int, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.clean = images.float().cpu() / 127.5 - 1.0  # (N, C, H, W) in [-1, 1]
        self.labels = None if labels is None else labels.cpu()
        self.noise = torch.randn(self.clean.shape, generator=generator)  # (N, C, H, W)
        count = self.clean.shape[0]
        # (N,) evenly spaced t, shuffled so that every chunk covers all noise levels
        spread = torch.linspace(0, num_train_timesteps - 1, count).round().long()
        self.timesteps = spread[torch.randperm(count, generator=generator)]

    @torch.no_grad()
    def loss(self, unet: UNet2DModel, scheduler: DDPMScheduler, batch_size: int = 256) -> float:
        """Mean unweighted denoising loss of `unet` on the fixed problem.

        Args:
            unet: the model (evaluated in eval mode, restored afterwards); a class-conditional one is
                given the true labels.
            scheduler: the training noise scheduler.
            batch_size: images per forward pass.

        Returns:
            The loss as a float.
        """
        device, was_training = unet.device, unet.training
        conditional = unet.config.num_class_embeds is not None and self.labels is not None
        unet.eval()
        total = 0.0
        for start in range(0, self.clean.shape[0], batch_size):
            part = slice(start, start + batch_size)
            clean, noise, t = self.clean[part].to(device), self.noise[part].to(device), self.timesteps[part].to(device)
            labels = self.labels[part].to(device) if conditional else None
            total += denoising_loss(unet, scheduler, clean, noise, t, labels).item() * clean.shape[0]
        unet.train(was_training)
        return total / self.clean.shape[0]


def sampling_pipeline(unet: UNet2DModel, scheduler: DDPMScheduler,
                      class_names: list[str] | None = None) -> CharacterDDPMPipeline:
    """The pipeline the saved model will be, built around weights in training: `unet` with the fast sampler.

    Args:
        unet: the (EMA) model; used as is, not copied.
        scheduler: the training scheduler; the sampler (SDE-DPM-Solver++, `pipelines.samplers.fast_sampler`)
            takes its noise schedule and prediction type.
        class_names: for a class-conditional model, the names by class index.

    Returns:
        A `CharacterDDPMPipeline` with its progress bar off.
    """
    id2label = None if class_names is None else dict(enumerate(class_names))
    pipeline = CharacterDDPMPipeline(unet=unet, scheduler=fast_sampler(scheduler.config), id2label=id2label)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@torch.no_grad()
def sample_grid(unet: UNet2DModel, scheduler: DDPMScheduler, num_images: int, num_inference_steps: int,
                class_names: list[str] | None = None, seed: int = 0) -> PIL.Image.Image:
    """Sample with the saved sampler (`pipelines.sampling.draw`, SDE-DPM-Solver++) and tile the images into one grid.

    Args:
        unet: the (EMA) model.
        scheduler: the training scheduler; the sampler takes its noise schedule and prediction type.
        num_images: images in the grid.
        num_inference_steps: sampler steps.
        class_names: for a class-conditional model; column j then shows class j (classes cycle).
        seed: the same seed gives the same starting noise at every step of training.

    Returns:
        The grid as a PIL image (grayscale for 1-channel models).
    """
    pipeline = sampling_pipeline(unet, scheduler, class_names)
    was_training = unet.training
    unet.eval()
    images = draw(pipeline, num_images, num_inference_steps=num_inference_steps, seed=seed,
                  batch_size=num_images).images  # (B, C, H, W) in [0, 1]
    unet.train(was_training)
    cols = len(class_names) if class_names and len(class_names) <= 16 else None
    return image_grid(images, cols=cols)


def save_grid(grid: PIL.Image.Image, output_dir: str | Path, step: int) -> Path:
    """Write a grid as `output_dir/samples/step-<step>.png` (via a temporary file) and return the path."""
    folder = Path(output_dir) / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:06d}.png"
    partial = folder / f".{path.name}.partial"
    grid.save(partial, format="PNG")
    partial.replace(path)
    return path


def log_grid(accelerator, grid: PIL.Image.Image, step: int) -> None:
    """Send a grid to the active trackers (TensorBoard and/or wandb)."""
    pixels = np.asarray(grid)
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image("samples", pixels, step, dataformats="HW" if pixels.ndim == 2 else "HWC")
        elif tracker.name == "wandb":
            import wandb  # an optional extra (`.[wandb]`), present whenever a wandb tracker is active

            tracker.log({"samples": wandb.Image(grid)}, step=step)
