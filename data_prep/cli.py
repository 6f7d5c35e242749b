"""Command line: `python -m data_prep {mnist,persian,glyphs} --output_dir DIR [flags]`."""

import argparse
import logging
import shlex
import sys
import time

from .build import DEFAULT_MNIST_SOURCE, PrepareOptions, prepare
from .classes import NUMERIC_TABLES
from .errors import DataPrepError
from .image_folder import LAYOUTS

logger = logging.getLogger("data_prep")
_DEFAULTS = PrepareOptions()


def _shared_flags() -> argparse.ArgumentParser:
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--output_dir", required=True, help="where the dataset (save_to_disk) and its README.md go")
    shared.add_argument("--image_size", type=int, default=_DEFAULTS.image_size, help="output side in pixels")
    shared.add_argument(
        "--test_fraction",
        type=float,
        default=_DEFAULTS.test_fraction,
        help="per-class share of the test split, for sources that do not come split",
    )
    shared.add_argument("--max_samples", type=int, help="keep a seeded random subset of this many images (quick runs)")
    shared.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="seeds the subset, the split and the rendering")
    shared.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --output_dir")
    shared.add_argument("--push_to_hub", metavar="REPO_ID", help="also push the dataset and its card to this Hub repo")
    shared.add_argument("--private", action="store_true", help="create the Hub repo private (with --push_to_hub)")
    return shared


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with one subcommand per kind of source."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep",
        description="Convert handwritten-character sources into a Hugging Face DatasetDict (splits train/test, "
        "features image: Image() in mode L, label: ClassLabel named by the characters) plus a dataset card.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    formatter = argparse.ArgumentDefaultsHelpFormatter
    shared = _shared_flags()

    mnist = kinds.add_parser(
        "mnist", parents=[shared], formatter_class=formatter, help="MNIST from IDX files or the Hub",
        description="MNIST from a folder of LeCun's IDX files (either or both train/t10k pairs, gzipped or not) "
        "or from a Hub dataset through datasets.load_dataset. A single pair is split by --test_fraction.",
    )
    mnist.add_argument("--source", default=DEFAULT_MNIST_SOURCE, help="a folder of IDX files, or a Hub dataset id")

    persian = kinds.add_parser(
        "persian", parents=[shared], formatter_class=formatter, help="Hoda .cdb files, image folders or zips",
        description="Persian digits and letters from Hoda .cdb files (both layouts), image folders and .zip files "
        "of them, merged into one label space: digits ۰-۹ first, then the letters in Hoda order.",
    )
    persian.add_argument("--source", nargs="+", required=True, metavar="PATH", help=".cdb files, image folders or zips")
    persian.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=_DEFAULTS.layout,
        help="image folder layout: per_sample (<root>/<any>/<label>.png), classes (<root>/<class>/*.png), "
        "csv (labels.csv with file,label rows); auto detects it",
    )
    persian.add_argument(
        "--numeric_labels",
        choices=tuple(NUMERIC_TABLES),
        default=_DEFAULTS.numeric_labels,
        help="what a number in a folder or file name means: persian = 0-9 digits then 10-45 letters; "
        "letters = the 0-35 labels of the Hoda character set",
    )
    persian.add_argument(
        "--skip_bad_images", action="store_true", help="skip unreadable images (and report how many) instead of failing"
    )

    glyphs = kinds.add_parser(
        "glyphs", parents=[shared], formatter_class=formatter, help="rendered from bundled fonts (offline)",
        description="Persian digits and the 32 letters rendered from matplotlib's DejaVu Sans and DejaVu Sans Mono, "
        "with random affine jitter, stroke width and blur; the same --seed gives the same dataset.",
    )
    glyphs.add_argument("--per_class", type=int, default=_DEFAULTS.per_class, help="images per class")
    glyphs.add_argument(
        "--extra_forms", action="store_true", help="add the four extra Hoda forms ئـ آ هـ ـه (46 classes, as Hoda)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad input)."""
    argv = sys.argv[1:] if argv is None else argv
    args = vars(build_parser().parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    kind, output_dir, overwrite = args.pop("kind"), args.pop("output_dir"), args.pop("overwrite")
    started = time.perf_counter()
    try:
        dataset_dict = prepare(
            kind,
            output_dir=output_dir,
            overwrite=overwrite,
            command=shlex.join(["python", "-m", "data_prep", *argv]),
            **args,
        )
    except DataPrepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    names = dataset_dict["train"].features["label"].names
    logger.info(
        "wrote %s: train %d, test %d, %d classes (%.1f s)",
        output_dir,
        len(dataset_dict["train"]),
        len(dataset_dict["test"]),
        len(names),
        time.perf_counter() - started,
    )
    return 0
