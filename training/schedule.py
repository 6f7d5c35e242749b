"""The learning-rate schedule: diffusers' shapes, decayed over the wall-clock budget when there is one.

With `--max_train_minutes` the last step is not known in advance, so a schedule counted in steps alone
would be cut off at full height. Here the decay is counted in whichever runs out first, steps or time:
after the warm-up (in steps), a schedule of N steps is evaluated at step
`max(step, warmup + f * (N - warmup))`, where f is the share of the time budget used. A cosine schedule
then reaches zero as the budget ends (measured in docs/time_to_quality.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers.optimization import get_scheduler
from torch.optim.lr_scheduler import LambdaLR

from training.config import TrainConfig

# Shapes that do not decay, for which the budget changes nothing.
CONSTANT_SCHEDULES = ("constant", "constant_with_warmup")


def build_lr_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, max_train_steps: int,
                       budget_used: Callable[[], float]) -> LambdaLR:
    """diffusers' `--lr_scheduler` shape, counted in optimizer steps or in the share of the time budget.

    Args:
        cfg (`TrainConfig`): `lr_scheduler`, `lr_warmup_steps` and `max_train_minutes`.
        optimizer (`torch.optim.Optimizer`): the optimizer whose learning rate is scheduled.
        max_train_steps (`int`): the step cap N of the run.
        budget_used (`Callable[[], float]`): the share of `--max_train_minutes` used so far, in [0, 1]; read
            at each step (the trainer updates it on all processes alike, so their rates agree).

    Returns:
        `LambdaLR`: stepped once per optimizer step.
    """
    schedule = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.lr_warmup_steps,
                             num_training_steps=max_train_steps)
    if cfg.max_train_minutes is None or cfg.lr_scheduler in CONSTANT_SCHEDULES:
        return schedule
    shape, warmup = schedule.lr_lambdas[0], cfg.lr_warmup_steps

    def by_steps_or_time(step: int) -> float:
        if step < warmup:
            return shape(step)
        by_time = warmup + min(1.0, budget_used()) * (max_train_steps - warmup)
        return shape(min(max(step, by_time), max_train_steps))

    return LambdaLR(optimizer, by_steps_or_time)
