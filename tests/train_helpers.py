"""Tiny seeded datasets, configs and trainers shared by the training tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import torch
from accelerate.test_utils.testing import AccelerateTestCase

from data_prep.resolve import resolve_dataset
from training.config import parse_config
from training.loop import Trainer, make_accelerator
from training.model import build_noise_scheduler, build_unet

# A 2-level UNet with 8/16 channels on 16 px images: a few thousand parameters, milliseconds a step.
TINY_MODEL_ARGS = ["--block_out_channels", "8", "16", "--layers_per_block", "1", "--norm_num_groups", "4",
                   "--attention_levels", "1"]
FAST_ARGS = TINY_MODEL_ARGS + ["--train_batch_size", "8", "--eval_batch_size", "4", "--num_inference_steps", "2",
                               "--num_validation_images", "8", "--lr_warmup_steps", "2", "--logger", "none",
                               # One thread: on a busy shared CPU, two OpenMP threads wait on each other
                               # far more than they gain.
                               "--num_threads", "1",
                               # Pinned: `auto` times both precisions, and runs compared bit for bit must agree.
                               "--mixed_precision", "no"]


REPO_ROOT = Path(__file__).resolve().parents[1]
# The environment of a launched run: offline, with the repository importable.
LAUNCH_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}


def launch_command(*train_args, launcher_args=()) -> list[str]:
    """`accelerate launch train_ddpm.py ...` as users run it, with accelerate's own flags (`launcher_args`, e.g.
    `--multi_gpu --num_processes 2`) before the script."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO_ROOT / "accelerate_config.yaml"),
        *map(str, launcher_args),
        str(REPO_ROOT / "train_ddpm.py"),
        *map(str, train_args),
    ]


def launch(*train_args, launcher_args=(), cwd=REPO_ROOT, timeout=600, wait=True, env=None):
    """Run `launch_command` to the end and check it succeeded (or, with `wait=False`, start it in its own
    process group and return the Popen, its output in `stdout`)."""
    env = LAUNCH_ENV if env is None else {**env, "PYTHONPATH": str(REPO_ROOT)}
    command = launch_command(*train_args, launcher_args=launcher_args)
    if not wait:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def weights_of(run_dir: Path) -> dict[str, torch.Tensor]:
    """The saved UNet weights of a finished run, by parameter name."""
    from safetensors.torch import load_file

    return load_file(str(next((Path(run_dir) / "unet").glob("*.safetensors"))))


def blob_images(count: int, size: int, seed: int) -> tuple[list[PIL.Image.Image], list[int]]:
    """White squares (class 0) and bars (class 1) at random places on black, mode "L"."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for index in range(count):
        label = index % 2
        pixels = np.zeros((size, size), dtype=np.uint8)
        top, left = rng.integers(0, size // 2, size=2)
        if label == 0:
            pixels[top:top + size // 3, left:left + size // 3] = 255
        else:
            pixels[top:top + size // 2, left:left + 2] = 255
        images.append(PIL.Image.fromarray(pixels, mode="L"))
        labels.append(label)
    return images, labels


def make_dataset_dict(folder: Path, train: int = 64, test: int = 16, size: int = 16,
                      labelled: bool = True) -> Path:
    """Save a DatasetDict in the project's format (image: Image(), label: ClassLabel) to `folder`."""
    splits = {}
    for name, count, seed in (("train", train, 0), ("test", test, 1)):
        images, labels = blob_images(count, size, seed)
        if labelled:
            features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["□", "|"])})
            splits[name] = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
        else:
            features = datasets.Features({"image": datasets.Image()})
            splits[name] = datasets.Dataset.from_dict({"image": images}, features=features)
    datasets.DatasetDict(splits).save_to_disk(str(folder))
    return folder


def make_image_folder(folder: Path, per_class: int = 10, size: int = 16) -> Path:
    """An `imagefolder` layout: one sub-folder per class, PNG files inside."""
    images, labels = blob_images(2 * per_class, size, seed=2)
    for index, (image, label) in enumerate(zip(images, labels)):
        target = folder / ("square" if label == 0 else "bar")
        target.mkdir(parents=True, exist_ok=True)
        image.save(target / f"{index}.png")
    return folder


def reset_accelerate_state() -> None:
    """Forget this process's Accelerator, so that the next one is built afresh, as in a new launch.

    This is accelerate's own reset for tests: `AccelerateTestCase.tearDown` (accelerate.test_utils) resets
    the `AcceleratorState` and `GradientState` singletons after every test; it is called here from pytest.
    """
    AccelerateTestCase("tearDown").tearDown()


def make_trainer(dataset: str, output_dir: Path, *extra: str) -> Trainer:
    """A `Trainer` on `dataset` with FAST_ARGS and `extra`, built as train_ddpm.py builds it (16 px, one channel)."""
    cfg = parse_config(["--dataset", dataset, "--output_dir", str(output_dir), *FAST_ARGS, *extra])
    accelerator = make_accelerator(cfg, cfg.mixed_precision)
    data = resolve_dataset(cfg.dataset)
    torch.manual_seed(cfg.seed)
    unet = build_unet(cfg, 16, 1, len(data.class_names) if cfg.class_conditional else None)
    return Trainer(cfg, accelerator, unet, build_noise_scheduler(cfg), data, 16, 1)
