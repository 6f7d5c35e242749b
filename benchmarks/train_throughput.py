"""Training throughput: images/s of each model preset, fp32 vs bf16, the share of time spent loading
data, and a baseline trained the way diffusers' `train_unconditional.py` does it, in one run; or, with
`--data_paths`, the `tiny` model fed by each data path of train_ddpm.py at several resolutions.

    python benchmarks/train_throughput.py [--dataset glyphs] [--presets tiny small base] [--rounds 3]
    python benchmarks/train_throughput.py --data_paths --dataset mnist --resolutions 28 64 --workers 0 1 2

The data paths: the split decoded once into memory (what train_ddpm.py does when it fits in
`--max_in_memory_gb`), decoded per batch from the map-style dataset in 0..N DataLoader workers (larger data),
and streamed (`--streaming`) from a parquet copy of the split, as a Hub dataset is read.

The baseline is the `tiny` architecture fed like the diffusers example: images converted to 3-channel
RGB and transformed per sample, every step, in a DataLoader (resize, center crop, to tensor, normalise;
done here with PIL + numpy since torchvision is not a dependency). Ours: 1 channel, the split decoded
once into a uint8 tensor, a batch is one index (training/data.py). Configurations are measured in
interleaved rounds (each round times every configuration once) and the median is reported, so that
load from other processes on a shared machine hits all of them alike.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import PIL.Image
import torch
from transformers import HfArgumentParser

from data_prep.arguments import DataArguments
from data_prep.resolve import resolve_dataset
from training.config import TrainConfig
from training.data import (
    DecodedImages,
    EpochBatchSampler,
    TensorImages,
    cached_images,
    first_image,
    image_channels,
    make_loader,
    native_resolution,
    to_model_range,
)
from training.losses import diffusion_loss, training_target
from training.model import build_noise_scheduler, build_unet, count_parameters, learning_rate
from training.streaming import StreamedBatches


def diffusers_example_loader(split, image_column: str, resolution: int, batch_size: int, workers: int):
    """The diffusers example's input pipeline: per-sample RGB PIL transforms inside a shuffling DataLoader."""

    def transform(batch):
        tensors = []
        for image in batch[image_column]:
            image = image.convert("RGB").resize((resolution, resolution), PIL.Image.BILINEAR)  # Resize
            width, height = image.size  # CenterCrop (a no-op at this size, but still paid for)
            left, top = (width - resolution) // 2, (height - resolution) // 2
            image = image.crop((left, top, left + resolution, top + resolution))
            pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0  # ToTensor, (3, H, W)
            tensors.append(torch.from_numpy((pixels - 0.5) / 0.5))  # Normalize([0.5], [0.5])
        return {"input": tensors}

    dataset = split.select_columns([image_column]).with_transform(transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                       collate_fn=lambda rows: torch.stack([r["input"] for r in rows]))


class Setup:
    """One configuration: a model, its optimizer, an endless batch iterator, precision and threads."""

    def __init__(self, name, preset, channels, batches, resolution, precision, threads, device, num_classes=None,
                 attention_levels=None):
        cfg = TrainConfig(model_preset=preset, attention_levels=attention_levels)
        torch.manual_seed(0)
        self.name, self.precision, self.threads, self.device = name, precision, threads, device
        self.unet = build_unet(cfg, resolution, channels, num_classes).to(device).train()
        self.optimizer = torch.optim.AdamW(self.unet.parameters(), lr=learning_rate(cfg))
        self.scheduler = build_noise_scheduler(cfg)
        self.batches, self.params = batches, count_parameters(self.unet)
        self.images, self.seconds, self.data_seconds = [], [], []

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)

    def measure(self, steps: int) -> None:
        """Time `steps` training steps; record images/s and the data-loading share."""
        torch.set_num_threads(self.threads)
        images, data_time = 0, 0.0
        self._sync()
        start = time.perf_counter()
        for _ in range(steps):
            fetched = time.perf_counter()
            clean = next(self.batches).to(self.device, non_blocking=True)  # (B, C, H, W) in [-1, 1]
            self._sync()
            data_time += time.perf_counter() - fetched
            noise = torch.randn_like(clean)
            t = torch.randint(0, self.scheduler.config.num_train_timesteps, (clean.shape[0],), device=self.device)
            with self.autocast():
                prediction = self.unet(self.scheduler.add_noise(clean, noise, t), t).sample
            loss = diffusion_loss(prediction, training_target(self.scheduler, clean, noise, t), self.scheduler, t)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            images += clean.shape[0]
        self._sync()
        elapsed = time.perf_counter() - start
        self.images.append(images / elapsed)
        self.data_seconds.append(data_time / elapsed)

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def forever(loader, convert=None):
    """Cycle through a loader's epochs; `convert` turns a raw batch into model-range images."""
    epoch = 0
    while True:
        if hasattr(loader.batch_sampler, "set_position"):
            loader.batch_sampler.set_position(epoch)
        for batch in loader:
            yield convert(batch) if convert else batch
        epoch += 1


