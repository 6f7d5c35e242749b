"""Generate characters with a saved character DDPM: a grid PNG and, optionally, a GIF of the denoising.

    python -m pipelines.generate MODEL --num_images 64 --class_name ب --output grid.png --gif trajectory.gif
    python -m pipelines.generate MODEL --sampler ddpm --num_inference_steps 1000 --seed 3
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import PIL.Image
import torch
from transformers import HfArgumentParser

from pipelines.character_pipeline import image_grid, save_trajectory_gif
from pipelines.sampling import ModelLoadError, SamplingArguments, default_steps, draw, load_pipeline


@dataclass(kw_only=True)
class GenerateArguments(SamplingArguments):
    """The options of `python -m pipelines.generate MODEL` (the model is the one positional argument); the
    sampling flags (`--sampler`, `--num_inference_steps`, `--guidance_scale`, `--seed`) are `SamplingArguments`."""

    output: str = field(default="grid.png", metadata={"help": "grid image to write (.png, .jpg, .webp, ...)"})
    num_images: int = field(default=64, metadata={"help": "how many characters to draw"})
    class_name: Optional[str] = field(default=None, metadata={"help": (
        "character to draw, e.g. ب or ۷, or a class index (class-conditional models only; "
        "default: cycle through all classes)")})
    cols: Optional[int] = field(default=None, metadata={"help": "images per grid row (default: a near-square grid)"})
    gif: Optional[str] = field(
        default=None, metadata={"help": "also write the denoising trajectory as an animated GIF here"}
    )
    gif_frames: Optional[int] = field(default=None, metadata={"help": (
        "frames in the GIF, at most --num_inference_steps + 1 (default: every step's image, up to 20)")})
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
    if (problem := args.sampling_problem()) is not None:
        parser.error(problem)
    if args.num_images < 1:
        parser.error("--num_images must be at least 1")
    if args.cols is not None and args.cols < 1:
        parser.error("--cols must be at least 1")
    extensions = PIL.Image.registered_extensions()
    for flag, path in (("--output", args.output), ("--gif", args.gif)):
        if path is None:
            continue
        suffix = Path(path).suffix.lower()
        if flag == "--gif" and suffix != ".gif" or suffix not in extensions:
            parser.error(
                f"{flag} {path}: unsupported file type {suffix or '(none)'}; use e.g. .png (or .gif for --gif)"
            )
        if not Path(path).resolve().parent.is_dir():
            parser.error(f"{flag} {path}: folder {Path(path).parent} does not exist")
    if not os.path.isdir(model) and model.count("/") != 1:
        parser.error(f"model {model}: no such folder, and not a Hub id (owner/name)")


def check_gif_frames(parser: HfArgumentParser, args: GenerateArguments, steps: int) -> None:
    """Default --gif_frames to one frame per step (at most 20), and reject more frames than steps + 1."""
    if args.gif_frames is None:
        args.gif_frames = min(MAX_DEFAULT_GIF_FRAMES, steps + 1)
    if args.gif is not None and not 2 <= args.gif_frames <= steps + 1:
        parser.error(f"--gif_frames must be between 2 and --num_inference_steps + 1 ({steps + 1})")


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
        pipe = load_pipeline(positional.model, args.device)
    except ModelLoadError as error:
        parser.error(str(error))
    steps = args.num_inference_steps or default_steps(pipe, args.sampler)
    check_gif_frames(parser, args, steps)
    try:
        drawing = draw(pipe, args.num_images, class_labels=parse_class_label(args.class_name, pipe.class_names),
                       **{**args.draw_options(), "num_inference_steps": steps}, batch_size=args.num_images,
                       gif_frames=args.gif_frames if args.gif else None)
    except ValueError as error:
        parser.error(str(error))
    save_atomically(image_grid(drawing.images, args.cols), args.output)
    if args.gif:
        temporary = Path(args.gif).with_name(f".{Path(args.gif).name}.partial")
        save_trajectory_gif(drawing.trajectory, temporary, num_frames=args.gif_frames, cols=args.cols)
        os.replace(temporary, args.gif)
    print(f"wrote {args.output}" + (f" and {args.gif}" if args.gif else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
