"""The samplers (diffusers schedulers) offered by the CLI and compared by `benchmarks/sampling.py`."""

from diffusers import DDIMScheduler, DDPMScheduler, DiffusionPipeline, DPMSolverMultistepScheduler

# Name -> scheduler class. Each is built from the saved scheduler's config, so all share the training noise
# schedule and prediction type: ancestral DDPM (Ho et al. 2020, arXiv:2006.11239), deterministic DDIM (Song et
# al. 2021, arXiv:2010.02502) and second-order multistep DPM-Solver++ (Lu et al. 2022, arXiv:2211.01095).
SAMPLERS = {
    "ddpm": DDPMScheduler,
    "ddim": DDIMScheduler,
    "dpm++": DPMSolverMultistepScheduler,
}


def use_sampler(pipeline: DiffusionPipeline, name: str) -> None:
    """Replace `pipeline.scheduler` by the sampler `name` (a key of `SAMPLERS`) with the same noise schedule."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    pipeline.scheduler = SAMPLERS[name].from_config(pipeline.scheduler.config)
