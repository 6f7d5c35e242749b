"""One typed training config, the command line generated from it, and the start-up checks.

Every hyperparameter lives in `TrainConfig`, whose fields carry their `--help` text in
`field(metadata={"help": ...})` saying why the field exists or why its default is what it is (the
convention of transformers' `HfArgumentParser`, which builds the parser). Flag names follow diffusers'
`examples/unconditional_image_generation/train_unconditional.py` wherever the same concept exists.
`parse_config` reads an optional `--config FILE` (YAML or JSON) whose keys are the field names, lets explicit
flags override the file, and runs the cross-argument checks, which fail with one sentence and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from transformers import HfArgumentParser

from data_prep.arguments import DataArguments
from sharing.arguments import HubArguments

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
TIMESTEP_SAMPLINGS = ("uniform", "log_normal")
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
LOGGERS = ("tensorboard", "wandb", "none")
MODEL_PRESETS = ("tiny", "small", "base")


@dataclass
class TrainConfig(DataArguments, HubArguments):
    """All settings of one training run (see `python train_ddpm.py --help`); `--dataset`, `--data_dir` and the
    Hub flags are the shared `DataArguments` and `HubArguments`, with training's own defaults and help."""

    # --- data ---
    dataset: str = field(default="glyphs", metadata={"help": (
        "`mnist`, `persian` or `glyphs` (prepared under `data_dir/<name>` by `python -m data_prep`), a "
        "`save_to_disk` folder, a folder of images or of parquet/arrow files, or a Hub dataset id: one flag for every "
        "source.")})
    data_dir: str = field(default="data", metadata={"help": (
        "Where the named datasets live; `glyphs` is rendered here on first use so a fresh machine needs no other "
        "step.")})
    resolution: Optional[int] = field(default=None, metadata={"help": (
        "Side of the square training images; None keeps the dataset's own size (28 for MNIST/Hoda/glyphs).")})
    center_crop: bool = field(default=False, metadata={"help": (
        "Crop the centre instead of resizing the whole image; off because glyphs are already centred.")})
    random_flip: bool = field(default=False, metadata={"help": (
        "Horizontal flips turn one character into another (or into no character), so they are off by default.")})
    max_in_memory_gb: float = field(default=4.0, metadata={"help": (
        "Keep the whole split as one uint8 tensor (cached by the dataset's fingerprint) when it is at most this "
        "many GiB, so no PIL work happens per step; larger sets are decoded per batch instead.")})
    dataloader_num_workers: int = field(default=0, metadata={"help": (
        "Worker processes for decoding batches; only used when the dataset is too large to hold in memory.")})
    streaming: bool = field(default=False, metadata={"help": (
        "Read --dataset as a stream (datasets' IterableDataset) instead of loading it: for data larger than memory "
        "or disk, e.g. a Hub dataset. Needs --max_train_steps (a stream's length is unknown) and a `test` split; "
        "each process reads its own shards, and every checkpoint saves each process's place.")})
    shuffle_buffer_size: int = field(default=10_000, metadata={"help": (
        "Records in the shuffle buffer of --streaming, on top of shuffling the shard order each epoch; 10,000 "
        "28 px images are a few MB.")})
    num_validation_images: int = field(default=512, metadata={"help": (
        "Test images used for the validation loss; a fixed subset keeps the number comparable across steps.")})

    # --- model ---
    model_preset: str = field(default="tiny", metadata={"choices": MODEL_PRESETS, "help": (
        "`tiny` (0.64M parameters, 2-core CPU), `small` (~6.5M, laptop/GPU) or `base` (~27M, GPU): see "
        "training/model.py.")})
    model_config_name_or_path: Optional[str] = field(default=None, metadata={"help": (
        "A UNet2DModel config (folder, config.json or Hub id) to use instead of a preset.")})
    block_out_channels: Optional[tuple[int, ...]] = field(default=None, metadata={"help": (
        "Channels per resolution level; overrides the preset (each level but the last halves the image).")})
    layers_per_block: Optional[int] = field(default=None, metadata={"help": (
        "ResNet blocks per level; overrides the preset.")})
    attention_levels: Optional[tuple[int, ...]] = field(default=None, metadata={"help": (
        "Levels (0 = full resolution) with self-attention; overrides the preset. Attention is cheap only at low "
        "resolution.")})
    norm_num_groups: Optional[int] = field(default=None, metadata={"help": (
        "GroupNorm groups; must divide every entry of block_out_channels.")})
    dropout: Optional[float] = field(default=None, metadata={"help": (
        "Dropout in the ResNet blocks; small data sets (a few thousand glyphs) overfit without it.")})
    class_conditional: bool = field(default=False, metadata={"help": (
        'Train with the dataset\'s labels through a class embedding, plus one "null" class for guidance.')})
    class_dropout: float = field(default=0.1, metadata={"help": (
        "Share of labels replaced by the null class, so one model also learns p(x) for classifier-free "
        "guidance.")})

    # --- noise ---
    ddpm_num_steps: int = field(default=1000, metadata={"help": (
        "Diffusion steps T of the forward process (Ho et al. 2020 use 1000).")})
    ddpm_beta_schedule: str = field(default="squaredcos_cap_v2", metadata={"choices": BETA_SCHEDULES, "help": (
        "Beta schedule: `squaredcos_cap_v2` (cosine, Nichol & Dhariwal 2021) or `linear` (Ho et al. 2020). Cosine "
        "with v targets and min-SNR-5 is the default by measurement: on MNIST it reached in 400 steps the "
        "Fréchet distance that linear betas with epsilon targets reached in 800 (docs/training.md). Cosine "
        "with epsilon targets is a poor pair: its DPM-Solver++ samples were still noise after 1500 steps.")})
    prediction_type: str = field(default="v_prediction", metadata={"choices": PREDICTION_TYPES, "help": (
        "What the UNet predicts: the noise, the velocity v (Salimans & Ho 2022) or the clean image.")})
    snr_gamma: Optional[float] = field(default=5.0, metadata={"help": (
        "Min-SNR-gamma loss weighting (Hang et al. 2023, arXiv:2303.09556); None trains with plain MSE.")})
    timestep_sampling: str = field(default="log_normal", metadata={"choices": TIMESTEP_SAMPLINGS, "help": (
        "How training draws t: `uniform` over 0..T-1 (Ho et al. 2020), or `log_normal`, where the noise level "
        "sigma_t = sqrt((1 - a_t) / a_t) is log-normal with --log_normal_mean and --log_normal_std (EDM, Karras et "
        "al. 2022, arXiv:2206.00364, sec. 5), putting the steps around sigma = e^mean. The default mean 0.5, std 1.5 "
        "(toward high noise) trained better than uniform t on MNIST and on the Persian characters; EDM's -1.2, 1.2 "
        "trained worse (docs/time_to_quality.md).")})
    log_normal_mean: float = field(default=0.5, metadata={"help": (
        "Mean of log sigma_t for `--timestep_sampling log_normal` (EDM's P_mean is -1.2).")})
    log_normal_std: float = field(default=1.5, metadata={"help": (
        "Standard deviation of log sigma_t for `--timestep_sampling log_normal` (EDM's P_std is 1.2).")})
    immiscible_noise: bool = field(default=False, metadata={"help": (
        "Pair each batch's images with its noise samples by the smallest total distance (immiscible diffusion, Li "
        "et al. 2024, arXiv:2406.12303) instead of at random. On MNIST at 20 CPU-minutes it lost to random pairing "
        "(docs/time_to_quality.md).")})

    # --- optimisation ---
    train_batch_size: int = field(default=64, metadata={"help": (
        "Images per process per micro-batch; the effective batch is this x processes x accumulation steps. 64: "
        "on a CPU budget of minutes, more and smaller updates learn faster per image seen "
        "(docs/time_to_quality.md).")})
    num_epochs: int = field(default=100, metadata={"help": (
        "Passes over the training split; ignored when max_train_steps is set.")})
    max_train_steps: Optional[int] = field(default=None, metadata={"help": (
        "Optimizer steps to train for; overrides num_epochs when set.")})
    max_train_minutes: Optional[float] = field(default=None, metadata={"help": (
        "Wall-clock budget in minutes (training, validation and sample grids, counted across resumes): at the "
        "first logging step past it, training stops and the model is saved as it is. None trains to the last "
        "step.")})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": (
        "Micro-batches per optimizer step, to reach a large batch on small memory.")})
    learning_rate: Optional[float] = field(default=None, metadata={"help": (
        "Peak learning rate; None takes the preset's (small UNets train fastest near 1e-3, large ones near "
        "2e-4).")})
    lr_scheduler: str = field(default="cosine", metadata={"choices": LR_SCHEDULERS, "help": (
        "diffusers' LR schedule name; counted in optimizer steps (not micro-batches), and with "
        "--max_train_minutes in the share of the budget used when that is further along, so that it decays to "
        "the end of the budget.")})
    lr_warmup_steps: int = field(default=100, metadata={"help": (
        "Linear warm-up steps; AdamW at 1e-3 on a fresh UNet needs about a hundred.")})
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW first-moment decay."})
    adam_beta2: float = field(default=0.999, metadata={"help": "AdamW second-moment decay."})
    adam_weight_decay: float = field(default=1e-6, metadata={"help": (
        "AdamW decoupled weight decay; tiny because diffusion UNets rarely overfit MNIST-sized data.")})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "AdamW epsilon."})
    max_grad_norm: float = field(default=1.0, metadata={"help": (
        "Gradient-norm clip; guards the first steps where the loss at high noise levels spikes.")})
    mixed_precision: str = field(default="auto", metadata={"choices": MIXED_PRECISION, "help": (
        "`auto` keeps what `accelerate launch --mixed_precision` asked for, else measures a few steps in float32 "
        "and in bf16 and takes the faster (never bf16 on a CPU without native bf16; training/precision.py); "
        "`no`, `bf16` (CPU and GPU) or `fp16` (GPU only) force one.")})
    seed: int = field(default=0, metadata={"help": (
        "Seed for weights, data order and noise; the same seed gives the same run.")})
    num_threads: Optional[int] = field(default=None, metadata={"help": (
        "CPU threads per process; None gives each local process its share of the cores that other jobs are not "
        "using at start-up (measured over half a second, training/threads.py).")})

    # --- EMA ---
    use_ema: bool = field(default=True, metadata={"help": (
        "Keep an exponential moving average of the weights and save that; EMA samples are much cleaner.")})
    ema_max_decay: float = field(default=0.9999, metadata={"help": "Upper bound of the EMA decay."})
    ema_inv_gamma: float = field(default=1.0, metadata={"help": (
        "EMA warm-up: decay = 1 - (1 + step / inv_gamma) ** -power (diffusers' EMAModel).")})
    ema_power: float = field(default=0.75, metadata={"help": (
        "EMA warm-up power; 3/4 suits runs of thousands rather than millions of steps.")})

    # --- watching it learn ---
    validation_steps: int = field(default=250, metadata={"help": (
        "Optimizer steps between validation losses on the test split.")})
    save_images_steps: int = field(default=500, metadata={"help": (
        "Optimizer steps between sample grids (EMA weights, DPM-Solver++).")})
    eval_batch_size: int = field(default=64, metadata={"help": (
        "Images in each sample grid (diffusers' example calls this eval_batch_size).")})
    num_inference_steps: int = field(default=25, metadata={"help": (
        "Sampler steps for the grids; DPM-Solver++ (Lu et al. 2022) is good at 25.")})
    logger: str = field(default="tensorboard", metadata={"choices": LOGGERS, "help": (
        "Experiment tracker; TensorBoard is installed with the project.")})
    logging_dir: str = field(default="logs", metadata={"help": "Tracker logs, relative to output_dir."})

    # --- sample quality during training ---
    eval_steps: Optional[int] = field(default=None, metadata={"help": (
        "Optimizer steps between Fréchet distances of samples (EMA weights, fast sampler) to the test split; "
        "None turns the check off. The loss says little about samples; this number ranks checkpoints.")})
    eval_classifier: Optional[str] = field(default=None, metadata={"help": (
        "Domain classifier folder from `python -m evaluation.train_classifier`, whose features the distance is "
        "measured in (Inception features, the usual FID, judge 28-px glyphs poorly and need the internet).")})
    eval_num_samples: int = field(default=256, metadata={"help": (
        "Samples per check: a few hundred rank checkpoints well; the value itself is biased upwards at small "
        "sizes.")})
    keep_best_by_fid: bool = field(default=False, metadata={"help": (
        "Also save the EMA model with the lowest distance so far as a pipeline in output_dir/best/.")})
    snapshot_minutes: Optional[tuple[float, ...]] = field(default=None, metadata={"help": (
        "Also save the (EMA) model as a pipeline in output_dir/snapshots/<M>min/ when training time passes each "
        "of these minutes, e.g. `2 5 10`: quality against time from one run (benchmarks/time_to_quality.py).")})

    # --- checkpoints and output ---
    output_dir: str = field(default="ddpm-model", metadata={"help": (
        "Where the pipeline, checkpoints, logs, grids and loss curves go.")})
    checkpointing_steps: int = field(default=500, metadata={"help": "Optimizer steps between checkpoints."})
    checkpoints_total_limit: Optional[int] = field(default=2, metadata={"help": (
        "Keep at most this many checkpoints (oldest removed first); None keeps all.")})
    resume_from_checkpoint: Optional[str] = field(default=None, metadata={"help": (
        "A checkpoint folder, or `latest` for the newest in output_dir, to continue from.")})
    push_to_hub: bool = field(default=False, metadata={"help": (
        "Upload the saved pipeline (not checkpoints or logs) to the Hub at the end.")})
    hub_model_id: Optional[str] = field(default=None, metadata={"help": (
        "Hub repository id for push_to_hub, e.g. `user/ddpm-mnist`.")})
    hub_private_repo: bool = field(default=False, metadata={"help": "Create the Hub repository as private."})

    # Not a training setting: the YAML/JSON file the other values came from (kept for the record).
    config: Optional[str] = field(default=None, metadata={"help": "YAML or JSON file of settings; flags override it."})

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON types (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


class ConfigError(ValueError):
    """A contradictory or impossible setting, reported as one sentence at start-up."""


# The fields with a fixed set of values; argparse checks flags against them, `check_config` file values too.
_CHOICES = {f.name: f.metadata["choices"] for f in dataclasses.fields(TrainConfig) if "choices" in f.metadata}


def _base_type(annotation: Any) -> tuple[type, bool]:
    """(element type, is_tuple) of a field annotation such as `Optional[tuple[int, ...]]`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Union:
        annotation = args[0]
    if typing.get_origin(annotation) is tuple:
        return typing.get_args(annotation)[0], True
    return annotation, False


def _none_or(kind: type):
    """An argparse type for an Optional field: `none` gives None (e.g. `--snr_gamma none`), anything else `kind`."""

    def convert(text: str):
        return None if text.lower() == "none" else kind(text)

    convert.__name__ = kind.__name__  # argparse names the type in its "invalid float value" message
    return convert


def build_parser() -> HfArgumentParser:
    """transformers' `HfArgumentParser` for `TrainConfig`: one flag per field, its help from the field's metadata."""
    parser = HfArgumentParser(
        TrainConfig,
        prog="train_ddpm.py",
        description="Train a DDPM (diffusers UNet2DModel + DDPMScheduler) on handwritten characters with accelerate.",
        conflict_handler="resolve",  # so that `_keep_flag_forms` may define a generated flag again
    )
    _keep_flag_forms(parser)
    return parser


def _keep_flag_forms(parser: HfArgumentParser) -> None:
    """Define again the flags whose form train_ddpm.py has always taken but `HfArgumentParser` does not make.

    `HfArgumentParser` reads an `Optional[float]` as a plain float, hands `tuple[int, ...]` to argparse as the
    type (so `32` would become `("3", "2")`), and negates only the switches that are on by default, as
    `--no_use_ema`. Here, as before: `none` sets an optional number or name to None (`--snr_gamma none`), a tuple
    field takes one or more values (`--block_out_channels 32 64 64`; a config file may give `[]`), and every
    switch also has argparse's `--no-<name>` (`--no-use_ema`, `--no-random_flip`). The parser resolves the
    conflict of a flag defined twice by keeping the later definition (argparse's `conflict_handler="resolve"`).
    """
    hints = typing.get_type_hints(TrainConfig)
    for spec in dataclasses.fields(TrainConfig):
        name, help_text = spec.name, spec.metadata.get("help")
        kind, is_tuple = _base_type(hints[name])
        flags = [f"--{name}", *([f"--{name.replace('_', '-')}"] if "_" in name else [])]
        if is_tuple:
            parser.add_argument(*flags, dest=name, type=kind, nargs="+", default=spec.default, help=help_text)
        elif kind is bool:
            parser.add_argument(f"--no-{name}", action="store_false", dest=name, default=argparse.SUPPRESS,
                                help=f"Turn --{name} off.")
        elif type(None) in typing.get_args(hints[name]):
            parser.add_argument(*flags, dest=name, type=_none_or(kind), default=spec.default, help=help_text,
                                choices=spec.metadata.get("choices"))


def load_config_file(path: str) -> dict[str, Any]:
    """Read a YAML or JSON file of `TrainConfig` fields.

    Args:
        path: a `.json`, `.yaml` or `.yml` file.

    Returns:
        The mapping of field names to values.

    Raises:
        ConfigError: the file is missing, unreadable, not a mapping, or has unknown keys.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config {path}: no such file; pass a YAML or JSON file of training settings.")
    try:
        text = file.read_text(encoding="utf-8")
        values = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        kind = "JSON" if file.suffix == ".json" else "YAML"
        raise ConfigError(f"--config {path}: not valid {kind} ({err}).") from err
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path}: expected a mapping of setting names to values.")
    known = {f.name for f in dataclasses.fields(TrainConfig)} - {"config"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"--config {path}: unknown setting(s) {', '.join(unknown)}; see train_ddpm.py --help.")
    hints = typing.get_type_hints(TrainConfig)
    return {name: _coerce(name, value, hints[name], path) for name, value in values.items()}


def _coerce(name: str, value: Any, annotation: Any, path: str) -> Any:
    """Convert one config-file value to its field's type (YAML reads `1e-3` as a string, for one)."""
    kind, is_tuple = _base_type(annotation)
    if value is None:
        return None
    try:
        if is_tuple:
            return tuple(kind(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError
            return value
        return kind(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"--config {path}: {name} = {value!r} is not a valid {kind.__name__}.") from err


def check_config(cfg: TrainConfig) -> None:
    """Cross-argument checks that need no data or model.

    Raises:
        ConfigError: with one sentence naming the flag(s) and what to do.
    """
    for name, choices in _CHOICES.items():
        if getattr(cfg, name) not in choices:
            raise ConfigError(f"--{name} {getattr(cfg, name)!r} is not one of {', '.join(choices)}.")
    positive = (
        "train_batch_size",
        "shuffle_buffer_size",
        "gradient_accumulation_steps",
        "ddpm_num_steps",
        "num_epochs",
        "validation_steps",
        "save_images_steps",
        "checkpointing_steps",
        "eval_batch_size",
        "num_inference_steps",
        "num_validation_images",
    )
    for name in positive:
        if getattr(cfg, name) < 1:
            raise ConfigError(f"--{name} must be at least 1 (got {getattr(cfg, name)}).")
    if cfg.max_train_steps is not None and cfg.max_train_steps < 1:
        raise ConfigError(f"--max_train_steps must be at least 1 (got {cfg.max_train_steps}).")
    if cfg.streaming and cfg.max_train_steps is None:
        raise ConfigError("--streaming needs --max_train_steps N: a stream's length is not known, so --num_epochs "
                          "cannot be counted (--max_train_minutes may stop the run earlier).")
    if cfg.max_train_minutes is not None and cfg.max_train_minutes <= 0:
        raise ConfigError(f"--max_train_minutes must be positive (got {cfg.max_train_minutes}); leave it unset for "
                          "no time limit.")
    if cfg.checkpoints_total_limit is not None and cfg.checkpoints_total_limit < 1:
        raise ConfigError("--checkpoints_total_limit must be at least 1; leave it unset to keep every checkpoint.")
    if not 0.0 <= cfg.class_dropout < 1.0:
        raise ConfigError(f"--class_dropout must be in [0, 1) (got {cfg.class_dropout}).")
    if cfg.log_normal_std <= 0:
        raise ConfigError(f"--log_normal_std must be positive (got {cfg.log_normal_std}).")
    if cfg.snr_gamma is not None and cfg.snr_gamma <= 0:
        raise ConfigError(f"--snr_gamma must be positive (got {cfg.snr_gamma}); use `--snr_gamma none` for plain MSE.")
    if cfg.learning_rate is not None and cfg.learning_rate <= 0:
        raise ConfigError(f"--learning_rate must be positive (got {cfg.learning_rate}).")
    if cfg.resolution is not None and cfg.resolution < 8:
        raise ConfigError(f"--resolution {cfg.resolution} is too small for a UNet; use 8 or more.")
    if cfg.eval_steps is not None and cfg.eval_steps < 1:
        raise ConfigError(f"--eval_steps must be at least 1 (got {cfg.eval_steps}); leave it unset to turn it off.")
    if cfg.eval_steps is not None and not cfg.eval_classifier:
        raise ConfigError("--eval_steps needs --eval_classifier DIR, a classifier from "
                          "`python -m evaluation.train_classifier --dataset D --output_dir DIR`.")
    if cfg.keep_best_by_fid and cfg.eval_steps is None:
        raise ConfigError("--keep_best_by_fid needs --eval_steps N and --eval_classifier DIR to measure the best.")
    if cfg.snapshot_minutes is not None and any(m <= 0 for m in cfg.snapshot_minutes):
        raise ConfigError(f"--snapshot_minutes must all be positive (got {list(cfg.snapshot_minutes)}).")
    if cfg.eval_num_samples < 2:
        raise ConfigError(f"--eval_num_samples must be at least 2 for a covariance (got {cfg.eval_num_samples}).")
    if (problem := cfg.hub_problem()) is not None:
        raise ConfigError(f"{problem}.")
    arch_flags = [n for n in ("block_out_channels", "layers_per_block", "attention_levels", "norm_num_groups")
                  if getattr(cfg, n) is not None]
    if cfg.model_config_name_or_path and arch_flags:
        raise ConfigError(f"--model_config_name_or_path and --{arch_flags[0]} contradict each other; use one of them.")


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """Parse the command line (and `--config FILE`) into a checked `TrainConfig`.

    Values come from, in rising priority: the dataclass defaults, the config file, explicit flags.
    Any bad setting ends the program with one sentence and exit code 2 (argparse's convention).

    Args:
        argv: the arguments without the program name; None reads `sys.argv`.

    Returns:
        The resolved config.
    """
    parser = build_parser()
    first = parser.parse_args(argv)
    try:
        if first.config:
            parser.set_defaults(**load_config_file(first.config))
        args = parser.parse_args(argv)
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items()}
        cfg = TrainConfig(**values)
        check_config(cfg)
    except ConfigError as err:
        parser.error(str(err))
    return cfg
