"""Every model a training run writes, in one place: the final pipeline, the best by Fréchet distance, the
snapshots at --snapshot_minutes, and the checkpoints to resume from.

Each pipeline is written by `pipelines.save_pipeline` (staged, `model_index.json` moved in last, so a folder never
looks complete while half-written) with a model card built by `card_info`; each checkpoint by
`training.checkpointing.save_checkpoint`.
"""

from __future__ import annotations

import json
from pathlib import Path

import PIL.Image
from accelerate import Accelerator
from diffusers import DDPMScheduler, UNet2DModel

from pipelines import save_pipeline
from training.checkpointing import TrainingProgress, list_checkpoints, save_checkpoint
from training.faults import WRITE_ERRORS, SaveFailed, save_failed_message
from training.plots import plot_loss_curve, write_loss_csv

LOSS_CSV, LOSS_PNG = "losses.csv", "loss_curve.png"
# The folder of the best model by Fréchet distance (`--keep_best_by_fid`), inside output_dir.
BEST_DIR = "best"
# The folder of the models saved at --snapshot_minutes, inside output_dir.
SNAPSHOT_DIR = "snapshots"
# Inside each snapshot: the step and training time it was saved at.
SNAPSHOT_PROGRESS = "progress.json"


class RunSaver:
    """Writes the models of one run under `cfg.output_dir`.

    Args:
        cfg: the run's `TrainConfig` (recorded in every card).
        noise_scheduler: the training forward process (the saved sampler takes its schedule).
        class_names: for a class-conditional model, the names by class index.
        dataset: the data set's description, for the cards.
    """

    def __init__(self, cfg, noise_scheduler: DDPMScheduler, class_names: list[str] | None, dataset: str):
        self.cfg, self.noise_scheduler, self.class_names, self.dataset = cfg, noise_scheduler, class_names, dataset
        self.output_dir = Path(cfg.output_dir)

    def card_info(self, progress: TrainingProgress, **extra) -> dict:
        """What a model card says about the run: data, config, step and time (and e.g. the losses)."""
        return {"dataset": self.dataset, "config": self.cfg.to_dict(), "global_step": progress.global_step,
                "training_time_s": round(progress.training_time_s, 1), **extra}

    def pipeline(self, folder: Path, unet: UNet2DModel, card_info: dict,
                 sample_grid: PIL.Image.Image | None = None) -> None:
        """`unet` (moved to the CPU) as a pipeline folder with its card."""
        save_pipeline(folder, unet.cpu(), self.noise_scheduler, class_names=self.class_names, card_info=card_info,
                      sample_grid=sample_grid)

    def final(self, unet: UNet2DModel, progress: TrainingProgress, sample_grid: PIL.Image.Image,
              val_loss: float) -> None:
        """The run's result in output_dir: the pipeline with its card and grid, and the loss history as CSV and
        plot.

        Raises:
            SaveFailed: a write failed (a full disk); one line naming the folder and the last good checkpoint.
        """
        history = progress.history
        train_loss = next((row["train_loss"] for row in reversed(history) if row.get("train_loss") is not None), None)
        card_info = self.card_info(progress, train_loss=train_loss, val_loss=val_loss)
        try:
            self.pipeline(self.output_dir, unet, card_info, sample_grid)
            write_loss_csv(history, self.output_dir / LOSS_CSV)
            plot_loss_curve(history, self.output_dir / LOSS_PNG)
        except WRITE_ERRORS as err:
            checkpoints = list_checkpoints(self.output_dir)
            raise SaveFailed(save_failed_message("the pipeline to", self.output_dir, err,
                                                 checkpoints[-1] if checkpoints else None)) from err

    def best(self, unet: UNet2DModel, progress: TrainingProgress) -> None:
        """The model with the lowest Fréchet distance so far, in output_dir/best."""
        self.pipeline(self.output_dir / BEST_DIR, unet, self.card_info(progress))

    def snapshots(self, unet: UNet2DModel, progress: TrainingProgress, minutes: list[float]) -> None:
        """The model under snapshots/<m>min/ for each of `minutes`, with the step and time it was saved at (for
        quality-against-time curves; benchmarks/time_to_quality.py)."""
        state = {"global_step": progress.global_step, "training_time_s": round(progress.training_time_s, 1)}
        for minute in minutes:
            folder = self.output_dir / SNAPSHOT_DIR / f"{minute:g}min"
            self.pipeline(folder, unet, self.card_info(progress))
            (folder / SNAPSHOT_PROGRESS).write_text(json.dumps(state) + "\n", encoding="utf-8")

    def checkpoint(self, accelerator: Accelerator, step: int, process_files: dict | None) -> Path:
        """The full training state at `step` (rotated to --checkpoints_total_limit), to resume from."""
        return save_checkpoint(accelerator, self.output_dir, step, self.cfg.checkpoints_total_limit, process_files)

    def push_ignore_patterns(self) -> list[str]:
        """What training keeps beside the pipeline and a push leaves out."""
        return [".checkpoint-*", f"{self.cfg.logging_dir}/", "samples/", f"{BEST_DIR}/", f"{SNAPSHOT_DIR}/"]
