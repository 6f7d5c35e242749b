"""The named datasets of `python -m data_prep` and `--dataset`: per name, its options, the function that opens its
sources, and its help. A leaf of `data_prep`: `build` (which prepares a named set) and `resolve` (which reads one,
building `glyphs` on first use) both take the names from here, so neither imports the other back.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .glyphs import glyph_source
from .hoda_cdb import cdb_source
from .idx import hub_sources, idx_sources
from .image_folder import image_folder_source
from .options import DEFAULT_MNIST_SOURCE, GlyphsOptions, MnistOptions, PersianOptions, PrepareOptions
from .sources import Source


def looks_like_hub_id(text: str) -> bool:
    """Whether `text` is shaped like a Hub repo id: "name" or "owner/name" of letters, digits, "-", "_", "."."""
    parts = text.split("/")
    return 1 <= len(parts) <= 2 and all(
        part and not part.startswith(".") and part.replace("-", "").replace("_", "").replace(".", "").isalnum()
        for part in parts
    )


def open_glyphs(options: GlyphsOptions) -> list[Source]:
    """The rendered glyphs: one source, made from the bundled fonts."""
    return [glyph_source(options.per_class, options.image_size, options.seed, options.extra_forms)]


def open_mnist(options: MnistOptions) -> list[Source]:
    """A folder of IDX files, or a Hub dataset id."""
    source, image_size = str(options.source), options.image_size
    if Path(source).is_dir():
        return idx_sources(Path(source), image_size)
    if Path(source).exists():
        raise DataError(f"--source {source}: expected a directory holding the MNIST IDX files")
    if not looks_like_hub_id(source):
        raise DataError(f"--source {source}: no such directory (nor a Hub id like {DEFAULT_MNIST_SOURCE})")
    return hub_sources(source, image_size)


def open_persian(options: PersianOptions) -> list[Source]:
    """Each `--source`: a Hoda `.cdb` file, an image folder or a `.zip` of one."""
    sources = []
    paths = [options.source] if isinstance(options.source, (str, os.PathLike)) else options.source
    for path in map(Path, paths):
        if not path.exists():
            raise DataError(f"--source {path}: no such file or directory")
        if path.is_dir() or path.suffix.lower() == ".zip":
            sources.append(image_folder_source(path, options.image_size, layout=options.layout,
                                               numeric_labels=options.numeric_labels,
                                               skip_bad_images=options.skip_bad_images))
        elif path.suffix.lower() == ".cdb":
            sources.append(cdb_source(path, options.image_size))
        else:
            raise DataError(f"--source {path}: unknown format; expected a Hoda .cdb file, an image folder or a .zip "
                            "of one")
    return sources


@dataclass(frozen=True)
class Kind:
    """One named dataset: its options, what opens its sources, and the sub-command's help."""

    options: type[PrepareOptions]
    open_sources: Callable[[PrepareOptions], list[Source]]
    summary: str
    description: str


KINDS: dict[str, Kind] = {
    "mnist": Kind(MnistOptions, open_mnist, "MNIST from IDX files or the Hub", (
        "MNIST from a folder of LeCun's IDX files (either or both train/t10k pairs, gzipped or not) or from a Hub "
        "dataset through datasets.load_dataset. A single pair is split by --test_fraction.")),
    "persian": Kind(PersianOptions, open_persian, "Hoda .cdb files, image folders or zips", (
        "Persian digits and letters from Hoda .cdb files (both layouts), image folders and .zip files of them, "
        "merged into one label space: digits ۰-۹ first, then the letters in Hoda order.")),
    "glyphs": Kind(GlyphsOptions, open_glyphs, "rendered from bundled fonts (offline)", (
        "Persian digits and the 32 letters rendered from matplotlib's DejaVu Sans and DejaVu Sans Mono, with random "
        "affine jitter, stroke width and blur; the same --seed gives the same dataset.")),
}
# The datasets `python -m data_prep` builds and `--dataset` reads by name.
NAMED_DATASETS = tuple(KINDS)
