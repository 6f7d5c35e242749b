"""Faults met during training, each turned into a stop with one line: a diverged run (non-finite loss,
gradients or weights), before anything non-finite is applied or saved, and a save that fails (a full disk).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from sharing import first_line


class TrainingFault(RuntimeError):
    """A run that cannot go on; the message is one line saying what happened, what was kept and what to do."""


class TrainingDiverged(TrainingFault):
    """The loss, the gradients or the weights stopped being finite; the message says where and what to try."""


class SaveFailed(TrainingFault):
    """Writing a checkpoint or the pipeline failed (a full disk, no permission); what was saved before is intact."""


def save_failed_message(what: str, path, error: BaseException | None) -> str:
    """One line naming the path, the reason, and what is left to resume from."""
    reason = f"{type(error).__name__}: {first_line(error)}" if error is not None else "another process failed to write"
    return (f"could not write {what} {path} ({reason}). Nothing half-written was left; the checkpoints written "
            "before it are intact: free some space (or fix the permission) and run again with "
            "--resume_from_checkpoint latest.")


def diverged_message(step: int, what: str, learning_rate: float, mixed_precision: str, kept: str) -> str:
    """One line: the step, what went non-finite, what was kept from it, and what to try."""
    hints = [f"a lower --learning_rate (this run: {learning_rate:g})"]
    if mixed_precision != "no":
        hints.append("--mixed_precision no")
    return (f"training diverged at step {step}: {what}. {kept}; any checkpoint written before it is intact. "
            f"Try {' or '.join(hints)}.")


def check_step(loss: torch.Tensor, grad_norm: torch.Tensor | None, *, step: int, learning_rate: float,
               mixed_precision: str) -> None:
    """Stop before an optimizer step whose loss or gradient norm is not finite.

    Under fp16 an infinite gradient norm is the loss scaler's business (it skips that step and lowers the
    scale), so only the loss is checked there. Elsewhere the gradient norm is the same on every process
    (gradients are averaged before it is taken), so every process stops at the same step.

    Raises:
        `TrainingDiverged`: with `diverged_message`.
    """
    if not torch.isfinite(loss.detach()).all():
        what = f"the loss is {loss.detach().float().mean().item()}"
    elif grad_norm is not None and mixed_precision != "fp16" and not torch.isfinite(grad_norm).all():
        what = f"the gradient norm is {grad_norm.float().item()}"
    else:
        return
    raise TrainingDiverged(diverged_message(step, what, learning_rate, mixed_precision,
                                            "The update was not applied and nothing was saved"))


def check_weights(parameters: Iterable[torch.Tensor], *, step: int, learning_rate: float,
                  mixed_precision: str) -> None:
    """Refuse to save weights that are not all finite (a finite but huge update can still overflow them).

    Raises:
        `TrainingDiverged`: with `diverged_message`.
    """
    bad = sum(int(not torch.isfinite(p.detach()).all()) for p in parameters)
    if bad:
        raise TrainingDiverged(diverged_message(step, f"{bad} weight tensor(s) are not finite", learning_rate,
                                                mixed_precision, "They were not saved"))
