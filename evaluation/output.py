"""Writing result folders so that a crash never leaves one that looks complete."""

import shutil
from collections.abc import Callable
from pathlib import Path


def write_folder(output_dir: Path, write: Callable[[Path], None]) -> None:
    """Calls `write(staging)` on a fresh folder beside `output_dir`, then renames it to `output_dir`.

    An existing `output_dir` is replaced only once the new one is complete.
    """
    staging = output_dir.with_name(f".{output_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        write(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if output_dir.exists():
        shutil.rmtree(output_dir)
    staging.rename(output_dir)
