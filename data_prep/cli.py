"""Command line: `python -m data_prep {mnist,persian,glyphs} [--output_dir DIR] [flags]`.

Each sub-command's flags are the fields of its options dataclass (`data_prep.build.OPTIONS`), parsed by
transformers' `HfArgumentParser` with the help texts of the fields' metadata.
"""

import argparse
import logging
import shlex
import sys
import time

from transformers import HfArgumentParser

from .build import OPTIONS, prepare
from .errors import DataPrepError

logger = logging.getLogger("data_prep")

# Per kind: the sub-command's one-line help, and its description.
_KINDS = {
    "mnist": (
        "MNIST from IDX files or the Hub",
        "MNIST from a folder of LeCun's IDX files (either or both train/t10k pairs, gzipped or not) or from a Hub "
        "dataset through datasets.load_dataset. A single pair is split by --test_fraction.",
    ),
    "persian": (
        "Hoda .cdb files, image folders or zips",
        "Persian digits and letters from Hoda .cdb files (both layouts), image folders and .zip files of them, "
        "merged into one label space: digits ۰-۹ first, then the letters in Hoda order.",
    ),
    "glyphs": (
        "rendered from bundled fonts (offline)",
        "Persian digits and the 32 letters rendered from matplotlib's DejaVu Sans and DejaVu Sans Mono, with random "
        "affine jitter, stroke width and blur; the same --seed gives the same dataset.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The parser with one sub-command per kind of source, each an `HfArgumentParser` of the kind's options."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep",
        description="Convert handwritten-character sources into a Hugging Face DatasetDict (splits train/test, "
        "features image: Image() in mode L, label: ClassLabel named by the characters) plus a dataset card.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND", parser_class=HfArgumentParser)
    for kind, (summary, description) in _KINDS.items():
        kinds.add_parser(kind, dataclass_types=OPTIONS[kind], help=summary, description=description)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad input)."""
    argv = sys.argv[1:] if argv is None else argv
    options = vars(build_parser().parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    kind = options.pop("kind")
    started = time.perf_counter()
    try:
        dataset_dict = prepare(kind, command=shlex.join(["python", "-m", "data_prep", *argv]), **options)
    except DataPrepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    names = dataset_dict["train"].features["label"].names
    logger.info(
        "wrote %s: train %d, test %d, %d classes (%.1f s)",
        options["output_dir"] or f"data/{kind}",
        len(dataset_dict["train"]),
        len(dataset_dict["test"]),
        len(names),
        time.perf_counter() - started,
    )
    return 0
