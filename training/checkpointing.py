"""Checkpoints: `checkpoint-<step>/` folders holding accelerate's full state, rotated, written atomically.

`accelerator.save_state` writes the model, the optimizer, every process's RNG states and the objects
registered with `accelerator.register_for_checkpointing` (here the LR schedule, the EMA weights and
the `TrainingProgress`). It writes into `.checkpoint-<step>.partial` first; the main process renames
the folder only once every process has finished, so a kill at any moment leaves either a complete
newest checkpoint or none. Rotation deletes the oldest only after the new one is in place.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator

from sharing import first_line
from training.config import ConfigError
from training.faults import WRITE_ERRORS, SaveFailed, save_failed_message

CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
PARTIAL_SUFFIX = ".partial"


class TrainingProgress:
    """Where training stands: the optimizer step, the loss history and the training time so far.

    Registered for checkpointing, so a resumed run continues the step count, the CSV and the clock.
    """

    def __init__(self):
        self.global_step = 0
        self.training_time_s = 0.0
        self.history: list[dict] = []  # rows of {"step", "train_loss", "val_loss", "fid", "lr", "time_s"}
        self.best_fid: float | None = None  # the lowest Fréchet distance so far (`--keep_best_by_fid`)
        self.snapshots_saved: list[float] = []  # the `--snapshot_minutes` already saved
        self.layout: dict | None = None  # how the data was split across processes (`data_layout`)

    def state_dict(self) -> dict:
        return {"global_step": self.global_step, "training_time_s": self.training_time_s,
                "history": [dict(row) for row in self.history], "best_fid": self.best_fid,
                "snapshots_saved": list(self.snapshots_saved), "layout": self.layout}

    def load_state_dict(self, state: dict) -> None:
        self.global_step = int(state["global_step"])
        self.training_time_s = float(state["training_time_s"])
        self.history = [dict(row) for row in state["history"]]
        self.best_fid = state.get("best_fid")  # absent in checkpoints written before the check existed
        self.snapshots_saved = [float(m) for m in state.get("snapshots_saved", [])]
        self.layout = state.get("layout")  # absent in checkpoints written before process counts were checked


def data_layout(num_processes: int, train_batch_size: int, gradient_accumulation_steps: int,
                streaming: bool) -> dict:
    """What a run's place in its data depends on, besides the step: recorded in every checkpoint."""
    return {"num_processes": num_processes, "train_batch_size": train_batch_size,
            "gradient_accumulation_steps": gradient_accumulation_steps, "streaming": streaming}


def check_resume_layout(saved: dict | None, current: dict, checkpoint: Path) -> None:
    """Refuse a resume whose data split differs from the checkpoint's in a way that would lose its place.

    A map-style dataset is read in global batches (processes x batch), each epoch in an order drawn from the
    seed, and the training draws follow the global batch too (training/draws.py): any number of processes may
    resume if the global batch and the accumulation are the same. A stream is read per process from a saved
    position, so it resumes only with the same processes and batch.

    Raises:
        ConfigError: the layouts differ in a way the run cannot resume from.
    """
    if saved is None:
        return
    def describe(layout: dict) -> str:
        processes = layout["num_processes"]
        return (f"{processes} process{'es' if processes > 1 else ''} x --train_batch_size {layout['train_batch_size']}"
                f" x --gradient_accumulation_steps {layout['gradient_accumulation_steps']}")
    def global_batch(layout: dict) -> tuple[int, int]:
        return layout["num_processes"] * layout["train_batch_size"], layout["gradient_accumulation_steps"]
    if saved.get("streaming") != current["streaming"]:
        raise ConfigError(f"--resume_from_checkpoint {checkpoint}: it was written by a "
                          f"{'streaming' if saved.get('streaming') else 'non-streaming'} run; resume it with "
                          f"{'--streaming' if saved.get('streaming') else 'no --streaming'} as before.")
    same = saved == current if current["streaming"] else global_batch(saved) == global_batch(current)
    if not same:
        need = (
            "the same processes and batch size (each process's place in the stream is saved)"
            if current["streaming"]
            else f"a global batch of {global_batch(saved)[0]} (processes x --train_batch_size) and the same "
            "accumulation"
        )
        raise ConfigError(f"--resume_from_checkpoint {checkpoint}: it was written by {describe(saved)}, this run has "
                          f"{describe(current)}; resume with {need}, or start a new --output_dir.")


def _all_processes(accelerator: Accelerator, succeeded: bool) -> bool:
    """Whether every process succeeded at a step (a collective: every process must call it)."""
    flags = accelerator.gather(torch.tensor([1.0 if succeeded else 0.0], device=accelerator.device))
    return bool(flags.min().item() == 1.0)


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete `checkpoint-<step>` folders in `output_dir`, oldest (lowest step) first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := CHECKPOINT_NAME.match(p.name))]
    return [path for _, path in sorted(found)]


