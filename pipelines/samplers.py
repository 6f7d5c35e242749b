"""The samplers (diffusers schedulers) every command offers, each with its usual number of steps.

`SAMPLERS` is the one registry: `pipelines.sampling.draw`, `pipelines.generate`, the web demo, `python -m
evaluation` and the benchmarks take their choices, names and default step counts from it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from diffusers import DDIMScheduler, DDPMScheduler, DiffusionPipeline, DPMSolverMultistepScheduler, LCMScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

# DPM-Solver++ steps in lambda(t) = log(alpha_t / sigma_t). The cosine schedule caps its last betas at 0.999, so
# alpha_T is nearly 0 and lambda_T -> -inf: the first data estimate x0 = (x_T - sigma_T eps) / alpha_T is then
# amplified noise, and a 20-step run stays saturated and speckled. Clipping lambda at -5.1 (diffusers'
# `lambda_min_clipped`, the value it documents for squaredcos_cap_v2) starts the solver where alpha_t is usable;
# measured on a class-conditional glyphs model it cut the mean squared distance to DDPM-1000 from 0.20 to 0.17.
COSINE_LAMBDA_MIN = -5.1


def _dpm_solver(algorithm: str) -> Callable[[dict], DPMSolverMultistepScheduler]:
    """A builder of multistep DPM-Solver++ (deterministic, or its SDE variant), lambda clipped for cosine betas."""

    def build(config) -> DPMSolverMultistepScheduler:
        clip = COSINE_LAMBDA_MIN if config.get("beta_schedule") == "squaredcos_cap_v2" else float("-inf")
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type=algorithm, lambda_min_clipped=clip)

    return build


# What a student's sampler keeps of another scheduler's config: the noise schedule, the prediction type, and a
# student's own steps and boundary scaling (the other samplers' settings mean nothing to it).
CONSISTENCY_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
                    "prediction_type", "original_inference_steps", "timestep_scaling")


def _consistency(config) -> LCMScheduler:
    """Multistep consistency sampling (Song et al. 2023, arXiv:2303.01469, Algorithm 1), as diffusers'
    `LCMScheduler` does it: x0 = f(x_t, t), then fresh noise to the next timestep. Predictions are clipped to the
    image range [-1, 1], where the student's targets lie."""
    return LCMScheduler(**{key: config[key] for key in CONSISTENCY_KEYS if key in config}, clip_sample=True)


@dataclass(frozen=True)
class Sampler:
    """One entry of `SAMPLERS`.

    Args:
        title: the name people read (the demo's menu, tables).
        build: scheduler config -> the sampler on that noise schedule and prediction type.
        num_inference_steps: its usual step count, the default wherever it is picked.
        algorithm_type: for DPM-Solver++, which variant (to recognise a saved scheduler).
        for_students: it samples distilled students (`python -m pipelines.distill`) and only them; a student
            predicts where the teacher's ODE ends, which the other samplers do not expect.
    """

    title: str
    build: Callable[[dict], SchedulerMixin]
    num_inference_steps: int
    algorithm_type: str | None = None
    for_students: bool = False

    @functools.cached_property
    def scheduler_class(self) -> type:
        """The diffusers class this sampler builds (found by building it once on a default noise schedule)."""
        return type(self.build(DDPMScheduler().config))

    def matches(self, scheduler: SchedulerMixin) -> bool:
        """Whether `scheduler` is this sampler (its class, and its variant for DPM-Solver++)."""
        if type(scheduler) is not self.scheduler_class:
            return False
        return self.algorithm_type is None or scheduler.config.get("algorithm_type") == self.algorithm_type


