"""Tiny writers for the input formats of `data_prep`, for tests.

Each writer produces a real file in the documented layout (nothing mocked): IDX files, Hoda `.cdb`
files of both layouts, image folders of the three layouts, and zips of folders.
"""

import csv
import gzip
import struct
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def random_glyphs(n: int, seed: int = 0, min_side: int = 6, max_side: int = 40) -> list[np.ndarray]:
    """`n` random binary crops `(H, W)` bool of varying size, each with ink (a filled random ellipse).

    Args:
        n (`int`): how many.
        seed (`int`): seeds sizes and shapes.
        min_side (`int`) / max_side (`int`): range of heights and widths.

    Returns:
        `list[np.ndarray]`: bool arrays, ink True.
    """
    rng = np.random.default_rng(seed)
    glyphs = []
    for _ in range(n):
        h, w = rng.integers(min_side, max_side + 1, size=2)
        yy, xx = np.mgrid[:h, :w]
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
        ink = ((yy - cy) / (0.45 * h)) ** 2 + ((xx - cx) / (0.45 * w)) ** 2 <= 1
        ink |= rng.random((h, w)) < 0.1
        ink[h // 2, :] = True  # every crop spans its full width
        glyphs.append(ink)
    return glyphs


# --- MNIST IDX -------------------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write a uint8 array as an IDX file (magic 0x0000 08 ndim, big-endian int32 dims, data)."""
    array = np.asarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_mnist_pair(directory: Path, images: np.ndarray, labels: np.ndarray, prefix: str = "t10k", gz: bool = True):
    """Write `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` into `directory`.

    Returns:
        `tuple[Path, Path]`: the images and labels files.
    """
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    return (
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, gz),
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz),
    )


# --- Hoda .cdb -------------------------------------------------------------------------------------


def encode_rle(ink: np.ndarray) -> bytes:
    """Run-length encode a binary image row by row, background first, runs of at most 255.

    A run longer than 255 is written as 255, 0, rest (a zero-length run of the other colour).
    """
    out = bytearray()
    for row in np.asarray(ink, dtype=bool):
        colour, length = False, 0
        for pixel in row:
            if pixel == colour:
                length += 1
                continue
            out += _runs(length)
            colour, length = pixel, 1
        out += _runs(length)
    return bytes(out)


def _runs(length: int) -> bytes:
    pieces = []
    while length > 255:
        pieces += [255, 0]
        length -= 255
    return bytes(pieces + [length])


def write_hoda_digits_cdb(path: Path, images: list[np.ndarray], labels: list[int]) -> Path:
    """Write the Hoda digit layout: 1,024-byte header (sizes 0 = per record), then 0xFF-marked records."""
    counts = np.bincount(labels, minlength=128)[:128]
    header = struct.pack("<HBBBBi", 2005, 8, 4, 0, 0, len(images)) + struct.pack("<128i", *counts) + bytes([0])
    header += b"tiny test file".ljust(256, b"\0") + bytes(245)
    assert len(header) == 1024
    body = bytearray()
    for ink, label in zip(images, labels):
        runs = encode_rle(ink)
        body += struct.pack("<BBBBH", 0xFF, label, ink.shape[1], ink.shape[0], len(runs)) + runs
    path.write_bytes(header + bytes(body))
    return path


def write_hoda_cdb5(path: Path, images: list[np.ndarray], labels: list[int]) -> Path:
    """Write the "CDB 5.0" character layout: 1,280-byte header, then 0xFFFF-marked records."""
    counts = np.bincount(labels, minlength=64)[:64]
    header = struct.pack("<7sHBBhhih", b"CDB 5.0", 2010, 10, 29, 0, 0, len(images), 64)
    header += struct.pack("<64i", *counts) + bytes([0]) + b"tiny test file".ljust(512, b"\0") + bytes(490)
    assert len(header) == 1280
    body = bytearray()
    for ink, label in zip(images, labels):
        runs = encode_rle(ink)
        body += struct.pack("<HHHHHI", 0xFFFF, label, 100, ink.shape[1], ink.shape[0], len(runs)) + runs
    path.write_bytes(header + bytes(body))
    return path


# --- image folders and zips ------------------------------------------------------------------------


def glyph_png(ink: np.ndarray, dark_on_light: bool = True) -> Image.Image:
    """A grey image of a binary crop, by default dark ink on white paper like a scan."""
    paper, pen = (255, 0) if dark_on_light else (0, 255)
    grey = np.pad(np.where(ink, pen, paper), 3, constant_values=paper)  # a margin of paper around the glyph
    return Image.fromarray(grey.astype(np.uint8), mode="L")


def write_image_folder(root: Path, layout: str, items: list[tuple[Image.Image, str]]) -> Path:
    """Write labelled images in one of the three layouts `data_prep` reads.

    Args:
        root (`Path`): the folder to create.
        layout (`str`): "per_sample" (`root/sample_<i>/<label>.png`), "classes" (`root/<label>/<i>.png`) or
            "csv" (`root/images/<i>.png` listed in `root/labels.csv`).
        items (`list[tuple[PIL.Image.Image, str]]`): images and their labels as written in names.

    Returns:
        `Path`: `root`.
    """
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (image, label) in enumerate(items):
        if layout == "per_sample":
            path = root / f"sample_{i:05d}" / f"{label}.png"
        elif layout == "classes":
            path = root / label / f"{i:05d}.png"
        elif layout == "csv":
            path = root / "images" / f"{i:05d}.png"
            rows.append([f"images/{i:05d}.png", label])
        else:
            raise ValueError(f"unknown layout {layout}")
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    if layout == "csv":
        with open(root / "labels.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([["file", "label"], *rows])
    return root


def zip_folder(folder: Path, zip_path: Path, wrap: bool = True) -> Path:
    """Zip `folder`, inside a top-level folder of its name when `wrap` (as zips made by hand usually are)."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder.parent if wrap else folder).as_posix()
                archive.write(path, name)
    return zip_path