@contextlib.contextmanager
def other_jobs(count: int):
    """`count` busy-loop processes (other jobs on the machine) while the block runs; each ends by itself within
    an hour if this one is killed."""
    script = "import time\nend = time.time() + 3600\nwhile time.time() < end: pass"
    spinners = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def parquet_copy(data, folder: Path, shards: int = 4) -> Path:
    """The train and test splits written as parquet shards (the files a Hub dataset is served as)."""
    for name, split in data.splits.items():
        for index in range(shards):
            split.shard(shards, index, contiguous=True).to_parquet(str(folder / f"{name}-{index:05d}.parquet"))
    return folder


def data_path_setups(args, data, device, precision: str, threads: int, folder: Path) -> list[Setup]:
    """The `tiny` model fed in memory, per batch (each of `args.workers`) and streamed, at each resolution."""
    split, column = data.splits["train"], data.image_column
    channels = image_channels(first_image(split, column))
    stream = resolve_dataset(str(parquet_copy(data, folder)), streaming=True).splits["train"]
    def feed(dataset, workers=0):
        loader = make_loader(dataset, EpochBatchSampler(len(split), args.batch_size, seed=0), workers)
        return forever(loader, lambda batch: to_model_range(batch[0]))

    setups = []
    for resolution in args.resolutions:
        def setup(name, batches, resolution=resolution):  # called within this iteration only
            return Setup(f"{name}, {resolution} px", "tiny", channels, batches, resolution, precision, threads, device)

        memory = TensorImages(cached_images(split, column, resolution, channels).to(device), None)
        setups.append(setup("in memory", feed(memory)))
        decoded = DecodedImages(split, column, None, resolution, channels, center_crop=False)
        setups += [setup(f"per batch, {workers} workers", feed(decoded, workers)) for workers in args.workers]
        streamed = StreamedBatches(stream, column, None, resolution, channels, False, args.batch_size, seed=0,
                                   shuffle_buffer_size=10_000)
        setups.append(setup("streamed (parquet)", (to_model_range(images) for images, _ in streamed.from_step(0))))
    return setups


@dataclass(kw_only=True)
class ThroughputArguments(DataArguments):
    """The options of `python -m benchmarks.train_throughput`."""

    dataset: str = field(default="glyphs", metadata={"help": "any train_ddpm.py --dataset value"})
    presets: list[str] = field(default_factory=lambda: ["tiny", "small", "base"], metadata={
        "help": "model presets to time"})
    batch_size: int = field(default=128, metadata={"help": "images per step"})
    steps: int = field(default=3, metadata={"help": "timed steps per configuration per round"})
    rounds: int = field(default=3, metadata={"help": "interleaved rounds; the median is reported"})
    threads: list[int] = field(default_factory=lambda: [2, 1], metadata={
        "help": "CPU thread counts to compare for tiny fp32 (the first is used for the rest)"})
    precisions: Optional[list[str]] = field(default=None, metadata={
        "help": "default: fp32 bf16 on CPU, fp32 bf16 fp16 on CUDA"})
    busy: int = field(default=0, metadata={
        "help": "run this many CPU-bound processes alongside, as other jobs on a shared machine"})
    data_paths: bool = field(default=False, metadata={
        "help": "compare the data paths (in memory, per batch, streamed) instead of the presets"})
    resolutions: list[int] = field(default_factory=lambda: [28, 64], metadata={"help": "with --data_paths"})
    workers: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={
        "help": "with --data_paths: DataLoader workers of the per-batch path"})


