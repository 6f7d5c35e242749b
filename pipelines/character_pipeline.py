# Copyright 2025 The persian-ddpm authors. Licensed under the Apache License, Version 2.0.
"""A DDPM pipeline for grayscale glyphs: class labels or character names, classifier-free guidance,
any diffusers scheduler, and the denoising trajectory.

This file is self-contained on purpose (it imports only torch, numpy, PIL, diffusers and
huggingface_hub): `save_pipeline` copies it next to each class-conditional model, so that people
without this project can load that model with
`DiffusionPipeline.from_pretrained(path, trust_remote_code=True)`.
"""

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import diffusers
import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline, LCMScheduler, UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from huggingface_hub import snapshot_download

# Models are saved with SDE-DPM-Solver++ (2M, Lu et al. 2022, arXiv:2211.01095; see `pipelines.samplers`), and
# 10 steps make 100x fewer UNet calls than 1000-step DDPM; `benchmarks/sampler_quality.py` scores it against the
# other samplers (docs/benchmarks.md, "Samplers").
DEFAULT_NUM_INFERENCE_STEPS = 10


def saved_num_inference_steps(scheduler: SchedulerMixin) -> int:
    """The steps a pipeline takes when none are asked for: a distilled student's own (1, 2 or 4: the
    `original_inference_steps` of its `LCMScheduler`, `python -m pipelines.distill`), else
    `DEFAULT_NUM_INFERENCE_STEPS`."""
    if isinstance(scheduler, LCMScheduler):
        return int(scheduler.config.original_inference_steps)
    return DEFAULT_NUM_INFERENCE_STEPS

ClassLabel = int | str


