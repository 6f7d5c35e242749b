"""Generate characters with a saved character DDPM: a grid PNG and, optionally, a GIF of the denoising.

    python -m pipelines.generate MODEL --num_images 64 --class_name ب --output grid.png --gif trajectory.gif
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import PIL.Image
import torch
from transformers import HfArgumentParser

from pipelines.fast_inference import inference_autocast
from pipelines.glyph_pipeline import DEFAULT_NUM_INFERENCE_STEPS, GlyphDDPMPipeline, image_grid, save_trajectory_gif
from pipelines.samplers import SAMPLERS, use_sampler
from sharing import first_line


@dataclass
class GenerateArguments:
    """The options of `python -m pipelines.generate MODEL` (the model is the one positional argument)."""

    output: str = field(default="grid.png", metadata={"help": "grid image to write (.png, .jpg, .webp, ...)"})
    num_images: int = field(default=64, metadata={"help": "how many characters to draw"})
    class_name: Optional[str] = field(default=None, metadata={"help": (
        "character to draw, e.g. ب or ۷, or a class index (class-conditional models only; "
        "default: cycle through all classes)")})
    guidance_scale: float = field(default=1.0, metadata={"help": "classifier-free guidance scale; 1 means no guidance"})
    steps: int = field(default=DEFAULT_NUM_INFERENCE_STEPS, metadata={"help": "denoising steps"})
    scheduler: Optional[str] = field(default=None, metadata={
        "choices": sorted(SAMPLERS), "help": "sampler to use instead of the one saved with the model"})
    seed: int = field(default=0, metadata={"help": "random seed (same seed, same images)"})
    cols: Optional[int] = field(default=None, metadata={"help": "images per grid row (default: a near-square grid)"})
    gif: Optional[str] = field(
        default=None, metadata={"help": "also write the denoising trajectory as an animated GIF here"}
    )
    gif_frames: Optional[int] = field(default=None, metadata={"help": (
        "frames in the GIF, at most --steps + 1 (default: every step's image, up to 20)")})
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu", metadata={"help": "torch device"})


# Frames of a GIF when --gif_frames is not given: the start and every step's image, up to this many.
MAX_DEFAULT_GIF_FRAMES = 20


class OneLineErrorParser(HfArgumentParser):
    """Reports a bad argument in one line (no usage dump) and exits with code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> HfArgumentParser:
    """`HfArgumentParser` of `GenerateArguments`, plus the positional model."""
    parser = OneLineErrorParser(
        GenerateArguments,
        prog="python -m pipelines.generate",
        description="Draw characters with a trained character DDPM and save them as one grid image.",
    )
    parser.add_argument("model", help="a folder saved by train_ddpm.py, or a Hub model id")
    return parser


def check_args(parser: HfArgumentParser, args: GenerateArguments, model: str) -> None:
    """Reject impossible arguments with one sentence (exit code 2)."""
    for name in ("num_images", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.cols is not None and args.cols < 1:
        parser.error("--cols must be at least 1")
    extensions = PIL.Image.registered_extensions()
    for flag, path in (("--output", args.output), ("--gif", args.gif)):
        if path is None:
            continue
        suffix = Path(path).suffix.lower()
        if flag == "--gif" and suffix != ".gif" or suffix not in extensions:
            parser.error(f"{flag} {path}: unsupported file type {suffix or '(none)'}; use e.g. .png (or .gif for --gif)")
        if not Path(path).resolve().parent.is_dir():
            parser.error(f"{flag} {path}: folder {Path(path).parent} does not exist")
    if args.gif_frames is None:
        args.gif_frames = min(MAX_DEFAULT_GIF_FRAMES, args.steps + 1)
    if args.gif is not None and not 2 <= args.gif_frames <= args.steps + 1:
        parser.error(f"--gif_frames must be between 2 and --steps + 1 ({args.steps + 1})")
    if not os.path.isdir(model) and model.count("/") != 1:
        parser.error(f"model {model}: no such folder, and not a Hub id (owner/name)")


def parse_class_label(value: str | None, class_names: list[str] | None) -> str | int | None:
    """A class name of the model as is (MNIST's are "0".."9"), other ASCII digits as a class index."""
    if value is None or (class_names is not None and value in class_names):
        return value
    return int(value) if value.isascii() and value.isdigit() else value


def save_atomically(image: PIL.Image.Image, path: str, **save_kwargs) -> None:
    """Write `image` beside `path` under a temporary name, then rename, so no half-written file remains."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.partial")
    image_format = PIL.Image.registered_extensions()[target.suffix.lower()]
    image.save(temporary, format=image_format, **save_kwargs)
    os.replace(temporary, target)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args, positional = parser.parse_args_into_dataclasses(args=argv)
    check_args(parser, args, positional.model)
    try:
        pipe = GlyphDDPMPipeline.from_pretrained(positional.model).to(args.device)
    except (OSError, ValueError) as error:
        parser.error(f"model {positional.model}: cannot load it ({first_line(error)})")
    if args.scheduler:
        use_sampler(pipe, args.scheduler)
    class_label = parse_class_label(args.class_name, pipe.class_names)
    pipe.set_progress_bar_config(disable=True)
    try:
        with inference_autocast(pipe.device):  # bf16 on a CPU with native bf16: faster, same scores
            output = pipe(
                batch_size=args.num_images,
                class_labels=class_label,
                guidance_scale=args.guidance_scale,
                num_inference_steps=args.steps,
                generator=torch.Generator(device="cpu").manual_seed(args.seed),
                output_type="pt",
                # enough recorded steps for the requested frames: 1 + steps // k >= gif_frames
                trajectory_every=max(1, args.steps // (args.gif_frames - 1)) if args.gif else None,
            )
    except ValueError as error:
        parser.error(str(error))
    save_atomically(image_grid(output.images.cpu(), args.cols), args.output)
    if args.gif:
        temporary = Path(args.gif).with_name(f".{Path(args.gif).name}.partial")
        save_trajectory_gif(output.trajectory, temporary, num_frames=args.gif_frames, cols=args.cols)
        os.replace(temporary, args.gif)
    print(f"wrote {args.output}" + (f" and {args.gif}" if args.gif else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