def main(argv: list[str] | None = None) -> None:
    (args,) = HfArgumentParser(ThroughputArguments, description=__doc__.split("\n\n")[0]).parse_args_into_dataclasses(
        args=argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precisions = args.precisions or (["fp32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"])
    data = resolve_dataset(args.dataset, args.data_dir)
    split = data.splits["train"]
    first = first_image(split, data.image_column)
    resolution, channels = native_resolution(first), image_channels(first)
    ours = TensorImages(cached_images(split, data.image_column, resolution, channels).to(device), None)
    threads = args.threads[0]

    def our_batches():
        sampler = EpochBatchSampler(len(ours), args.batch_size, seed=0)
        return forever(make_loader(ours, sampler), lambda batch: to_model_range(batch[0]))

    if args.data_paths:
        folder = Path(tempfile.mkdtemp(prefix="stream-"))
        try:
            setups = data_path_setups(args, data, device, precisions[0], threads, folder)
            measure_and_print(setups, args, f"{len(split)} training images, device {device}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    baseline_loader = diffusers_example_loader(split, data.image_column, resolution, args.batch_size, 0)
    setups = [Setup("diffusers-example baseline (tiny, 3 ch, per-step PIL)", "tiny", 3, forever(baseline_loader),
                    resolution, "fp32", threads, device)]
    for preset in args.presets:
        for precision in precisions:
            setups.append(Setup(f"{preset}", preset, channels, our_batches(), resolution, precision, threads, device))
        if preset == "tiny":
            for precision in precisions[:2]:  # the previous tiny preset, with attention at 7x7
                setups.append(Setup("tiny + 7x7 attention", preset, channels, our_batches(), resolution, precision,
                                    threads, device, attention_levels=(2,)))
        if preset == "tiny" and device.type == "cpu":
            for other in args.threads[1:]:
                for precision in precisions[:2]:
                    setups.append(Setup("tiny", preset, channels, our_batches(), resolution, precision, other, device))

    measure_and_print(setups, args, f"{len(split)} training images, {resolution} px, device {device}")


def measure_and_print(setups: list[Setup], args, what: str) -> None:
    """Time every setup in interleaved rounds and print the table (speeds relative to the first setup)."""
    with other_jobs(args.busy):
        for setup in setups:  # warm-up: first-call allocations and kernel selection
            setup.measure(1)
            setup.images.clear(), setup.data_seconds.clear()
        for round_index in range(args.rounds):
            for setup in setups:
                setup.measure(args.steps)
            print(f"round {round_index + 1}/{args.rounds} done", flush=True)

    reference = statistics.median(setups[0].images)
    print(f"\n{what}, batch {args.batch_size}, {args.rounds} rounds x {args.steps} steps, medians, {args.busy} "
          f"busy-loop process(es) alongside\n")
    print(f"| configuration | params | precision | threads | images/s | waiting for data | vs {setups[0].name} |")
    print("|---|---|---|---|---|---|---|")
    for setup in setups:
        speed = statistics.median(setup.images)
        print(f"| {setup.name} | {setup.params / 1e6:.2f}M | {setup.precision} | "
              f"{setup.threads if setup.device.type == 'cpu' else '-'} | {speed:.1f} | "
              f"{100 * statistics.median(setup.data_seconds):.1f}% | {speed / reference:.2f}x |")


if __name__ == "__main__":
    main()
