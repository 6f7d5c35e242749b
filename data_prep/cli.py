"""Command line: `python -m data_prep {mnist,persian,glyphs} [--output_dir DIR] [flags]`.

Each sub-command's flags are the fields of its options dataclass (`data_prep.registry.KINDS`), parsed by
transformers' `HfArgumentParser` with the help texts of the fields' metadata.
"""

import argparse
import logging
import shlex
import sys
import time

from transformers import HfArgumentParser

from .build import prepare
from .errors import DataError
from .registry import KINDS

logger = logging.getLogger("data_prep")

def build_parser() -> argparse.ArgumentParser:
    """The parser with one sub-command per kind of source, each an `HfArgumentParser` of the kind's options."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep",
        description="Convert handwritten-character sources into a Hugging Face DatasetDict (splits train/test, "
        "features image: Image() in mode L, label: ClassLabel named by the characters) plus a dataset card.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND", parser_class=HfArgumentParser)
    for name, kind in KINDS.items():
        kinds.add_parser(name, dataclass_types=kind.options, help=kind.summary, description=kind.description)
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
    except DataError as error:
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
