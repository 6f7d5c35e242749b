"""Train a DDPM on handwritten characters and save it as a diffusers pipeline.

    accelerate launch [--config_file accelerate_config.yaml] train_ddpm.py --dataset glyphs --output_dir runs/glyphs

Settings: `python train_ddpm.py --help` (all of them live in `training.config.TrainConfig`).
The work happens in `training/` (its `__init__.py` lists the modules and what each does).
"""

from __future__ import annotations

import torch
from accelerate.utils import set_seed

from data_prep.resolve import DataError, resolve_dataset
from training.config import ConfigError, TrainConfig, parse_config
from training.data import first_image, image_channels, native_resolution
from training.faults import exit_on_fault
from training.loop import Trainer, make_accelerator, make_state
from training.model import build_noise_scheduler, build_unet, count_parameters
from training.precision import resolve_mixed_precision


def check_data(cfg: TrainConfig, data) -> None:
    """Start-up checks that need the dataset."""
    if cfg.class_conditional and data.class_names is None:
        raise ConfigError(f"--class_conditional needs labels, but --dataset {cfg.dataset} has no ClassLabel column.")
    if not data.streaming and cfg.train_batch_size > len(data.splits["train"]):
        raise ConfigError(f"--train_batch_size {cfg.train_batch_size} is larger than the "
                          f"{len(data.splits['train'])} training images of --dataset {cfg.dataset}.")


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(argv)

    # 1. processes and CPU threads (the Accelerator follows once the precision is chosen)
    state = make_state(cfg)
    set_seed(cfg.seed + state.process_index)  # per-process noise; weights come from the same seed below

    # 2. data: the named set (built on first use by the main process), a folder or a Hub id
    with state.main_process_first():
        data = resolve_dataset(cfg.dataset, cfg.data_dir, cfg.seed, streaming=cfg.streaming)
    check_data(cfg, data)
    train_split = data.splits["train"]
    first = first_image(train_split, data.image_column)
    resolution, channels = cfg.resolution or native_resolution(first), image_channels(first)

    # 3. model and noise schedule (identical initial weights on every process)
    num_classes = len(data.class_names) if cfg.class_conditional else None
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        unet = build_unet(cfg, resolution, channels, num_classes)
    noise_scheduler = build_noise_scheduler(cfg)

    # 4. accelerate: mixed precision (`auto` measures this model on this machine), accumulation, trackers
    precision, reason = resolve_mixed_precision(cfg.mixed_precision, unet, cfg.train_batch_size, state,
                                                None if num_classes is None else num_classes + 1)
    accelerator = make_accelerator(cfg, precision)
    count = torch.get_num_threads()
    threads = f", {count} CPU thread{'s' if count > 1 else ''}" if state.device.type == "cpu" else ""
    count_images = "streamed" if data.streaming else str(len(train_split))
    accelerator.print(f"{count_images} training images, {channels}x{resolution}x{resolution}; "
                      f"UNet with {count_parameters(unet) / 1e6:.2f}M parameters; precision: {reason}{threads}.")

    # 5. train, then save the pipeline, the loss curve and CSV
    trainer = Trainer(cfg, accelerator, unet, noise_scheduler, data, resolution, channels)
    trainer.start()
    trainer.train()
    trainer.finish()


def cli() -> None:
    """Run `main`, turning configuration and data errors into one line and exit code 2, a diverged run or a failed
    save into one line and exit code 1."""
    with exit_on_fault("train_ddpm.py", (ConfigError, DataError)):
        main()

if __name__ == "__main__":
    cli()
