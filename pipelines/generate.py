"""Generate characters with a saved glyph DDPM: a grid PNG and, optionally, a GIF of the denoising.

    python -m pipelines.generate MODEL --num_images 64 --class_name ب --output grid.png --gif trajectory.gif
"""

import argparse
import os
import sys
from pathlib import Path

import PIL.Image
import torch

from pipelines.glyph_pipeline import DEFAULT_NUM_INFERENCE_STEPS, GlyphDDPMPipeline, image_grid, save_trajectory_gif
from pipelines.fast_inference import inference_autocast
from pipelines.samplers import SAMPLERS, use_sampler


class OneLineErrorParser(argparse.ArgumentParser):
    """Reports a bad argument in one line (no usage dump) and exits with code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m pipelines.generate",
        description="Draw characters with a trained glyph DDPM and save them as one grid image.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("model", help="a folder saved by train_ddpm.py, or a Hub model id")
    parser.add_argument("--output", default="grid.png", help="grid image to write (.png, .jpg, .webp, ...)")
    parser.add_argument("--num_images", type=int, default=64, help="how many characters to draw")
    parser.add_argument(
        "--class_name",
        help="character to draw, e.g. ب or ۷, or a class index (class-conditional models only; "
        "default: cycle through all classes)",
    )
    parser.add_argument(
        "--guidance_scale", type=float, default=1.0, help="classifier-free guidance scale; 1 means no guidance"
    )
    parser.add_argument("--steps", type=int, default=DEFAULT_NUM_INFERENCE_STEPS, help="denoising steps")
    parser.add_argument(
        "--scheduler", choices=sorted(SAMPLERS), help="sampler to use instead of the one saved with the model"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same images)")
    parser.add_argument("--cols", type=int, help="images per grid row (default: a near-square grid)")
    parser.add_argument("--gif", help="also write the denoising trajectory as an animated GIF here")
    parser.add_argument("--gif_frames", type=int, default=20, help="frames in the GIF")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
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
    if args.gif is not None and not 2 <= args.gif_frames <= args.steps + 1:
        parser.error(f"--gif_frames must be between 2 and --steps + 1 ({args.steps + 1})")
    if not os.path.isdir(args.model) and args.model.count("/") != 1:
        parser.error(f"model {args.model}: no such folder, and not a Hub id (owner/name)")


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
    args = parser.parse_args(argv)
    check_args(parser, args)
    try:
        pipe = GlyphDDPMPipeline.from_pretrained(args.model).to(args.device)
    except (OSError, ValueError) as error:
        parser.error(f"model {args.model}: cannot load it ({str(error).splitlines()[0]})")
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
