"""The training loop: AdamW + diffusers LR schedule + EMA under accelerate, with validation, sample
grids and checkpoints on a step schedule, and the final pipeline, loss CSV and curve at the end."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import ProjectConfiguration
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from data_prep.resolve import ResolvedDataset
from sharing import push_folder
from training.checkpointing import (
    TrainingProgress,
    check_resume_layout,
    data_layout,
    read_process_file,
    remove_partial_checkpoints,
    restore_checkpoint,
)
from training.config import ConfigError, TrainConfig
from training.data import (
    DecodedImages,
    EpochBatchSampler,
    IndexedBatches,
    TensorImages,
    cached_images,
    make_loader,
    random_hflip,
    to_model_range,
)
from training.draws import GlobalBatchDraws
from training.faults import Interrupted, StopSignals, check_step, check_weights
from training.losses import denoising_loss, immiscible_noise
from training.model import learning_rate
from training.sample_quality import FidCheck, load_eval_classifier
from training.saving import RunSaver
from training.schedule import build_lr_scheduler
from training.streaming import StreamedBatches, first_images
from training.threads import SlowdownWatch, default_cpu_threads
from training.timesteps import timestep_sampler
from training.validation import ValidationSet, log_grid, sample_grid, save_grid

# The train loss is averaged over this many optimizer steps before it is logged and written to the CSV;
# reading it every step would synchronise a GPU every step.
LOG_EVERY = 10
CONFIG_JSON = "training_config.json"
# Added to --seed for the generator of the training draws (training/draws.py).
DRAWS_SEED_OFFSET = 1_000_000_007
# The per-process checkpoint file with a process's place in a stream (`--streaming`).
STREAM_POSITION = "stream_position"
# Names in the trackers for history keys that are not losses.
TRACKER_NAMES = {"fid": "eval/fid"}


def multi_process_cpu() -> bool:
    """Several processes without a GPU (`accelerate launch --multi_gpu --num_processes 2` on a CPU machine):
    accelerate only sets up gloo data parallelism across them when told the run is on the CPU."""
    return int(os.environ.get("WORLD_SIZE", 1)) > 1 and not torch.cuda.is_available()


def make_state(cfg: TrainConfig) -> PartialState:
    """The processes of the run (before the Accelerator, whose precision is chosen with the model in hand),
    with this process's CPU threads set."""
    state = PartialState(cpu=multi_process_cpu())
    if state.device.type == "cpu":
        local_processes = max(1, state.num_processes // max(1, int(os.environ.get("ACCELERATE_NUM_MACHINES", 1))))
        torch.set_num_threads(cfg.num_threads or default_cpu_threads(local_processes))
    return state


def make_accelerator(cfg: TrainConfig, mixed_precision: str) -> Accelerator:
    """The run's Accelerator (mixed precision as resolved, accumulation, trackers).

    Raises:
        ConfigError: fp16 was asked for on a machine without a GPU.
    """
    if mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("--mixed_precision fp16 needs a GPU; use bf16 (or no) on a CPU.")
    output_dir = Path(cfg.output_dir)
    return Accelerator(
        cpu=multi_process_cpu(),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        mixed_precision=mixed_precision,
        log_with=None if cfg.logger == "none" else cfg.logger,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / cfg.logging_dir)),
    )


class LossWindow:
    """The train loss summed over the optimizer steps since the last log (on the device, read only when logged,
    so that a GPU is not synchronised every step), their count and their wall time."""

    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), device=device)
        self.reset()

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.steps, self.start = 0, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


