"""Which timesteps a training step draws: the registry behind `--timestep_sampling`.

Each entry is built once per run from the noise schedule and the config, and then draws the timesteps of this
process's slice of the global micro-batch from `training.draws.GlobalBatchDraws` (so that any number of
processes sees the same numbers).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDPMScheduler

from training.draws import GlobalBatchDraws
from training.losses import log_normal_timestep_probabilities

TimestepSampler = Callable[[GlobalBatchDraws, int], torch.Tensor]  # (draws, batch size) -> t (B,)


def uniform(scheduler: DDPMScheduler, cfg, device: torch.device) -> TimestepSampler:
    """t ~ U{0, ..., T-1}, the DDPM training distribution (Ho et al. 2020, Algorithm 1)."""
    num_train_timesteps = scheduler.config.num_train_timesteps
    return lambda draws, batch_size: draws.integers(num_train_timesteps, batch_size)


def log_normal(scheduler: DDPMScheduler, cfg, device: torch.device) -> TimestepSampler:
    """ln(sigma_t) ~ N(--log_normal_mean, --log_normal_std^2), EDM's training distribution
    (`training.losses.log_normal_timestep_probabilities`)."""
    probabilities = log_normal_timestep_probabilities(scheduler, cfg.log_normal_mean, cfg.log_normal_std).to(device)
    return lambda draws, batch_size: draws.categorical(probabilities, batch_size)


# --timestep_sampling name -> builder (noise scheduler, config, device) -> sampler; training/config.py lists the
# same names as the flag's choices.
TIMESTEP_SAMPLINGS = {"uniform": uniform, "log_normal": log_normal}


def timestep_sampler(cfg, scheduler: DDPMScheduler, device: torch.device) -> TimestepSampler:
    """The run's timestep sampler, `TIMESTEP_SAMPLINGS[cfg.timestep_sampling]`."""
    return TIMESTEP_SAMPLINGS[cfg.timestep_sampling](scheduler, cfg, device)