# Ancestral DDPM (Ho et al. 2020, arXiv:2006.11239), deterministic DDIM (Song et al. 2021, arXiv:2010.02502), and
# second-order multistep DPM-Solver++, deterministic or in its stochastic SDE form (Lu et al. 2022,
# arXiv:2211.01095). Each runs in stock `DDPMPipeline`, which passes a generator to `step` and never calls
# `scale_model_input` (UniPC, whose `step` takes no generator, does not). The step counts are where each reaches
# its quality on our models (`python -m benchmarks.sampler_quality`, docs/benchmarks.md, "Samplers"): ancestral
# DDPM wants its full schedule, DDIM ~50, deterministic DPM-Solver++ ~20 and its SDE form 10.
SAMPLERS: dict[str, Sampler] = {
    "ddpm": Sampler("DDPM", DDPMScheduler.from_config, 1000),
    "ddim": Sampler("DDIM", DDIMScheduler.from_config, 50),
    "dpm++": Sampler("DPM-Solver++", _dpm_solver("dpmsolver++"), 20, "dpmsolver++"),
    "dpm++sde": Sampler("SDE-DPM-Solver++", _dpm_solver("sde-dpmsolver++"), 10, "sde-dpmsolver++"),
    # A student's usual steps are its own (1, 2 or 4, saved as the scheduler's `original_inference_steps`);
    # 2 is the count students are distilled for by default.
    "consistency": Sampler("Consistency (distilled student)", _consistency, 2, for_students=True),
}
# The sampler saved with every model, chosen by quality per second (`python -m benchmarks.sampler_quality`,
# docs/benchmarks.md): on the 20-minute MNIST model, SDE-DPM-Solver++ with 10 steps drew 1,000 samples in 14 s
# at a Fréchet distance of 6.6 and 76.6% recognisable, against 30 s, 8.2 and 71.0% for deterministic DPM-Solver++
# with 20; its fresh noise at each step corrects part of a briefly trained model's errors, as DDPM's does.
DEFAULT_SAMPLER = "dpm++sde"


def check_sampler(name: str) -> Sampler:
    """The entry `name` of `SAMPLERS`.

    Raises:
        ValueError: one line naming the choices.
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def build_sampler(name: str, config) -> SchedulerMixin:
    """The sampler `name` (a key of `SAMPLERS`) on the noise schedule of `config` (any diffusers scheduler config)."""
    return check_sampler(name).build(config)


def fast_sampler(config) -> SchedulerMixin:
    """The default sampler, saved with every model: `DEFAULT_SAMPLER` (multistep SDE-DPM-Solver++) on the noise
    schedule described by `config` (any diffusers scheduler config), with lambda clipped for the cosine schedule."""
    return build_sampler(DEFAULT_SAMPLER, config)


def sampler_name(scheduler: SchedulerMixin) -> str | None:
    """The key of `SAMPLERS` that `scheduler` is (e.g. a saved model's), or None for another scheduler."""
    return next((name for name, sampler in SAMPLERS.items() if sampler.matches(scheduler)), None)


def is_student(pipeline: DiffusionPipeline) -> bool:
    """Whether the pipeline is a distilled few-step student (saved with the student sampler)."""
    return isinstance(pipeline.scheduler, LCMScheduler)


def samplers_for(pipeline: DiffusionPipeline) -> list[str]:
    """The keys of `SAMPLERS` this model samples with: the student sampler for a student, the others otherwise."""
    student = is_student(pipeline)
    return [name for name, sampler in SAMPLERS.items() if sampler.for_students == student]


def check_sampler_for(pipeline: DiffusionPipeline, name: str) -> None:
    """Refuse a sampler the model cannot take.

    Raises:
        ValueError: one line, for an unknown name, a teacher's sampler asked of a student or the student's of a
            teacher.
    """
    if name not in samplers_for(pipeline):
        check_sampler(name)
        if is_student(pipeline):
            raise ValueError(f"--sampler {name}: this model is a distilled student, which samples only with its own "
                             "few-step sampler (--sampler consistency, or no --sampler)")
        raise ValueError(f"--sampler {name}: only distilled students (python -m pipelines.distill) sample with it; "
                         f"this model takes {', '.join(samplers_for(pipeline))}")


def use_sampler(pipeline: DiffusionPipeline, name: str) -> None:
    """Replace `pipeline.scheduler` by the sampler `name` (a key of `SAMPLERS`) with the same noise schedule.

    Raises:
        ValueError: from `check_sampler_for`.
    """
    check_sampler_for(pipeline, name)
    pipeline.scheduler = build_sampler(name, pipeline.scheduler.config)
