"""Training targets and the (optionally min-SNR weighted) denoising loss, shared by training and validation."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.training_utils import compute_snr
from scipy.optimize import linear_sum_assignment


def training_target(scheduler: DDPMScheduler, clean: torch.Tensor, noise: torch.Tensor,
                    timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet should output for x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps (eq. (4) of Ho et al. 2020).

    Args:
        scheduler: gives the prediction type and the cumulative alphas a_t.
        clean: x_0, (B, C, H, W) in [-1, 1].
        noise: eps ~ N(0, I), (B, C, H, W).
        timesteps: t, (B,).

    Returns:
        (B, C, H, W): eps for `epsilon`, v = sqrt(a_t) eps - sqrt(1 - a_t) x_0 for `v_prediction`
        (sec. 4 of Salimans & Ho 2022, arXiv:2202.00512), x_0 for `sample`.
    """
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(clean, noise, timesteps)
    return clean


def immiscible_noise(clean: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The batch's noise reordered so that the total distance between each image and its noise is smallest.

    Immiscible diffusion (Li et al. 2024, arXiv:2406.12303, Algorithm 1): each noise sample is still N(0, I), but
    images are paired with nearby noise, so that the map from noise to images the model learns tangles less. The
    assignment is scipy's Hungarian solver on the (B, B) matrix of L2 distances.

    Args:
        clean: x_0, (B, C, H, W).
        noise: eps ~ N(0, I), (B, C, H, W).

    Returns:
        (B, C, H, W): `noise` with its batch rows permuted.
    """
    distances = torch.cdist(clean.flatten(1).float(), noise.flatten(1).float())  # (B, B)
    _, order = linear_sum_assignment(distances.cpu().numpy())
    return noise[torch.as_tensor(order, device=noise.device)]


def log_normal_timestep_probabilities(scheduler: DDPMScheduler, mean: float, std: float) -> torch.Tensor:
    """P(t) for t in 0..T-1 such that the noise level sigma_t is log-normal, (T,), summing to 1.

    x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps is x_0 + sigma_t eps scaled by sqrt(a_t), with sigma_t =
    sqrt((1 - a_t) / a_t), so EDM's ln(sigma) ~ N(mean, std^2) (Karras et al. 2022, arXiv:2206.00364, sec. 5,
    P_mean = -1.2, P_std = 1.2) carries over to discrete timesteps: each t gets the normal mass of its cell of
    ln(sigma), bounded by the midpoints to its neighbours (the first and last cells reach to -inf and +inf).
    """
    alphas_cumprod = scheduler.alphas_cumprod.double()  # a_t, decreasing in t (more noise)
    log_sigma = 0.5 * torch.log((1 - alphas_cumprod) / alphas_cumprod)  # (T,), increasing
    edges = torch.cat([log_sigma.new_tensor([-torch.inf]), (log_sigma[1:] + log_sigma[:-1]) / 2,
                       log_sigma.new_tensor([torch.inf])])
    cdf = torch.distributions.Normal(mean, std).cdf(edges)
    probabilities = (cdf[1:] - cdf[:-1]).clamp(min=0)
    return (probabilities / probabilities.sum()).float()


def snr_weights(scheduler: DDPMScheduler, timesteps: torch.Tensor, snr_gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023, arXiv:2303.09556, eq. (7)), (B,).

    With SNR(t) = a_t / (1 - a_t), the weight on the x_0 loss is min(SNR, gamma); expressed on the
    target the UNet predicts it becomes min(SNR, gamma) / SNR for eps, min(SNR, gamma) / (SNR + 1)
    for v, and min(SNR, gamma) for x_0.
    """
    snr = compute_snr(scheduler, timesteps)  # (B,)
    clipped = torch.clamp(snr, max=snr_gamma)
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return clipped / snr
    if prediction_type == "v_prediction":
        return clipped / (snr + 1)
    return clipped


def diffusion_loss(prediction: torch.Tensor, target: torch.Tensor, scheduler: DDPMScheduler,
                   timesteps: torch.Tensor, snr_gamma: float | None = None) -> torch.Tensor:
    """Mean squared error of the UNet output, per sample weighted by min-SNR when `snr_gamma` is set.

    Args:
        prediction, target: (B, C, H, W).
        timesteps: (B,), needed for the weights.
        snr_gamma: the gamma of min-SNR weighting, or None for the plain "simple" loss (eq. (14) of Ho et al.).

    Returns:
        A scalar loss (computed in float32 even under mixed precision).
    """
    per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))  # (B,)
    if snr_gamma is None:
        return per_sample.mean()
    return (per_sample * snr_weights(scheduler, timesteps, snr_gamma)).mean()


def denoising_loss(unet: UNet2DModel, scheduler: DDPMScheduler, clean: torch.Tensor, noise: torch.Tensor,
                   timesteps: torch.Tensor, class_labels: torch.Tensor | None = None, snr_gamma: float | None = None,
                   autocast: contextlib.AbstractContextManager | None = None) -> torch.Tensor:
    """The loss of one batch, as training and validation compute it: noise x_0 to x_t, predict, compare.

    Args:
        unet: the denoiser.
        scheduler: the forward process (its `add_noise`, eq. (4) of Ho et al. 2020) and prediction type.
        clean: x_0 (B, C, H, W) in [-1, 1].
        noise: eps (B, C, H, W).
        timesteps: t (B,).
        class_labels: (B,) for a class-conditional UNet (the null class where the label is dropped), or None.
        snr_gamma: min-SNR weighting, or None for the plain loss.
        autocast: the context the UNet's forward pass runs in (mixed precision); none by default.

    Returns:
        The scalar loss, in float32.
    """
    noisy = scheduler.add_noise(clean, noise, timesteps)  # x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps
    with autocast or contextlib.nullcontext():
        prediction = unet(noisy, timesteps, class_labels=class_labels).sample
    return diffusion_loss(prediction, training_target(scheduler, clean, noise, timesteps), scheduler, timesteps,
                          snr_gamma)