@dataclass
class CharacterPipelineOutput(BaseOutput):
    """Output of [`CharacterDDPMPipeline`].

    Args:
        images (`list[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
            The generated images: grayscale PIL images (mode "L"), or an array / tensor in [0, 1] of shape
            (batch, height, width, channels) for "np" and (batch, channels, height, width) for "pt".
        trajectory (`list[torch.Tensor]`, *optional*):
            Only when `trajectory_every` is set: the noisy sample x_t in [0, 1], on the CPU, shape
            (batch, channels, height, width), first the initial noise x_T, then after every
            `trajectory_every`-th denoising step and always after the last one, so that
            `trajectory[-1]` is the final image.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    trajectory: list[torch.Tensor] | None = None


class CharacterDDPMPipeline(DiffusionPipeline):
    r"""Pipeline for generating grayscale characters with an unconditional or class-conditional UNet.

    A class-conditional `unet` has `num_class_embeds = len(class names) + 1`; the last index is the "null"
    class, used for classifier-free guidance.

    Args:
        unet ([`UNet2DModel`]):
            The denoising model, with or without a class embedding.
        scheduler ([`SchedulerMixin`]):
            Any diffusers noise scheduler, e.g. [`DDPMScheduler`], [`DDIMScheduler`] or
            [`DPMSolverMultistepScheduler`] (swap with `Scheduler.from_config(pipe.scheduler.config)`).
        id2label (`dict[str, str]`, *optional*):
            Class index (as a string, as in JSON) to class name, e.g. `{"0": "۰", "10": "ب"}`; saved in
            `model_index.json` so the names travel with the model.
        distillation (`dict`, *optional*):
            For a few-step student (`python -m pipelines.distill`): its teacher, method, steps and the guidance
            scale folded into it (`"guidance_scale"`), which it then applies in one UNet pass per step.
    """

    model_cpu_offload_seq = "unet"

    def __init__(
        self,
        unet: UNet2DModel,
        scheduler: SchedulerMixin,
        # Dict[str, str], not Mapping[str | int, str]: diffusers checks loaded values against these annotations
        # and warns on a mismatch; model_index.json always gives string keys.
        id2label: Optional[dict[str, str]] = None,
        distillation: Optional[dict] = None,
    ):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)
        if id2label is not None:
            id2label = {str(index): name for index, name in id2label.items()}
        self.register_to_config(id2label=id2label, distillation=distillation)

    @property
    def is_class_conditional(self) -> bool:
        return self.unet.config.num_class_embeds is not None

    @property
    def class_names(self) -> list[str] | None:
        """The class names saved with the model, by class index (the null class excluded)."""
        if self.config.id2label is None:
            return None
        return [self.config.id2label[str(index)] for index in range(len(self.config.id2label))]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the UNet makes."""
        config = self.unet.config
        size = (config.sample_size,) * 2 if isinstance(config.sample_size, int) else tuple(config.sample_size)
        return (config.in_channels, *size)

    @property
    def null_class(self) -> int:
        """Index of the "null" class used for classifier-free guidance (the last embedding)."""
        return self.unet.config.num_class_embeds - 1

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> "CharacterDDPMPipeline":
        r"""Load a pipeline saved by `save_pipeline` (or any saved `DDPMPipeline`) with this class.

        Unlike `DiffusionPipeline.from_pretrained`, this never imports the copy of this file that is stored with
        class-conditional models (it is there for users without this code); the components are loaded with
        diffusers' own loaders.

        Args:
            pretrained_model_name_or_path (`str` or `os.PathLike`):
                A local folder or a Hub repo id.
            kwargs:
                `torch_dtype`; `unet`, `scheduler`, `id2label` or `distillation` to replace the saved ones; and the Hub
                arguments `revision`, `cache_dir`, `token`, `local_files_only`, `force_download`.
        """
        hub_keys = ("revision", "cache_dir", "token", "local_files_only", "force_download")
        hub_kwargs = {key: kwargs.pop(key) for key in hub_keys if key in kwargs}
        folder = str(pretrained_model_name_or_path)
        if not os.path.isdir(folder):
            folder = snapshot_download(
                folder, allow_patterns=["model_index.json", "unet/*", "scheduler/*"], **hub_kwargs
            )
        with open(os.path.join(folder, cls.config_name), encoding="utf-8") as f:
            model_index = json.load(f)
        torch_dtype = kwargs.pop("torch_dtype", None)
        unet = kwargs.pop("unet", None)
        # The component classes are named in model_index.json, e.g. "unet": ["diffusers", "UNet2DModel"].
        if unet is None:
            unet_class = getattr(diffusers, model_index["unet"][1])
            unet = unet_class.from_pretrained(folder, subfolder="unet", torch_dtype=torch_dtype)
        scheduler = kwargs.pop("scheduler", None)
        if scheduler is None:
            scheduler_class = getattr(diffusers, model_index["scheduler"][1])
            scheduler = scheduler_class.from_pretrained(folder, subfolder="scheduler")
        id2label = kwargs.pop("id2label", model_index.get("id2label"))
        distillation = kwargs.pop("distillation", model_index.get("distillation"))
        if kwargs:
            raise TypeError(f"{cls.__name__}.from_pretrained got unexpected arguments: {', '.join(sorted(kwargs))}")
        return cls(unet=unet, scheduler=scheduler, id2label=id2label, distillation=distillation)

    @property
    def folded_guidance_scale(self) -> float | None:
        """The guidance scale distilled into a class-conditional student (it guides by itself), else None."""
        return (self.config.get("distillation") or {}).get("guidance_scale")

    def _resolve_label(self, label: ClassLabel) -> int:
        """Class index of `label`, given as an index or as a class name such as "ب"."""
        names = self.class_names
        if isinstance(label, str):
            if names is None:
                raise ValueError(f"class label {label!r}: this model has no class names; pass class indices instead")
            if label not in names:
                raise ValueError(f"unknown class name {label!r}; valid names: {' '.join(names)}")
            return names.index(label)
        num_classes = self.null_class if names is None else len(names)
        if not 0 <= int(label) < num_classes:
            raise ValueError(f"class index {label} out of range; valid indices: 0..{num_classes - 1}")
        return int(label)

    def _class_labels_tensor(
        self, class_labels: ClassLabel | Sequence[ClassLabel] | None, batch_size: int
    ) -> torch.Tensor | None:
        """Class indices of shape (batch_size,), or None for an unconditional UNet."""
        if not self.is_class_conditional:
            if class_labels is not None:
                raise ValueError("class_labels were given but this model is unconditional (no class embedding)")
            return None
        if class_labels is None:
            # Cycle through the classes, so that a grid shows each of them.
            indices = [index % self.null_class for index in range(batch_size)]
        elif isinstance(class_labels, (int, str)):
            indices = [self._resolve_label(class_labels)] * batch_size
        else:
            indices = [self._resolve_label(label) for label in class_labels]
        return torch.tensor(indices, device=self._execution_device, dtype=torch.long)

    def _in_guidance_interval(self, t: torch.Tensor, interval: tuple[float, float] | None) -> bool:
        """Whether the step at timestep `t` is guided: its sigma_t in (low, high], or every step without an interval."""
        if interval is None:
            return True
        alpha_bar = self.scheduler.alphas_cumprod[int(t)].item()
        sigma = ((1 - alpha_bar) / alpha_bar) ** 0.5
        return interval[0] < sigma <= interval[1]

    @staticmethod
    def _to_unit_range(sample: torch.Tensor) -> torch.Tensor:
        """[-1, 1] model space -> [0, 1] image space."""
        return (sample / 2 + 0.5).clamp(0, 1)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
        class_labels: ClassLabel | Sequence[ClassLabel] | None = None,
        guidance_scale: float | Sequence[float] | torch.Tensor = 1.0,
        guidance_interval: tuple[float, float] | None = None,
        num_inference_steps: int | None = None,
        timesteps: list[int] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        trajectory_every: int | None = None,
    ) -> CharacterPipelineOutput | tuple:
        r"""Generate characters.

        Args:
            batch_size (`int`, *optional*, defaults to 1):
                The number of images. Ignored when `class_labels` is a list (one image per label).
            class_labels (`int`, `str` or a list of them, *optional*):
                For a class-conditional model: a class index or name (e.g. `"ب"` or `"۷"`) for the whole batch, or
                one per image. Defaults to cycling through all classes. Must be None for an unconditional model.
            guidance_scale (`float`, *optional*, defaults to 1.0):
                Classifier-free guidance scale s: eps = eps(x, null) + s * (eps(x, c) - eps(x, null)). 1.0 means no
                guidance (one UNet pass per step); larger values give more typical characters at twice the cost.
                A list or tensor gives one scale per image. A distilled student with guidance folded in
                (`folded_guidance_scale`) takes 1.0 or that scale, and both mean the guidance it learned.
            guidance_interval (`tuple[float, float]`, *optional*):
                Guide only at the steps whose noise level sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) lies in
                (low, high]; the other steps take the conditional prediction alone, in one UNet pass (Kynkäänniemi
                et al. 2024, arXiv:2404.07724: guidance at high noise narrows the samples, at low noise it does
                little). Default: guide at every step.
            num_inference_steps (`int`, *optional*):
                The number of denoising steps of the scheduler; defaults to 10, or to a distilled student's own
                1, 2 or 4 (`saved_num_inference_steps`).
            timesteps (`list[int]`, *optional*):
                Custom descending timesteps for schedulers whose `set_timesteps` takes them (DPM-Solver++, LCM),
                instead of `num_inference_steps`; starting below the last training timestep, with `latents` the
                noisy sample x_t at `timesteps[0]`, it solves from there (distillation's targets do).
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                One generator, or one per image, for reproducible results.
            latents (`torch.Tensor`, *optional*):
                The initial noise x_T, shape (batch, channels, height, width); drawn with `generator` if not given.
            output_type (`str`, *optional*, defaults to `"pil"`):
                `"pil"` (grayscale PIL images), `"np"` (array (B, H, W, C) in [0, 1]) or `"pt"` (tensor (B, C, H, W)
                in [0, 1]).
            return_dict (`bool`, *optional*, defaults to `True`):
                Return a [`CharacterPipelineOutput`] instead of a tuple `(images,)` (or `(images, trajectory)`).
            trajectory_every (`int`, *optional*):
                Also return the noisy sample x_t after every k-th step (see [`CharacterPipelineOutput`]); feed it to
                `save_trajectory_gif` for an animation.

        Example:

        ```py
        >>> import torch
        >>> from diffusers import UNet2DModel, DDPMScheduler
        >>> from pipelines import CharacterDDPMPipeline

        >>> unet = UNet2DModel(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(8, 16),
        ...                    norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
        ...                    up_block_types=("UpBlock2D", "UpBlock2D"), num_class_embeds=3)
        >>> pipe = CharacterDDPMPipeline(unet, DDPMScheduler(), id2label={0: "ب", 1: "۷"})
        >>> images = pipe(batch_size=4, class_labels="ب", guidance_scale=2.0, num_inference_steps=5,
        ...               generator=torch.Generator().manual_seed(0)).images
        >>> images[0].mode, images[0].size
        ('L', (16, 16))
        ```

        Returns:
            [`CharacterPipelineOutput`] or `tuple`: the images, and the trajectory when `trajectory_every` is set.
        """
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', not {output_type!r}")
        if trajectory_every is not None and trajectory_every < 1:
            raise ValueError(f"trajectory_every must be a positive number of steps, not {trajectory_every}")
        if class_labels is not None and not isinstance(class_labels, (int, str)):
            batch_size = len(class_labels)
        device = self._execution_device
        scales = torch.as_tensor(guidance_scale, dtype=torch.float32, device=device).flatten()  # (1,) or (B,)
        if len(scales) not in (1, batch_size):
            raise ValueError(f"guidance_scale: one scale or one per image ({batch_size}), not {len(scales)}")
        folded = self.folded_guidance_scale
        if folded is not None:  # a student guides by itself, in one UNet pass
            if not all(scale in (1.0, folded) for scale in scales.tolist()):
                raise ValueError(f"this student has guidance {folded:g} distilled into it; call it with "
                                 f"guidance_scale=1.0 or {folded:g} (the same)")
            scales = torch.ones(1, device=device)
        if guidance_interval is not None and not 0 <= guidance_interval[0] < guidance_interval[1]:
            raise ValueError(f"guidance_interval {tuple(guidance_interval)}: must be (low, high) with 0 <= low < high")
        labels = self._class_labels_tensor(class_labels, batch_size)  # (B,) or None
        guided = bool((scales != 1.0).any())
        if guided and labels is None:
            raise ValueError("guidance_scale != 1 needs a class-conditional model (with a null class)")
        scales = scales.view(-1, 1, 1, 1)  # (1 or B, 1, 1, 1), broadcast over the images
        # Unconditional labels first, then conditional: (2B,) for the guided steps
        guided_labels = torch.cat([torch.full_like(labels, self.null_class), labels]) if guided else None

        shape = (batch_size, *self.image_shape)  # (B, C, H, W)

        # x_T ~ N(0, I), scaled by the scheduler's initial sigma (1 for DDPM, DDIM and DPM-Solver)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=self.unet.dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents must have shape {shape} for this model and batch, got {tuple(latents.shape)}")
        sample = latents.to(device=device, dtype=self.unet.dtype) * self.scheduler.init_noise_sigma
        trajectory = [self._to_unit_range(sample).cpu()] if trajectory_every else None

        if timesteps is not None:
            self.scheduler.set_timesteps(timesteps=list(timesteps), device=device)
        else:
            self.scheduler.set_timesteps(num_inference_steps or saved_num_inference_steps(self.scheduler),
                                         device=device)
        timesteps = self.scheduler.timesteps
        for step, t in enumerate(self.progress_bar(timesteps)):
            guide = guided and self._in_guidance_interval(t, guidance_interval)
            # 1. predict the noise (or v, or x_0: the UNet's training target)
            model_input = torch.cat([sample] * 2) if guide else sample  # (2B or B, C, H, W)
            model_input = self.scheduler.scale_model_input(model_input, t)
            # Under bf16 autocast the UNet returns bf16; the scheduler's update stays in the sample's precision.
            model_output = self.unet(model_input, t, class_labels=guided_labels if guide else labels).sample
            model_output = model_output.to(sample.dtype)
            if guide:
                # 2. classifier-free guidance, eq. (6) of Ho & Salimans 2022 (arXiv:2207.12598) with s = 1 + w
                uncond, cond = model_output.chunk(2)  # 2 x (B, C, H, W)
                model_output = uncond + scales.to(uncond.dtype) * (cond - uncond)

            # 3. x_t -> x_{t-1}: the scheduler's update (eq. (11) of Ho et al. 2020, arXiv:2006.11239, for DDPM)
            sample = self.scheduler.step(model_output, t, sample, generator=generator).prev_sample
            if trajectory is not None and ((step + 1) % trajectory_every == 0 or step + 1 == len(timesteps)):
                trajectory.append(self._to_unit_range(sample).cpu())

        # 4. [-1, 1] -> [0, 1], then the requested type
        image = self._to_unit_range(sample)  # (B, C, H, W)
        if output_type != "pt":
            image = image.cpu().permute(0, 2, 3, 1).float().numpy()  # (B, H, W, C)
            if output_type == "pil":
                image = self.numpy_to_pil(image)
        self.maybe_free_model_hooks()

        output = CharacterPipelineOutput(images=image, trajectory=trajectory)
        return output if return_dict else output.to_tuple()