class Trainer:
    """Owns the optimisation state of one run and runs it from the current step to the last.

    Args:
        cfg: the run's config.
        accelerator: from `make_accelerator`.
        unet: the freshly built model.
        noise_scheduler: the forward process.
        data: the resolved dataset.
        resolution: training image side.
        channels: image channels.
    """

    def __init__(self, cfg: TrainConfig, accelerator: Accelerator, unet: UNet2DModel,
                 noise_scheduler: DDPMScheduler, data: ResolvedDataset, resolution: int, channels: int):
        self.cfg, self.accelerator, self.noise_scheduler, self.data = cfg, accelerator, noise_scheduler, data
        self.output_dir = Path(cfg.output_dir)
        self.class_names = data.class_names if cfg.class_conditional else None
        self.null_class = len(self.class_names) if self.class_names else None
        extractor = None
        if cfg.eval_steps is not None:
            extractor = load_eval_classifier(cfg, data.class_names, accelerator.device)  # fails before any work

        self.batches = self._make_batches(resolution, channels)
        self.max_train_steps = cfg.max_train_steps or cfg.num_epochs * math.ceil(  # a stream has max_train_steps
            self.batches.sampler.batches_per_epoch / cfg.gradient_accumulation_steps)

        optimizer = torch.optim.AdamW(unet.parameters(), lr=learning_rate(cfg), betas=(cfg.adam_beta1, cfg.adam_beta2),
                                      weight_decay=cfg.adam_weight_decay, eps=cfg.adam_epsilon)
        # Share of --max_train_minutes used, agreed by all processes at each logging step (`_sync_budget`).
        self.budget_used = 0.0
        # Stepped by hand once per optimizer step (not through accelerator.prepare, which steps it once per
        # process), so warm-up and decay are counted in optimizer steps whatever the accumulation; with a
        # time budget the decay follows the budget (training/schedule.py).
        self.lr_scheduler = build_lr_scheduler(cfg, optimizer, self.max_train_steps, lambda: self.budget_used)
        self.unet, self.optimizer = accelerator.prepare(unet, optimizer)
        self.progress = TrainingProgress()
        # Noise, timesteps and label drops of the global batch, the same for any number of processes (a stream
        # apart from the per-process global RNG that set_seed seeded).
        self.draws = GlobalBatchDraws(cfg.seed + DRAWS_SEED_OFFSET, accelerator.device, accelerator.num_processes,
                                      accelerator.process_index)
        accelerator.register_for_checkpointing(self.lr_scheduler, self.progress, self.draws)
        self.sample_timesteps = timestep_sampler(cfg, noise_scheduler, accelerator.device)
        self.saver = RunSaver(cfg, noise_scheduler, self.class_names, data.description)
        self.ema = None
        if cfg.use_ema:
            self.ema = EMAModel(self.unet.parameters(), decay=cfg.ema_max_decay, use_ema_warmup=True,
                                inv_gamma=cfg.ema_inv_gamma, power=cfg.ema_power, model_cls=UNet2DModel,
                                model_config=accelerator.unwrap_model(self.unet).config)
            self.ema.to(accelerator.device)
            accelerator.register_for_checkpointing(self.ema)

        test_images, test_labels = self._test_images(resolution, channels)
        pick = torch.randperm(test_images.shape[0], generator=torch.Generator().manual_seed(0))
        pick = pick[: cfg.num_validation_images]
        self.validation = ValidationSet(test_images[pick], None if test_labels is None else test_labels[pick],
                                        cfg.ddpm_num_steps)
        self.fid_check = None
        if extractor is not None and accelerator.is_main_process:
            self.fid_check = FidCheck(extractor, test_images, cfg.eval_num_samples, cfg.eval_batch_size,
                                      cfg.num_inference_steps, cfg.seed)
        self.last_grid = None
        self.timed_out = False  # stopped by --max_train_minutes
        self.slowdown = SlowdownWatch()  # warns when other work takes the cores mid-run

    # ----- set-up helpers -----
    def _labels(self, split) -> torch.Tensor | None:
        if not self.data.label_column:
            return None
        return torch.as_tensor(split[self.data.label_column], dtype=torch.long)

    def _test_images(self, resolution: int, channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The test split as uint8 images (N, C, H, W) and labels; of a stream, the first records it needs."""
        cfg, data, split = self.cfg, self.data, self.data.splits["test"]
        if data.streaming:
            count = max(cfg.num_validation_images, cfg.eval_num_samples if cfg.eval_steps else 0)
            return first_images(split, data.image_column, data.label_column, count, resolution, channels,
                                cfg.center_crop)
        return cached_images(split, data.image_column, resolution, channels, cfg.center_crop), self._labels(split)

    def _make_batches(self, resolution: int, channels: int) -> IndexedBatches | StreamedBatches:
        cfg, accelerator, split = self.cfg, self.accelerator, self.data.splits["train"]
        if self.data.streaming:
            return StreamedBatches(split, self.data.image_column, self.data.label_column, resolution, channels,
                                   cfg.center_crop, cfg.train_batch_size, cfg.seed, cfg.shuffle_buffer_size,
                                   accelerator.num_processes, accelerator.process_index)
        sampler = EpochBatchSampler(len(split), cfg.train_batch_size, cfg.seed, accelerator.num_processes,
                                    accelerator.process_index)
        size_gb = len(split) * channels * resolution**2 / 2**30
        if size_gb <= cfg.max_in_memory_gb:
            with accelerator.main_process_first():  # one process decodes and caches, the others read the cache
                images = cached_images(split, self.data.image_column, resolution, channels, cfg.center_crop)
            labels = self._labels(split)
            # The whole uint8 set lives on the training device: a batch is one index, no host copies.
            dataset = TensorImages(images.to(accelerator.device),
                                   None if labels is None else labels.to(accelerator.device))
            workers = 0
        else:
            dataset = DecodedImages(split, self.data.image_column, self.data.label_column, resolution, channels,
                                    cfg.center_crop)
            workers = cfg.dataloader_num_workers
        # A private generator for the loader's worker seeds keeps the global RNG (noise, timesteps) identical
        # between an uninterrupted run and a resumed one.
        return IndexedBatches(make_loader(dataset, sampler, workers, generator=torch.Generator().manual_seed(cfg.seed)),
                              sampler)

    # ----- public steps -----
    def start(self) -> None:
        """Write the resolved config, start the trackers, and resume from a checkpoint if asked."""
        cfg, accelerator = self.cfg, self.accelerator
        if accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            remove_partial_checkpoints(self.output_dir)
            (self.output_dir / CONFIG_JSON).write_text(json.dumps(cfg.to_dict(), indent=2, ensure_ascii=False) + "\n",
                                                       encoding="utf-8")
        accelerator.init_trackers("train_ddpm", config={k: v if isinstance(v, (int, float, str, bool)) else str(v)
                                                       for k, v in cfg.to_dict().items()})
        checkpoint = restore_checkpoint(self.accelerator, self.output_dir, cfg.resume_from_checkpoint)
        layout = data_layout(accelerator.num_processes, cfg.train_batch_size, cfg.gradient_accumulation_steps,
                             self.data.streaming)
        if checkpoint is not None:
            check_resume_layout(self.progress.layout, layout, checkpoint)
            if self.data.streaming:
                self.batches.load_state_dict(read_process_file(checkpoint, STREAM_POSITION,
                                                               accelerator.process_index))
            if self.ema is not None:
                self.ema.to(accelerator.device)  # accelerate loads custom state onto the CPU
            accelerator.print(f"Resumed from {checkpoint} at step {self.progress.global_step}.")
        self.progress.layout = layout
        if cfg.max_train_minutes is not None:  # a resumed run goes on down the learning-rate schedule
            self.budget_used = self.progress.training_time_s / (60 * cfg.max_train_minutes)

    def train(self) -> None:
        """Optimise from `progress.global_step` to `max_train_steps`; SIGTERM or SIGINT stop it with a checkpoint.

        Raises:
            `Interrupted`: a signal stopped the run, after a checkpoint of the last step was written.
        """
        signals = StopSignals()
        signals.install()
        try:
            self._train(signals)
        finally:
            signals.uninstall()

    def _train(self, signals: StopSignals) -> None:
        """Optimizer steps to the last one, with logging, the periodic work and a stop on a signal."""
        progress, window = self.progress, LossWindow(self.accelerator.device)
        # closed on any exit, so an error's one line starts on a line of its own, not after the bar
        with self._progress_bar() as bar:
            if progress.global_step >= self.max_train_steps:
                return
            for images, labels in self.batches.from_step(progress.global_step * self.cfg.gradient_accumulation_steps):
                if not self._micro_step(images, labels, window):
                    continue  # still accumulating gradients
                step = progress.global_step
                if self.cfg.max_train_minutes is None:
                    bar.update(1)
                if step % LOG_EVERY == 0 or step == self.max_train_steps:
                    self._log(step, window, bar)
                self._periodic(step)
                if self._stop_requested(signals, step):
                    progress.training_time_s += window.elapsed()
                    bar.close()
                    self._stop_on_signal(signals, step)
                if step >= self.max_train_steps:
                    break

    def _micro_step(self, images: torch.Tensor, labels: torch.Tensor | None, window: LossWindow) -> bool:
        """Forward and backward of one micro-batch; at the end of an accumulation also the optimizer, learning
        rate and EMA steps. Returns whether an optimizer step was completed."""
        cfg, accelerator = self.cfg, self.accelerator
        with accelerator.accumulate(self.unet):
            loss = self._loss(images, labels)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                grad_norm = accelerator.clip_grad_norm_(self.unet.parameters(), cfg.max_grad_norm)
                check_step(loss, grad_norm, step=self.progress.global_step + 1, **self._fault_context())
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        window.loss_sum += loss.detach() / cfg.gradient_accumulation_steps
        if not accelerator.sync_gradients:
            return False
        if not accelerator.optimizer_step_was_skipped:
            self.lr_scheduler.step()
        if self.ema is not None:
            self.ema.step(self.unet.parameters())
        self.progress.global_step += 1
        window.steps += 1
        return True

    def _log(self, step: int, window: LossWindow, bar: tqdm) -> None:
        """Record the window's mean train loss and speed, move the bar, and stop at the end of the time budget."""
        cfg, accelerator, progress = self.cfg, self.accelerator, self.progress
        elapsed = window.elapsed()
        progress.training_time_s += elapsed
        train_loss = accelerator.reduce(window.loss_sum, reduction="mean").item() / window.steps
        images = window.steps * cfg.gradient_accumulation_steps * cfg.train_batch_size * accelerator.num_processes
        speed, lr = images / elapsed, self.lr_scheduler.get_last_lr()[0]
        self._record(step, train_loss=train_loss, lr=lr, img_s=round(speed, 1))
        self._watch_speed(speed)
        if cfg.max_train_minutes is not None:  # the bar counts seconds of the budget
            bar.update(min(bar.total, round(progress.training_time_s)) - bar.n)
        bar.set_postfix(step=step, loss=f"{train_loss:.4f}", lr=f"{lr:.2e}", img_s=f"{speed:.0f}")
        window.reset()
        self._sync_budget()
        self._save_snapshots()
        if self.budget_used >= 1.0:
            accelerator.print(f"Stopping at step {step}: --max_train_minutes {cfg.max_train_minutes} "
                              f"reached after {progress.training_time_s / 60:.1f} minutes.")
            self.max_train_steps, self.timed_out = step, True

    def _watch_speed(self, images_per_s: float) -> None:
        """One line above the progress bar when other work has slowed the run down (`SlowdownWatch`)."""
        warning = self.slowdown.update(images_per_s)
        if warning is not None and self.accelerator.is_local_main_process:
            tqdm.write(warning)

    def _progress_bar(self) -> tqdm:
        """Steps of `max_train_steps`, or, with `--max_train_minutes`, seconds of the budget (so that its time
        left is the budget's, not that of a step cap the budget will never reach)."""
        cfg, progress = self.cfg, self.progress
        disable = not self.accelerator.is_local_main_process
        if cfg.max_train_minutes is None:
            return tqdm(total=self.max_train_steps, initial=progress.global_step, desc="train", disable=disable)
        budget = round(60 * cfg.max_train_minutes)
        return tqdm(total=budget, initial=min(budget, round(progress.training_time_s)), unit="s",
                    desc="train (seconds of --max_train_minutes)", disable=disable)

    def _stop_requested(self, signals: StopSignals, step: int) -> bool:
        """Whether any process received a stop signal: checked after every step with one process, and at the
        logging steps (one small collective) with several, so that all of them stop at the same step."""
        local = signals.requested is not None
        if self.accelerator.num_processes == 1:
            return local
        if step % LOG_EVERY:
            return False
        flags = self.accelerator.gather(torch.tensor([1.0 if local else 0.0], device=self.accelerator.device))
        return bool(flags.max().item() > 0)

    def _stop_on_signal(self, signals: StopSignals, step: int) -> None:
        """Write a checkpoint of this step (unless `_periodic` just did) and stop with how to resume."""
        checkpoint = self.output_dir / f"checkpoint-{step}"
        if not (step % self.cfg.checkpointing_steps == 0 or self.timed_out):  # the same test as `_periodic`'s
            check_weights(self.unet.parameters(), step=step, **self._fault_context())
            checkpoint = self.saver.checkpoint(self.accelerator, step, self._process_files())
        self.accelerator.end_training()
        raise Interrupted(f"stopped by {signals.requested or 'a signal'} at step {step}; the state is saved in "
                          f"{checkpoint}. Run the same command with --resume_from_checkpoint latest to go on.",
                          signals.signal_number)

    def _sync_budget(self) -> None:
        """Set `budget_used` to the largest share of `--max_train_minutes` used by any process, so that all
        of them follow the same learning rate and stop at the same step."""
        if self.cfg.max_train_minutes is None:
            return
        used = torch.tensor([self.progress.training_time_s / (60 * self.cfg.max_train_minutes)],
                            device=self.accelerator.device)
        self.budget_used = self.accelerator.gather(used).max().item()

    def _save_snapshots(self) -> None:
        """Save the (EMA) model as a pipeline under `snapshots/<minutes>min/` once training time passes each of
        `--snapshot_minutes` (for quality-against-time curves; benchmarks/time_to_quality.py)."""
        cfg, progress = self.cfg, self.progress
        due = [m for m in cfg.snapshot_minutes or () if progress.training_time_s >= 60 * m
               and m not in progress.snapshots_saved]
        if not due:
            return
        progress.snapshots_saved.extend(due)
        if self.accelerator.is_main_process:
            self.saver.snapshots(self.final_unet(), progress, due)

    def finish(self) -> None:
        """Save the final (EMA) model as a diffusers pipeline, the loss CSV and curve, and push if asked."""
        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            self._save_final_pipeline()
            if self.cfg.push_to_hub:
                self._push()
        accelerator.end_training()

    def _save_final_pipeline(self) -> None:
        """The pipeline with its model card and sample grid, and the loss history as CSV and plot."""
        cfg, unet = self.cfg, self.final_unet()
        grid = sample_grid(unet, self.noise_scheduler, cfg.eval_batch_size, cfg.num_inference_steps,
                           self.class_names, seed=cfg.seed)
        save_grid(grid, self.output_dir, self.progress.global_step)
        self.saver.final(unet, self.progress, grid, self.validation.loss(unet, self.noise_scheduler))

    def _push(self) -> None:
        """Upload the saved pipeline folder with `sharing.push_folder`, without what training keeps beside it."""
        cfg = self.cfg
        url = push_folder(self.output_dir, cfg.hub_model_id, private=cfg.hub_private_repo,
                          ignore_patterns=self.saver.push_ignore_patterns(),
                          commit_message=f"train_ddpm.py: {self.progress.global_step} steps on "
                                         f"{self.data.description}")
        self.accelerator.print(f"Pushed to {url}")

    def _process_files(self) -> dict[str, dict] | None:
        """What each process saves in a checkpoint beside accelerate's state: its place in a stream."""
        return {STREAM_POSITION: self.batches.state_dict()} if self.data.streaming else None

    def _fault_context(self) -> dict:
        """What a divergence message names: the learning rate and the precision of this run."""
        return {"learning_rate": learning_rate(self.cfg), "mixed_precision": self.accelerator.mixed_precision}

    def final_unet(self) -> UNet2DModel:
        """A standalone copy of the model to sample from and save: the EMA weights when EMA is on."""
        online = self.accelerator.unwrap_model(self.unet)
        device = self.accelerator.device
        # Building a model draws initial weights; forking the RNG keeps the training noise sequence unchanged.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            unet = UNet2DModel.from_config(online.config).to(device)
        if self.ema is not None:
            self.ema.copy_to(unet.parameters())
        else:
            unet.load_state_dict(online.state_dict())
        check_weights(unet.parameters(), step=self.progress.global_step, **self._fault_context())  # before any save
        return unet

    def _check_fid(self, step: int) -> None:
        """Record the Fréchet distance of the EMA model's samples; save the model to `best/` if it is the lowest."""
        unet = self.final_unet()
        fid = self.fid_check(unet, self.noise_scheduler, self.class_names)
        self._record(step, fid=fid)
        progress = self.progress
        if self.cfg.keep_best_by_fid and (progress.best_fid is None or fid < progress.best_fid):
            progress.best_fid = fid
            self.saver.best(unet, progress)

    # ----- one step -----
    def _loss(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The denoising loss of one micro-batch: uint8 images (B, C, H, W), labels (B,) or None."""
        cfg = self.cfg
        clean = to_model_range(images.to(self.accelerator.device, non_blocking=True))  # x_0, (B, C, H, W)
        batch_size, draws = clean.shape[0], self.draws  # numbers of the global batch, this process's slice
        if cfg.random_flip:
            clean = random_hflip(clean, draws.uniform(batch_size))
        noise = draws.normal(clean.shape)  # eps ~ N(0, I)
        if cfg.immiscible_noise:
            noise = immiscible_noise(clean, noise)  # the same noise, each sample given to a nearby image
        timesteps = self.sample_timesteps(draws, batch_size)  # --timestep_sampling (training/timesteps.py)
        class_labels = None
        if self.null_class is not None:
            labels = labels.to(clean.device)
            # Classifier-free guidance training (Ho & Salimans 2022): drop the label to the null class.
            drop = draws.uniform(batch_size) < cfg.class_dropout
            class_labels = torch.where(drop, torch.full_like(labels, self.null_class), labels)
        return denoising_loss(self.unet, self.noise_scheduler, clean, noise, timesteps, class_labels, cfg.snr_gamma,
                              self.accelerator.autocast())

    # ----- schedule -----
    def _record(self, step: int, **values) -> None:
        """Merge values into the history row of `step` and send them to the trackers."""
        history = self.progress.history
        if not history or history[-1]["step"] != step:
            history.append({"step": step, "time_s": round(self.progress.training_time_s, 2)})
        history[-1].update(values)
        self.accelerator.log({TRACKER_NAMES.get(key, key): value for key, value in values.items()}, step=step)

    def _periodic(self, step: int) -> None:
        cfg, accelerator = self.cfg, self.accelerator
        if accelerator.is_main_process:
            if step % cfg.validation_steps == 0 or step == self.max_train_steps:
                with accelerator.autocast():
                    val_loss = self.validation.loss(accelerator.unwrap_model(self.unet), self.noise_scheduler)
                self._record(step, val_loss=val_loss)
            if step % cfg.save_images_steps == 0 and step != self.max_train_steps:
                grid = sample_grid(self.final_unet(), self.noise_scheduler, cfg.eval_batch_size,
                                   cfg.num_inference_steps, self.class_names, seed=cfg.seed)
                save_grid(grid, self.output_dir, step)
                log_grid(accelerator, grid, step)
            if self.fid_check is not None and (step % cfg.eval_steps == 0 or step == self.max_train_steps):
                self._check_fid(step)
        if step % cfg.checkpointing_steps == 0 or self.timed_out:  # a timed-out run can be resumed with more time
            check_weights(self.unet.parameters(), step=step, **self._fault_context())
            self.saver.checkpoint(accelerator, step, self._process_files())
