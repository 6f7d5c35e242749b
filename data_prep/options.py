"""The options of `python -m data_prep KIND` and `prepare(kind, ...)`: one dataclass per kind, the CLI flags
generated from their fields (`HfArgumentParser`), each field's help in its metadata."""

from dataclasses import dataclass, field
from typing import Optional

from sharing import HubArguments

from .classes import NUMERIC_TABLES
from .errors import DataError
from .image_folder import LAYOUTS

DEFAULT_MNIST_SOURCE = "ylecun/mnist"


@dataclass(kw_only=True)
class PrepareOptions(HubArguments):
    """The options of every kind; `prepare(kind, **options)` and `python -m data_prep KIND` take the fields of the
    kind's subclass (`OPTIONS[kind]`), with their help in the field metadata."""

    output_dir: Optional[str] = field(default=None, metadata={"help": (
        "where the dataset (save_to_disk) and its README.md go; default data/<kind>, where train_ddpm.py "
        "--dataset <kind> reads it")})
    image_size: int = field(default=28, metadata={"help": "output side in pixels; 28 keeps MNIST pixel-identical"})
    test_fraction: float = field(
        default=0.1, metadata={"help": "per-class share of the test split, for sources that do not come split"}
    )
    max_samples: Optional[int] = field(
        default=None, metadata={"help": "keep a seeded random subset of this many images (quick runs)"}
    )
    seed: int = field(default=0, metadata={"help": "seeds the subset, the split and the rendering"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing dataset in --output_dir"})
    def check(self) -> None:
        """Cross-argument checks; raise `DataError` with a sentence naming the argument."""
        if not 8 <= self.image_size <= 1024:
            raise DataError(f"--image_size {self.image_size}: choose a size between 8 and 1024")
        if not 0 < self.test_fraction < 1:
            raise DataError(f"--test_fraction {self.test_fraction}: must be between 0 and 1 (exclusive)")
        if self.max_samples is not None and self.max_samples < 2:
            raise DataError(f"--max_samples {self.max_samples}: must be at least 2 (one train, one test image)")
        if (problem := self.hub_problem()) is not None:
            raise DataError(problem)


@dataclass(kw_only=True)
class MnistOptions(PrepareOptions):
    """MNIST from a folder of IDX files or a Hub dataset."""

    source: str = field(default=DEFAULT_MNIST_SOURCE, metadata={"help": "a folder of IDX files, or a Hub dataset id"})


@dataclass(kw_only=True)
class PersianOptions(PrepareOptions):
    """Persian digits and letters from Hoda `.cdb` files, image folders and zips of them."""

    source: list[str] = field(metadata={"help": ".cdb files, image folders or zips", "metavar": "PATH"})
    layout: str = field(default="auto", metadata={"choices": LAYOUTS, "help": (
        "image folder layout: per_sample (<root>/<any>/<label>.png), classes (<root>/<class>/*.png), "
        "csv (labels.csv with file,label rows); auto detects it")})
    numeric_labels: str = field(default="persian", metadata={"choices": tuple(NUMERIC_TABLES), "help": (
        "what a number in a folder or file name means: persian = 0-9 digits then 10-45 letters; "
        "letters = the 0-35 labels of the Hoda character set")})
    skip_bad_images: bool = field(
        default=False, metadata={"help": "skip unreadable images (and report how many) instead of failing"}
    )

    def check(self) -> None:
        super().check()
        if not self.source:
            raise DataError("--source: persian needs at least one .cdb file, image folder or zip")
        if self.layout not in LAYOUTS:
            raise DataError(f"--layout {self.layout}: choose one of {', '.join(LAYOUTS)}")
        if self.numeric_labels not in NUMERIC_TABLES:
            raise DataError(f"--numeric_labels {self.numeric_labels}: choose one of {', '.join(NUMERIC_TABLES)}")


@dataclass(kw_only=True)
class GlyphsOptions(PrepareOptions):
    """Persian characters rendered from bundled fonts."""

    per_class: int = field(default=200, metadata={"help": "images per class"})
    extra_forms: bool = field(
        default=False, metadata={"help": "add the four extra Hoda forms ئـ آ هـ ـه (46 classes, as Hoda)"}
    )

    def check(self) -> None:
        super().check()
        if self.per_class < 1:
            raise DataError(f"--per_class {self.per_class}: must be at least 1")
