"""Turn MNIST IDX files, Hoda `.cdb` files, image folders/zips or rendered glyphs into one dataset format.

`prepare(kind, output_dir=..., **options)` is the Python API; `python -m data_prep KIND ...` the CLI. Both take
the fields of the kind's options dataclass (`OPTIONS[kind]`, a `PrepareOptions`).
"""

from .build import OPTIONS, GlyphsOptions, MnistOptions, PersianOptions, PrepareOptions, prepare
from .errors import DataPrepError
from .push import push_dataset

__all__ = [
    "OPTIONS",
    "DataPrepError",
    "GlyphsOptions",
    "MnistOptions",
    "PersianOptions",
    "PrepareOptions",
    "prepare",
    "push_dataset",
]
