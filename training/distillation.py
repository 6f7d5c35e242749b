"""Few-step students: distil a saved pipeline into a UNet that samples in 1, 2 or 4 steps.

The method, trajectory distillation sampled as a consistency model (chosen by measurement, docs/distillation.md):

1. Targets (`training.teacher_targets`): the teacher's deterministic ODE solved from seeded starting points at
   each of the student's timesteps tau_1 = T - 1 > ... > tau_K, under classifier-free guidance for a
   class-conditional teacher.
2. The student starts from the teacher's weights and learns f(x_tau, tau) = c_skip x_tau + c_out x0_hat (the
   parametrisation of `LCMScheduler`, whose boundary scalings make f the identity at t = 0; Song et al. 2023,
   arXiv:2303.01469, eq. 4) by mean squared error to the ODE's end point: one-step distillation (Luhman & Luhman
   2021, arXiv:2101.02388) at every timestep the student samples at.
3. Saved with the multistep consistency sampler (`LCMScheduler`, its `original_inference_steps` the student's
   steps), so `pipe()` samples in those steps; guidance is folded in (Meng et al. 2023, arXiv:2210.03142).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch
from accelerate import Accelerator
from diffusers import LCMScheduler, UNet2DModel
from tqdm.auto import tqdm

from pipelines import save_pipeline
from pipelines.character_pipeline import CharacterDDPMPipeline, image_grid
from pipelines.samplers import SAMPLERS, build_sampler
from pipelines.sampling import draw, guidance_interval_problem, is_class_conditional
from sharing import push_folder
from sharing.arguments import HubArguments
from training.checkpointing import TrainingProgress, remove_partial_checkpoints, restore_checkpoint, save_checkpoint
from training.config import ConfigError
from training.faults import Interrupted, StopSignals, check_step, check_weights
from training.plots import plot_loss_curve, write_loss_csv
from training.schedule import build_lr_scheduler
from training.teacher_targets import Targets, TargetSettings, build_targets

# Deterministic samplers the targets can be solved with (an ODE: the same start gives the same image).
TEACHER_SAMPLERS = ("dpm++", "ddim")
TARGETS_DIR = "teacher_targets"
CONFIG_JSON = "distill_config.json"
LOG_EVERY = 10
# The guidance folded into class-conditional students when none is asked for: the scale the Persian docs use.
DEFAULT_GUIDANCE = 2.0
METHOD = "trajectory distillation, consistency sampling"


@dataclass(kw_only=True)
class DistillConfig(HubArguments):
    """The options of `python -m pipelines.distill TEACHER` (the teacher is the one positional argument)."""

    output_dir: str = field(metadata={"help": "where the student pipeline, its checkpoints and its targets go"})
    num_inference_steps: int = field(default=2, metadata={"help": (
        "the student's steps, 1 to 8; it also samples in fewer (a 4-step student in 1, 2 or 4)")})
    guidance_scale: Optional[float] = field(default=None, metadata={"help": (
        f"class-conditional teachers: the guidance folded into the student (default {DEFAULT_GUIDANCE:g}); the "
        "student then samples with --guidance_scale 1 at the cost of one UNet pass per step")})
    guidance_interval: Optional[list[float]] = field(default=None, metadata={"help": (
        "LOW HIGH, class-conditional teachers: solve the targets with guidance only where sigma_t lies in (LOW, "
        "HIGH] (arXiv:2404.07724), as `pipelines.synthesize` samples by default (0.28 5.42): a student of wider "
        "samples; default: guidance at every step")})
    teacher_sampler: str = field(default="dpm++", metadata={"choices": TEACHER_SAMPLERS, "help": (
        "the teacher's deterministic ODE solver for the targets")})
    teacher_steps: int = field(default=10, metadata={"help": (
        "solver steps of the teacher's ODE from pure noise (from a later timestep, proportionally fewer)")})
    num_pairs: int = field(default=4096, metadata={"help": (
        "seeded teacher trajectories to learn from; their images are computed once and kept for a resume")})
    train_batch_size: int = field(default=64, metadata={"help": "student training images per step"})
    learning_rate: float = field(default=3e-4, metadata={"help": (
        "AdamW peak rate; the student starts from the teacher's weights, so lower than training's 1e-3 (on MNIST "
        "3e-4 distilled better than 1e-4 in the same minutes: docs/distillation.md)")})
    lr_scheduler: str = field(default="cosine", metadata={"help": "diffusers' schedule shape (as in training)"})
    lr_warmup_steps: int = field(default=50, metadata={"help": "linear warm-up steps"})
    max_train_steps: int = field(default=3000, metadata={"help": "student optimizer steps (a cap under a budget)"})
    max_train_minutes: Optional[float] = field(default=None, metadata={"help": (
        "wall-clock budget of the student's training (not its targets), counted across resumes, as in training")})
    checkpointing_steps: int = field(default=500, metadata={"help": "optimizer steps between checkpoints"})
    checkpoints_total_limit: Optional[int] = field(default=2, metadata={"help": "checkpoints kept (oldest go first)"})
    resume_from_checkpoint: Optional[str] = field(default=None, metadata={"help": (
        "a checkpoint folder, or `latest`, to go on from (the targets are always reused when they match)")})
    keep_targets: bool = field(default=False, metadata={"help": (
        "keep the teacher targets in output_dir after the student is saved (to distil again with other settings)")})
    seed: int = field(default=0, metadata={"help": "seed of the trajectories and of the student's batches"})

    def problem(self) -> str | None:
        """The first impossible setting, as a sentence naming its flag, or None."""
        if not 1 <= self.num_inference_steps <= 8:
            return f"--num_inference_steps {self.num_inference_steps}: a student takes 1 to 8 steps"
        if self.teacher_steps < 2:
            return f"--teacher_steps {self.teacher_steps}: must be at least 2"
        if self.num_pairs < self.train_batch_size:
            return f"--num_pairs {self.num_pairs}: must be at least --train_batch_size ({self.train_batch_size})"
        if self.guidance_scale is not None and self.guidance_scale < 0:
            return f"--guidance_scale {self.guidance_scale}: must be 0 or more"
        if (problem := guidance_interval_problem(self.guidance_interval)) is not None:
            return problem
        if self.max_train_minutes is not None and self.max_train_minutes <= 0:
            return f"--max_train_minutes {self.max_train_minutes}: must be more than 0"
        return self.hub_problem()


def student_scheduler(teacher: CharacterDDPMPipeline, steps: int) -> LCMScheduler:
    """The student's sampler on the teacher's noise schedule, `steps` its own (`original_inference_steps`)."""
    # An epsilon-predicting teacher's x0 = (x - sqrt(1 - a) eps) / sqrt(a) blows up where a_T ~ 0 (cosine betas);
    # its student predicts x0 itself. v and x0 predictions stay as they are.
    prediction = teacher.scheduler.config.prediction_type
    scheduler = build_sampler("consistency", teacher.scheduler.config)
    return LCMScheduler.from_config(scheduler.config, original_inference_steps=steps,
                                    prediction_type="sample" if prediction == "epsilon" else prediction)


def consistency_output(scheduler: LCMScheduler, model_output: torch.Tensor, sample: torch.Tensor,
                       timesteps: torch.Tensor) -> torch.Tensor:
    """f(x_t, t) = c_skip x_t + c_out x0_hat, per image, as `LCMScheduler.step` computes its `denoised`
    (before clipping): (B, C, H, W) from model outputs and samples (B, C, H, W) at timesteps (B,)."""
    a = scheduler.alphas_cumprod.to(sample.device)[timesteps].view(-1, 1, 1, 1)  # a_t, (B, 1, 1, 1)
    if scheduler.config.prediction_type == "v_prediction":
        x0 = a.sqrt() * sample - (1 - a).sqrt() * model_output  # x0 = sqrt(a) x_t - sqrt(1 - a) v
    else:
        x0 = model_output
    c_skip, c_out = scheduler.get_scalings_for_boundary_condition_discrete(timesteps.float().view(-1, 1, 1, 1))
    return c_skip * sample + c_out * x0


class Distiller:
    """Trains one student from its targets, with checkpoints, resume and a stop on SIGTERM."""

    def __init__(self, cfg: DistillConfig, accelerator: Accelerator, teacher: CharacterDDPMPipeline,
                 teacher_name: str, guidance_scale: float):
        self.cfg, self.accelerator, self.teacher_name = cfg, accelerator, teacher_name
        self.output_dir = Path(cfg.output_dir)
        self.guidance_scale = guidance_scale
        self.teacher = teacher
        self.scheduler = student_scheduler(teacher, cfg.num_inference_steps)
        self.scheduler.set_timesteps(cfg.num_inference_steps)
        self.timesteps = self.scheduler.timesteps.clone()  # (K,) descending, the first T - 1
        interval = None if cfg.guidance_interval is None else tuple(cfg.guidance_interval)
        self.settings = TargetSettings(teacher_name, tuple(self.timesteps.tolist()), cfg.teacher_sampler,
                                       cfg.teacher_steps, guidance_scale, cfg.num_pairs, cfg.seed, interval)
        unet = UNet2DModel.from_config(teacher.unet.config)
        unet.load_state_dict(teacher.unet.state_dict())  # the student starts as the teacher
        optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.learning_rate, weight_decay=0.0)
        self.progress = TrainingProgress()
        self.budget_used = 0.0
        self.lr_scheduler = build_lr_scheduler(cfg, optimizer, cfg.max_train_steps, lambda: self.budget_used)
        self.unet, self.optimizer = accelerator.prepare(unet, optimizer)
        accelerator.register_for_checkpointing(self.lr_scheduler, self.progress)
        self.targets_seconds = 0.0

    def run(self) -> None:
        """Targets, training and the saved student; SIGTERM or SIGINT stop it with what was done kept.

        Raises:
            `Interrupted`: a signal stopped it (after a checkpoint, or between target shards).
        """
        signals = StopSignals()
        signals.install()
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            remove_partial_checkpoints(self.output_dir)
            (self.output_dir / CONFIG_JSON).write_text(json.dumps(asdict(self.cfg), indent=2) + "\n", encoding="utf-8")
            checkpoint = restore_checkpoint(self.accelerator, self.output_dir, self.cfg.resume_from_checkpoint)
            if checkpoint is not None:
                self.accelerator.print(f"Resumed from {checkpoint} at step {self.progress.global_step}.")
            start = time.perf_counter()
            targets = build_targets(self.teacher, self.settings, self.output_dir / TARGETS_DIR,
                                    lambda: signals.requested is not None)
            self.targets_seconds = time.perf_counter() - start
            if targets is None:
                raise Interrupted(f"stopped by {signals.requested} while computing the teacher targets; the finished "
                                  f"shards are kept in {self.output_dir / TARGETS_DIR}: run the same command to go "
                                  "on.", signals.signal_number)
            self._train(targets, signals)
        finally:
            signals.uninstall()
        self._save()

    def _train(self, targets: Targets, signals: StopSignals) -> None:
        cfg, progress = self.cfg, self.progress
        total = round(60 * cfg.max_train_minutes) if cfg.max_train_minutes else cfg.max_train_steps
        done = round(progress.training_time_s) if cfg.max_train_minutes else progress.global_step
        loss_sum, losses, window = 0.0, 0, time.perf_counter()
        if cfg.max_train_minutes:  # a resumed run goes on down the learning-rate schedule
            self.budget_used = progress.training_time_s / (60 * cfg.max_train_minutes)
        with tqdm(total=total, initial=min(done, total), desc="student", unit="s" if cfg.max_train_minutes else "step",
                  disable=not self.accelerator.is_local_main_process) as bar:
            while progress.global_step < cfg.max_train_steps and self.budget_used < 1.0:
                loss = self._step(targets)
                progress.global_step += 1
                step = progress.global_step
                loss_sum, losses = loss_sum + loss, losses + 1
                if step % LOG_EVERY == 0 or step == cfg.max_train_steps:
                    progress.training_time_s += time.perf_counter() - window
                    window = time.perf_counter()
                    if cfg.max_train_minutes:
                        self.budget_used = progress.training_time_s / (60 * cfg.max_train_minutes)
                    mean = loss_sum / losses
                    progress.history.append({"step": step, "train_loss": mean, "lr": self.lr_scheduler.get_last_lr()[0],
                                             "time_s": round(progress.training_time_s, 2)})
                    loss_sum, losses = 0.0, 0
                    bar.update((round(progress.training_time_s) if cfg.max_train_minutes else step) - bar.n)
                    bar.set_postfix(step=step, loss=f"{mean:.4f}")
                if step % cfg.checkpointing_steps == 0 or signals.requested is not None:
                    progress.training_time_s += time.perf_counter() - window  # the clock goes on after a resume
                    window = time.perf_counter()
                    check_weights(self.unet.parameters(), step=step, **self._fault_context())
                    checkpoint = save_checkpoint(self.accelerator, self.output_dir, step, cfg.checkpoints_total_limit)
                    if signals.requested is not None:
                        raise Interrupted(f"stopped by {signals.requested} at step {step}; the state is saved in "
                                          f"{checkpoint}. Run the same command with --resume_from_checkpoint latest "
                                          "to go on.", signals.signal_number)

    def _step(self, targets: Targets) -> float:
        """One optimizer step on a batch of (pair, timestep) draws; returns its loss."""
        cfg, device = self.cfg, self.accelerator.device
        # Draws seeded by the step, so that a resumed run takes the same batches as an uninterrupted one.
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.progress.global_step)
        pairs = torch.randint(targets.inputs.shape[0], (cfg.train_batch_size,), generator=generator)  # (B,)
        which = torch.randint(len(self.timesteps), (cfg.train_batch_size,), generator=generator)  # (B,) of 0..K-1
        sample = targets.inputs[pairs, which].to(device)  # x_tau, (B, C, H, W)
        target = targets.targets[pairs, which].to(device)  # the teacher's ODE end point from x_tau
        timesteps = self.timesteps[which].to(device)
        labels = None if targets.labels is None else targets.labels[pairs].to(device)
        with self.accelerator.autocast():
            output = self.unet(sample, timesteps, class_labels=labels).sample.float()
        prediction = consistency_output(self.scheduler, output, sample, timesteps)
        loss = torch.nn.functional.mse_loss(prediction, target)
        self.accelerator.backward(loss)
        grad_norm = self.accelerator.clip_grad_norm_(self.unet.parameters(), 1.0)
        check_step(loss, grad_norm, step=self.progress.global_step + 1, **self._fault_context())
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.lr_scheduler.step()
        return loss.item()

    def _fault_context(self) -> dict:
        return {"learning_rate": self.cfg.learning_rate, "mixed_precision": self.accelerator.mixed_precision}

    def distillation_info(self) -> dict:
        """What the card and `model_index.json` say about the student."""
        progress = self.progress
        return {"teacher": self.teacher_name, "method": METHOD, "num_inference_steps": self.cfg.num_inference_steps,
                "guidance_scale": self.guidance_scale if is_class_conditional(self.teacher) else None,
                "guidance_interval": self.cfg.guidance_interval,
                "num_pairs": self.cfg.num_pairs,
                "teacher_sampler": f"{SAMPLERS[self.cfg.teacher_sampler].title}, {self.cfg.teacher_steps} steps",
                "student_steps": progress.global_step,
                "seconds": round(self.targets_seconds + progress.training_time_s, 1)}

    def _save(self) -> None:
        """The student pipeline with its card, grid and loss curve; then the targets go unless kept; push."""
        cfg, progress = self.cfg, self.progress
        unet = self.accelerator.unwrap_model(self.unet).cpu()
        check_weights(unet.parameters(), step=progress.global_step, **self._fault_context())
        class_names = self.teacher.class_names if is_class_conditional(self.teacher) else None
        student = CharacterDDPMPipeline(unet, self.scheduler, id2label=self.teacher.config.id2label,
                                        distillation=self.distillation_info())
        grid = image_grid(draw(student, 64, seed=cfg.seed).images)
        train_loss = progress.history[-1]["train_loss"] if progress.history else None
        card_info = {"dataset": self._teacher_dataset(), "config": asdict(cfg), "global_step": progress.global_step,
                     "training_time_s": round(progress.training_time_s, 1), "train_loss": train_loss}
        save_pipeline(self.output_dir, unet, self.teacher.scheduler, class_names=class_names, card_info=card_info,
                      sample_grid=grid, sampler=self.scheduler, distillation=self.distillation_info())
        write_loss_csv(progress.history, self.output_dir / "losses.csv")
        plot_loss_curve(progress.history, self.output_dir / "loss_curve.png")
        if not cfg.keep_targets:
            for path in (self.output_dir / TARGETS_DIR).glob("*"):
                path.unlink()
            (self.output_dir / TARGETS_DIR).rmdir()
        self.accelerator.print(f"Saved the {cfg.num_inference_steps}-step student in {self.output_dir}.")
        if cfg.push_to_hub:
            url = push_folder(self.output_dir, cfg.hub_model_id, private=cfg.hub_private_repo,
                              ignore_patterns=[".checkpoint-*"],
                              commit_message=f"pipelines.distill: {cfg.num_inference_steps}-step student of "
                                             f"{self.teacher_name}")
            self.accelerator.print(f"Pushed to {url}")

    def _teacher_dataset(self) -> str:
        """The teacher's dataset as its training config names it (for the card's data section), if saved."""
        for folder in (Path(self.teacher_name), Path(self.teacher_name).parent.parent):
            config = folder / "training_config.json"
            if config.is_file():
                return json.loads(config.read_text(encoding="utf-8")).get("dataset", "unknown")
        return "unknown"


def folded_guidance(cfg: DistillConfig, teacher: CharacterDDPMPipeline) -> float:
    """The guidance scale the targets are solved with.

    Raises:
        ConfigError: guidance, or a guidance interval, asked of an unconditional teacher.
    """
    if not is_class_conditional(teacher):
        if cfg.guidance_scale not in (None, 1.0):
            raise ConfigError(f"--guidance_scale {cfg.guidance_scale:g}: the teacher is unconditional; leave it out")
        if cfg.guidance_interval is not None:
            raise ConfigError("--guidance_interval: the teacher is unconditional and has no guidance; leave it out")
        return 1.0
    return DEFAULT_GUIDANCE if cfg.guidance_scale is None else cfg.guidance_scale


def checked_student_steps(cfg: DistillConfig, teacher: CharacterDDPMPipeline) -> None:
    """Refuse a step count whose timesteps do not fit the teacher's schedule.

    Raises:
        ConfigError: more student steps than the schedule has, or a teacher that is already a student.
    """
    length = teacher.scheduler.config.num_train_timesteps
    if cfg.num_inference_steps > length:
        raise ConfigError(f"--num_inference_steps {cfg.num_inference_steps}: more than the teacher's {length} "
                          "timesteps")
    if isinstance(teacher.scheduler, LCMScheduler):
        raise ConfigError("the teacher is itself a distilled student; distil from the diffusion model it came from")
