"""The denoiser and the noise schedule: UNet2DModel presets, explicit architecture flags, DDPMScheduler.

Presets (parameter counts for 1-channel 28 px data; the class embedding of a conditional model adds
`(classes + 1) x 4 x block_out_channels[0]`). Images/s are measured by `benchmarks/train_throughput.py`
(docs/benchmarks.md, "Training throughput").

| preset | block_out_channels | layers | attention at | parameters | meant for |
|--------|--------------------|--------|--------------|------------|-----------|
| tiny   | (16, 32, 64)       | 1      | none         | 0.6M       | a 2-core CPU: readable digits in minutes |
| small  | (64, 128, 128)     | 2      | 7x7          | 6.5M       | a laptop CPU for hours, or any GPU |
| base   | (128, 256, 256)    | 2      | 14x14, 7x7   | 27M        | a GPU; the 46 Persian classes at their best |

Every level but the last halves the image (28 -> 14 -> 7), so the resolution must be divisible by
2 ** (levels - 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusers import DDPMScheduler, UNet2DModel

from training.config import ConfigError, TrainConfig


@dataclass(frozen=True)
class Preset:
    """One row of the preset table above."""

    block_out_channels: tuple[int, ...]
    layers_per_block: int
    attention_levels: tuple[int, ...]
    norm_num_groups: int
    dropout: float
    learning_rate: float


PRESETS = {
    "tiny": Preset((16, 32, 64), 1, (), 8, 0.0, 1e-3),
    "small": Preset((64, 128, 128), 2, (2,), 32, 0.1, 5e-4),
    "base": Preset((128, 256, 256), 2, (1, 2), 32, 0.1, 2e-4),
}


def learning_rate(cfg: TrainConfig) -> float:
    """`--learning_rate`, or the preset's when unset."""
    return cfg.learning_rate if cfg.learning_rate is not None else PRESETS[cfg.model_preset].learning_rate


def unet_kwargs(cfg: TrainConfig) -> dict:
    """UNet2DModel architecture arguments from the preset, overridden by explicit flags."""
    preset = PRESETS[cfg.model_preset]
    channels = tuple(cfg.block_out_channels or preset.block_out_channels)
    levels = len(channels)
    attention = cfg.attention_levels if cfg.attention_levels is not None else preset.attention_levels
    attention = tuple(level for level in attention if level < levels)
    groups = cfg.norm_num_groups or preset.norm_num_groups
    if any(c % groups for c in channels):
        raise ConfigError(f"--norm_num_groups {groups} must divide every --block_out_channels entry {list(channels)}.")
    return {
        "block_out_channels": channels,
        "layers_per_block": cfg.layers_per_block or preset.layers_per_block,
        # Level i of the down path mirrors level (levels - 1 - i) of the up path.
        "down_block_types": tuple("AttnDownBlock2D" if i in attention else "DownBlock2D" for i in range(levels)),
        "up_block_types": tuple("AttnUpBlock2D" if levels - 1 - i in attention else "UpBlock2D" for i in range(levels)),
        "norm_num_groups": groups,
        "dropout": cfg.dropout if cfg.dropout is not None else preset.dropout,
        "attention_head_dim": 8,
    }


def build_unet(cfg: TrainConfig, resolution: int, channels: int, num_classes: int | None) -> UNet2DModel:
    """A freshly initialised UNet2DModel for `channels`-channel images of side `resolution`.

    Args:
        cfg: the run's config (preset, architecture flags or `model_config_name_or_path`).
        resolution: image side in pixels.
        channels: 1 for grayscale, 3 for RGB.
        num_classes: the dataset's class count for a class-conditional model (one more embedding is
            added for the null class, index `num_classes`), None for an unconditional one.

    Returns:
        The model, with weights initialised from the current torch seed.

    Raises:
        ConfigError: the resolution cannot be halved by the UNet's levels, or the config file disagrees
            with the data.
    """
    if cfg.model_config_name_or_path:
        try:
            config = dict(UNet2DModel.load_config(cfg.model_config_name_or_path))
        except (OSError, ValueError) as err:
            raise ConfigError(f"--model_config_name_or_path {cfg.model_config_name_or_path}: no UNet2DModel "
                              f"config found there ({type(err).__name__}).") from err
        config.pop("num_class_embeds", None)
        config.pop("class_embed_type", None)
        if config.get("in_channels", channels) != channels:
            raise ConfigError(f"--model_config_name_or_path expects {config['in_channels']}-channel images, "
                              f"but the dataset has {channels}.")
    else:
        config = unet_kwargs(cfg)
    levels = len(config.get("block_out_channels", (224, 448, 672, 896)))
    factor = 2 ** (levels - 1)
    if resolution % factor:
        raise ConfigError(f"--resolution {resolution} cannot be halved {levels - 1} times by a {levels}-level UNet; "
                          f"use a multiple of {factor} (e.g. {resolution - resolution % factor or factor}).")
    config.update(sample_size=resolution, in_channels=channels, out_channels=channels)
    if num_classes is not None:
        # class_embed_type None + num_class_embeds gives an nn.Embedding added to the time embedding.
        config.update(class_embed_type=None, num_class_embeds=num_classes + 1)
    return UNet2DModel.from_config(config)


def build_noise_scheduler(cfg: TrainConfig) -> DDPMScheduler:
    """The forward process q(x_t | x_0) of Ho et al. 2020 (arXiv:2006.11239) with the chosen betas and target."""
    return DDPMScheduler(num_train_timesteps=cfg.ddpm_num_steps, beta_schedule=cfg.ddpm_beta_schedule,
                         prediction_type=cfg.prediction_type)


def count_parameters(model) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