def resolve_resume(output_dir: str | Path, resume_from: str | None) -> Path | None:
    """The checkpoint `--resume_from_checkpoint` names: a folder, or `latest` (None if there is none yet).

    Raises:
        ConfigError: a named folder does not exist.
    """
    if resume_from is None:
        return None
    if resume_from == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume_from)
    if not path.is_dir():
        path = Path(output_dir) / resume_from
    if not path.is_dir():
        raise ConfigError(f"--resume_from_checkpoint {resume_from}: no such checkpoint folder; "
                          f"pass one of {[p.name for p in list_checkpoints(output_dir)] or 'none yet'} or `latest`.")
    return path


def remove_partial_checkpoints(output_dir: str | Path) -> None:
    """Delete the leftovers of checkpoints whose writing was interrupted (call on the main process)."""
    folder = Path(output_dir)
    if folder.is_dir():
        for partial in folder.glob(f".checkpoint-*{PARTIAL_SUFFIX}"):
            shutil.rmtree(partial, ignore_errors=True)


def save_checkpoint(accelerator: Accelerator, output_dir: str | Path, step: int, total_limit: int | None,
                    process_files: dict[str, dict] | None = None) -> Path:
    """Write `output_dir/checkpoint-<step>` (every process must call this) and rotate old ones.

    Args:
        accelerator: saves the prepared model, optimizer, RNG states and registered objects.
        output_dir: the run's output folder.
        step: the optimizer step, used in the folder name.
        total_limit: keep at most this many checkpoints (None keeps all).
        process_files: this process's own state beside accelerate's (which saves registered objects from the
            main process only), each written as `<name>_<process index>.json`.

    Returns:
        The checkpoint folder.
    """
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{step}"
    partial = output_dir / f".checkpoint-{step}{PARTIAL_SUFFIX}"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(partial))
        for name, state in (process_files or {}).items():
            (partial / f"{name}_{accelerator.process_index}.json").write_text(
                json.dumps(state) + "\n", encoding="utf-8"
            )
        error = None
    except WRITE_ERRORS as err:  # a full disk (ENOSPC), a quota, a lost permission
        error = err
    if not _all_processes(accelerator, error is None):
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        previous = list_checkpoints(output_dir)
        raise SaveFailed(save_failed_message("checkpoint", final, error, previous[-1] if previous else None)) from error
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        if total_limit is not None:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def read_process_file(checkpoint: Path, name: str, process_index: int) -> dict:
    """This process's `<name>_<process index>.json` from `save_checkpoint`'s `process_files`.

    Raises:
        ConfigError: the file is missing or damaged.
    """
    path = Path(checkpoint) / f"{name}_{process_index}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"--resume_from_checkpoint {checkpoint}: {path.name} is missing or damaged "
                          f"({first_line(err)[:200]}); resume from another checkpoint.") from err


def load_checkpoint(accelerator: Accelerator, checkpoint: Path) -> None:
    """Restore everything `save_checkpoint` wrote (model, optimizer, RNG, EMA, LR schedule, progress).

    Raises:
        ConfigError: the checkpoint is damaged (a truncated or corrupt file) or does not fit this model or config.
    """
    try:
        accelerator.load_state(str(checkpoint))
    except Exception as err:  # safetensors, torch.load, pickle and accelerate each raise their own types
        raise ConfigError(f"--resume_from_checkpoint {checkpoint}: it does not load: it is damaged or does not match "
                          f"this run's model or settings ({type(err).__name__}: {first_line(err)[:200]}).") from err




def restore_checkpoint(accelerator: Accelerator, output_dir: str | Path, resume_from: str | None) -> Path | None:
    """Load the checkpoint `--resume_from_checkpoint` names; for `latest`, the newest one that loads.

    A newest checkpoint that does not load (a file truncated by a crash or a full disk) is reported in one line
    and the one before it is tried, on every process alike; a named one that does not load is an error.

    Args:
        accelerator: restores the prepared objects and those registered for checkpointing.
        output_dir: the run's output folder.
        resume_from: `None`, `"latest"`, or a checkpoint folder (absolute, or a name inside `output_dir`).

    Returns:
        The checkpoint loaded, or `None` when there is none to resume from.

    Raises:
        ConfigError: a named checkpoint is missing or does not load, or no checkpoint of `output_dir` loads.
    """
    if resume_from != "latest":
        checkpoint = resolve_resume(output_dir, resume_from)
        if checkpoint is not None:
            load_checkpoint(accelerator, checkpoint)
        return checkpoint
    candidates = list(reversed(list_checkpoints(output_dir)))
    for index, checkpoint in enumerate(candidates):
        try:
            load_checkpoint(accelerator, checkpoint)
            error = None
        except ConfigError as err:
            error = err
        if _all_processes(accelerator, error is None):  # a damaged per-process file fails only one
            return checkpoint
        reason = first_line(error.__cause__) if error is not None and error.__cause__ else "another process failed"
        following = f"trying {candidates[index + 1].name}" if index + 1 < len(candidates) else "none is left"
        accelerator.print(f"{checkpoint} does not load ({reason[:200]}); {following}.")
    if candidates:
        raise ConfigError(f"--resume_from_checkpoint latest: none of the {len(candidates)} checkpoints in {output_dir} "
                          "loads; start without --resume_from_checkpoint, or name a checkpoint folder that loads.")
    return None
