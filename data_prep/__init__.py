"""Turn MNIST IDX files, Hoda `.cdb` files, image folders/zips or rendered glyphs into one dataset format.

`prepare(kind, output_dir=..., **options)` is the Python API; `python -m data_prep KIND ...` the CLI. Both take
the fields of the kind's options dataclass (`OPTIONS[kind]`, a `PrepareOptions`).
`data_prep.resolve.resolve_dataset(dataset)` turns any `--dataset` value (a named set, a `save_to_disk`
folder, an image folder or a Hub id) into train/test splits, for every command that reads data.
"""

from .build import OPTIONS, prepare
from .errors import DataError, DataPrepError
from .options import GlyphsOptions, MnistOptions, PersianOptions, PrepareOptions
from .push import push_dataset

__all__ = [
    "OPTIONS",
    "DataError",
    "DataPrepError",
    "GlyphsOptions",
    "MnistOptions",
    "PersianOptions",
    "PrepareOptions",
    "prepare",
    "push_dataset",
]