def image_grid(images: torch.Tensor, cols: int | None = None) -> PIL.Image.Image:
    """Tile a batch (B, C, H, W) in [0, 1] into one image, `cols` per row (default: a near-square grid)."""
    count, channels, height, width = images.shape
    cols = cols or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    grid = torch.zeros(channels, rows * height, cols * width)  # (C, rows * H, cols * W)
    for index, image in enumerate(images):
        row, col = divmod(index, cols)
        grid[:, row * height : (row + 1) * height, col * width : (col + 1) * width] = image
    pixels = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (rows * H, cols * W, C)
    return PIL.Image.fromarray(pixels[..., 0] if channels == 1 else pixels)


def save_trajectory_gif(
    trajectory: Sequence[torch.Tensor],
    path: str | os.PathLike,
    num_frames: int = 20,
    duration_ms: int = 100,
    final_hold_ms: int = 1000,
    cols: int | None = None,
) -> None:
    """Write a denoising trajectory (from `trajectory_every`) as an animated GIF of image grids.

    Args:
        trajectory (`list[torch.Tensor]`):
            Samples (B, C, H, W) in [0, 1], from noise to the final image.
        path (`str` or `os.PathLike`):
            The GIF to write.
        num_frames (`int`, *optional*, defaults to 20):
            Frames in the GIF, evenly spaced over the trajectory; the first is the noise and the last is the final
            image. At most `len(trajectory)`: pass a smaller `trajectory_every` for more.
        duration_ms (`int`, *optional*, defaults to 100):
            Display time of each frame.
        final_hold_ms (`int`, *optional*, defaults to 1000):
            Display time of the last frame.
        cols (`int`, *optional*):
            Images per grid row (default: a near-square grid).
    """
    if not 2 <= num_frames <= len(trajectory):
        raise ValueError(
            f"num_frames={num_frames} must be between 2 and the trajectory length {len(trajectory)}; "
            "record more steps with a smaller trajectory_every"
        )
    indices = np.linspace(0, len(trajectory) - 1, num_frames).round().astype(int)
    frames = [image_grid(trajectory[index], cols) for index in indices]
    durations = [duration_ms] * (num_frames - 1) + [final_hold_ms]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
