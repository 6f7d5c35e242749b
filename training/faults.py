"""Faults met during training, each turned into a stop with one line: a diverged run (non-finite loss,
gradients or weights), before anything non-finite is applied or saved; a save that fails (a full disk); and
SIGTERM or SIGINT, which stop the run after a checkpoint (docs/faults.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

import torch

from sharing import first_line


class TrainingFault(RuntimeError):
    """A run that cannot go on; the message is one line saying what happened, what was kept and what to do."""


class TrainingDiverged(TrainingFault):
    """The loss, the gradients or the weights stopped being finite; the message says where and what to try."""


class SaveFailed(TrainingFault):
    """Writing a checkpoint or the pipeline failed (a full disk, no permission); what was saved before is intact."""


# What a failed write raises: Python's own writes an OSError (ENOSPC, EDQUOT, EACCES), torch.save's C++ stream a
# RuntimeError ("basic_ios::clear: iostream error", "PytorchStreamWriter failed writing file") and safetensors a
# SafetensorError. Callers catch these around a write only, so a RuntimeError there is a failed write.
try:
    from safetensors import SafetensorError
except ImportError:  # older safetensors without the exported name
    SafetensorError = OSError
WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)


def free_space(path) -> str:
    """The free space of the file system holding `path` (or its nearest existing parent), e.g. "1.2 MB free"."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "free space unknown"
    value, unit = float(free), "bytes"
    for larger in ("KB", "MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, larger
    return f"{value:.0f} bytes free" if unit == "bytes" else f"{value:.1f} {unit} free"


def save_failed_message(what: str, path, error: BaseException | None, last_good=None) -> str:
    """One line naming the path, the reason, the free space there, and the checkpoint left to resume from."""
    reason = f"{type(error).__name__}: {first_line(error)}" if error is not None else "another process failed to write"
    if last_good is not None:
        resume = (f"the last good checkpoint is {last_good}: free some space (or fix the permission) and run again "
                  "with --resume_from_checkpoint latest.")
    else:
        resume = "there is no earlier checkpoint: free some space (or fix the permission) and run again."
    return f"could not write {what} {path} ({reason}; {free_space(path)}). Nothing half-written was left; {resume}"


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


class Interrupted(TrainingFault):
    """SIGTERM or SIGINT stopped the run after a checkpoint was written; the message says how to resume."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.exit_code = 128 + signal_number  # the shell's convention for "ended by this signal"


@contextlib.contextmanager
def exit_on_fault(prog: str, usage_errors: tuple[type[Exception], ...] = ()):
    """Run the body; a usage error (bad settings or data) ends the command with one line and exit code 2, a
    stop by a signal with its message and 128 + the signal, any other `TrainingFault` with one line and 1."""
    try:
        yield
    except usage_errors as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as err:  # a checkpoint was written: not an error, but the run did not finish
        if os.environ.get("LOCAL_RANK", "0") == "0":  # once per machine, not once per process
            print(f"{prog}: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except TrainingFault as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(1)


class StopSignals:
    """Turns SIGTERM and SIGINT (Ctrl-C) into a request to stop at the next optimizer step; a second one exits.

    Preemption (spot instances, Slurm, notebook hosts) sends SIGTERM and waits a little before killing; the
    training loop checks `requested` after each optimizer step, writes a checkpoint and stops. A second signal
    ends the process at once, for a user who does not want to wait for the checkpoint.

    Under `accelerate launch` with one process the launcher does not pass signals on to the training process,
    so a SIGTERM sent to it would leave the training running, orphaned. There the training process asks Linux to
    send it SIGUSR2 when its parent dies (`prctl(PR_SET_PDEATHSIG)`), which counts as the same request and never
    as a second signal (Ctrl-C reaches both, and the launcher dies of it). torchrun, used for several processes,
    passes SIGTERM on itself. The `prctl` call is written by hand: no maintained library wraps it.
    """

    def __init__(self):
        self.requested: str | None = None  # the name of the first signal received
        self.signal_number = int(signal.SIGTERM)  # its number, for the exit code
        self._user_signals = 0
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        """Handle the signals from now on; outside the main thread (where Python allows no handlers) do nothing."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signal_number in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
            self._previous[signal_number] = signal.signal(signal_number, self._handle)
        if os.environ.get("ACCELERATE_USE_CPU") is not None and "TORCHELASTIC_RUN_ID" not in os.environ:
            _die_with_parent(signal.SIGUSR2)  # accelerate's one-process launcher is our parent

    def uninstall(self) -> None:
        """Put the previous handlers back."""
        for signal_number, handler in self._previous.items():
            signal.signal(signal_number, handler)
        self._previous.clear()

    def _handle(self, signal_number: int, frame) -> None:
        if signal_number == signal.SIGUSR2:  # the launcher died: a request to stop, never "the second signal"
            name, number = "SIGTERM (to the launcher)", signal.SIGTERM
        else:
            if self._user_signals:
                os._exit(128 + signal_number)  # the second signal: stop now, without a checkpoint
            self._user_signals += 1
            name, number = signal.Signals(signal_number).name, signal_number
        if self.requested is None:
            self.requested, self.signal_number = name, int(number)
            if os.environ.get("LOCAL_RANK", "0") == "0":  # once per machine, not once per process
                print(f"\n{name} received: stopping after this step with a checkpoint (send it again to stop at once).",
                      file=sys.stderr, flush=True)


def _die_with_parent(signal_number: int) -> None:
    """Ask Linux to send `signal_number` to this process when its parent exits (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal_number), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no libc prctl (e.g. a static or exotic runtime): keep the default
        return
