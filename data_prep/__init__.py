"""Turn MNIST IDX files, Hoda `.cdb` files, image folders/zips or rendered glyphs into one dataset format.

`prepare(kind, output_dir=..., **options)` is the Python API; `python -m data_prep KIND ...` the CLI.
"""

from .build import PrepareOptions, prepare
from .errors import DataPrepError
from .push import push_dataset

__all__ = ["DataPrepError", "PrepareOptions", "prepare", "push_dataset"]
