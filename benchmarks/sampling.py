"""Compare samplers on a trained model: speed, and closeness to 1000-step DDPM from the same initial noise.

    python -m benchmarks.sampling MODEL [--num_images 16] [--image benchmarks/sampling.png]

Every sampler starts from the same x_T (and, where it draws noise, the same seed). The quality measure is the
mean squared distance, in [0, 1] pixel units, between its images and the 1000-step DDPM images from that x_T.
DDPM is stochastic, so even DDPM-1000 run again with other step noise is not at distance 0: that run is the
first row, the "noise floor" against which the fast samplers are read. Prints a Markdown table; `--image`
also writes all samples, one row per sampler, to look at.
"""

import argparse
from dataclasses import dataclass, field
from typing import Optional

import PIL.Image
import PIL.ImageDraw
import torch
from transformers import HfArgumentParser

from pipelines import CharacterDDPMPipeline, image_grid
from pipelines.generate import parse_class_label
from pipelines.sampling import ModelLoadError, draw, load_pipeline

# (label, sampler name in pipelines.samplers.SAMPLERS, steps, seed for the sampler's own noise)
RUNS = [
    ("DDPM 1000, other step noise", "ddpm", 1000, 1),
    ("DDIM 50", "ddim", 50, 0),
    ("DDIM 100", "ddim", 100, 0),
    ("DPM-Solver++ 10", "dpm++", 10, 0),
    ("DPM-Solver++ 20", "dpm++", 20, 0),
    ("DPM-Solver++ 25", "dpm++", 25, 0),
]
REFERENCE = ("DDPM 1000 (reference)", "ddpm", 1000, 0)


@dataclass
class SamplingBenchmarkArguments:
    """The options of `python -m benchmarks.sampling MODEL`."""

    num_images: int = field(default=16, metadata={"help": "batch size of every run"})
    seed: int = field(default=0, metadata={"help": "seed of the shared initial noise x_T"})
    class_name: Optional[str] = field(default=None, metadata={
        "help": "class-conditional models: the character to draw (default: all classes)"})
    guidance_scale: float = field(default=1.0, metadata={"help": "classifier-free guidance scale"})
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu", metadata={"help": "torch device"})
    image: Optional[str] = field(default=None, metadata={"help": "also write every sampler's images to this PNG"})


def sample(pipe: CharacterDDPMPipeline, sampler: str, steps: int, seed: int, latents: torch.Tensor, **kwargs):
    """Images (B, C, H, W) in [0, 1] from `latents` with `sampler`, and the seconds it took (float32: the
    distances compare samplers, not precisions)."""
    if latents.device.type == "cuda":
        torch.cuda.synchronize()
    drawing = draw(pipe, len(latents), sampler=sampler, num_inference_steps=steps, seed=seed, latents=latents,
                   batch_size=len(latents), autocast=False, **kwargs)
    if latents.device.type == "cuda":
        torch.cuda.synchronize()
    return drawing.images, drawing.seconds


def labelled_rows(rows: list[tuple[str, torch.Tensor]]) -> PIL.Image.Image:
    """One strip of samples per sampler, with its name on the left."""
    strips = [image_grid(images, cols=len(images)).convert("RGB") for _, images in rows]
    label_width, height = 190, strips[0].height
    sheet = PIL.Image.new("RGB", (label_width + strips[0].width, height * len(rows)), "white")
    draw = PIL.ImageDraw.Draw(sheet)
    for index, ((label, _), strip) in enumerate(zip(rows, strips)):
        sheet.paste(strip, (label_width, index * height))
        draw.text((4, index * height + height // 2 - 6), label, fill="black")
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = HfArgumentParser(SamplingBenchmarkArguments, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a saved pipeline folder (from train_ddpm.py) or a Hub model id")
    args, positional = parser.parse_args_into_dataclasses(args=argv)

    try:
        pipe = load_pipeline(positional.model, args.device)
    except ModelLoadError as error:
        parser.error(str(error))
    config = pipe.unet.config
    latents = torch.randn(
        (args.num_images, config.in_channels, config.sample_size, config.sample_size),
        generator=torch.Generator().manual_seed(args.seed),
    ).to(args.device)  # x_T ~ N(0, I), (B, C, H, W), shared by every run
    kwargs = {"guidance_scale": args.guidance_scale}
    if pipe.is_class_conditional:
        kwargs["class_labels"] = parse_class_label(args.class_name, pipe.class_names)
    sample(pipe, "ddim", 2, 0, latents, **kwargs)  # warm-up: first-call allocations are not the sampler's cost

    rows = []  # (label, steps, images, seconds); the reference first
    for label, sampler, steps, seed in [REFERENCE, *RUNS]:
        rows.append((label, steps, *sample(pipe, sampler, steps, seed, latents, **kwargs)))
    _, _, reference, reference_seconds = rows[0]

    print(f"{args.num_images} images of {config.sample_size}x{config.sample_size} on {args.device}, one run\n")
    # UNet calls per batch: one per step (two with guidance), a machine-independent cost next to the timing.
    calls_per_step = 2 if args.guidance_scale != 1.0 else 1
    print("| sampler | UNet calls | images/s | speed-up vs DDPM 1000 | MSD to DDPM 1000 |")
    print("|---|---|---|---|---|")
    for label, steps, images, seconds in rows:
        distance = ((images - reference) ** 2).mean().item()
        print(
            f"| {label} | {steps * calls_per_step} | {args.num_images / seconds:.2f} | "
            f"{reference_seconds / seconds:.1f}x | {distance:.4f} |"
        )
    if args.image:
        labelled_rows([(label, images) for label, _, images, _ in rows]).save(args.image)


if __name__ == "__main__":
    main()
