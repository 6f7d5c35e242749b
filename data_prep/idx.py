"""MNIST from LeCun's IDX files (gzipped or not) or from a Hub dataset such as `ylecun/mnist`."""

import gzip
import re
import struct
import zlib
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

from sharing import first_line

from .classes import MNIST_CLASSES
from .errors import DataError
from .normalize import resize_square
from .sources import Source, file_provenance

MNIST_LICENSE = "cc-by-sa-3.0"
# IDX magic: two zero bytes, the type code 0x08 (unsigned byte) and the number of dimensions.
_IDX_MAGIC = {1: b"\x00\x00\x08\x01", 3: b"\x00\x00\x08\x03"}
_SPLITS = {"train": "train", "t10k": "test"}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes, checking its header and that it ends exactly after the data.

    Args:
        path (`Path`): the file, gzipped (by magic bytes) or not.
        ndim (`int`): 3 for images, 1 for labels.

    Returns:
        `np.ndarray`: uint8, shape `(N, 28, 28)` for images or `(N,)` for labels.
    """
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read or decompress the file ({error}); re-download it") from None
    if raw[:4] != _IDX_MAGIC[ndim]:
        raise DataError(f"{path}: not an IDX file of {ndim}-D unsigned bytes (bad magic {raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; re-download the file")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"{path}: IDX header promises shape {shape} ({expected:,} bytes) but the file has "
            f"{len(raw):,} bytes; it is truncated or corrupt, re-download it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(directory: Path, prefix: str, what: str, ndim: int) -> Path | None:
    # Accepts LeCun's names and the common variant with a dot: train-images-idx3-ubyte, train-images.idx3-ubyte.
    pattern = re.compile(rf"{prefix}-{what}[.-]idx{ndim}-ubyte(\.gz)?")
    matches = sorted(p for p in directory.iterdir() if pattern.fullmatch(p.name))
    return matches[0] if matches else None


def idx_sources(directory: Path, image_size: int) -> list[Source]:
    """One source per train/test pair of IDX files present in `directory`.

    Args:
        directory (`Path`): a folder holding `train-*` and/or `t10k-*` image and label files.
        image_size (`int`): output side; 28 keeps the MNIST pixels unchanged.

    Returns:
        `list[Source]`: with `split` set to "train" or "test".
    """
    sources = []
    for prefix, split in _SPLITS.items():
        images_path = _find(directory, prefix, "images", 3)
        labels_path = _find(directory, prefix, "labels", 1)
        if images_path is None and labels_path is None:
            continue
        if images_path is None or labels_path is None:
            found, missing = (images_path, "labels") if labels_path is None else (labels_path, "images")
            missing_name = f"{prefix}-{missing}-idx{3 if missing == 'images' else 1}-ubyte[.gz]"
            raise DataError(f"{found}: found, but its {missing} file {missing_name} is missing from {directory}")
        images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
        if len(images) != len(labels):
            raise DataError(
                f"{images_path}: {len(images):,} images but {labels_path.name} has {len(labels):,} labels; "
                "the two files must come from the same distribution"
            )
        if labels.size and labels.max() >= len(MNIST_CLASSES):
            raise DataError(f"{labels_path}: label {labels.max()} is not a known class (MNIST labels are 0-9)")
        sources.append(
            Source(
                name=str(images_path),
                kind="MNIST IDX",
                class_names=list(MNIST_CLASSES),
                num_examples=len(images),
                read=_idx_reader(images, labels, image_size),
                split=split,
                license=MNIST_LICENSE,
                provenance={**file_provenance(images_path), "labels": labels_path.name},
            )
        )
    if not sources:
        raise DataError(
            f"{directory}: no MNIST IDX files found (expected train-images-idx3-ubyte[.gz] and "
            "train-labels-idx1-ubyte[.gz] and/or the t10k-* pair)"
        )
    return sources


def _idx_reader(images: np.ndarray, labels: np.ndarray, image_size: int):
    def read(select=None):
        for i in range(len(images)) if select is None else sorted(select):
            yield {"image": resize_square(Image.fromarray(images[i], mode="L"), image_size), "label": int(labels[i])}

    return read


def hub_sources(repo_id: str, image_size: int) -> list[Source]:
    """MNIST-like splits of a Hub dataset with `image` and `label` columns, through `datasets.load_dataset`.

    Args:
        repo_id (`str`): e.g. "ylecun/mnist".
        image_size (`int`): output side.

    Returns:
        `list[Source]`: one per split ("train", "test").
    """
    try:
        dataset_dict = datasets.load_dataset(repo_id)
    except Exception as error:  # network, auth and format errors come in many types
        reason = first_line(error)
        raise DataError(
            f"--source {repo_id}: not a local directory, and loading it from the Hugging Face Hub failed "
            f"({reason}); pass a directory holding the MNIST IDX files"
        ) from None
    sources = []
    for split in ("train", "test"):
        if split not in dataset_dict:
            continue
        dataset = dataset_dict[split]
        label_feature = dataset.features.get("label")
        if "image" not in dataset.column_names or not hasattr(label_feature, "names"):
            raise DataError(f"--source {repo_id}: expected columns 'image' and a ClassLabel 'label'")
        if list(label_feature.names) != list(MNIST_CLASSES):
            raise DataError(f"--source {repo_id}: its classes {label_feature.names} are not the MNIST digits")

        def read(select=None, dataset=dataset):
            rows = dataset if select is None else dataset.select(sorted(select))
            for row in rows:
                yield {"image": resize_square(row["image"], image_size), "label": int(row["label"])}

        sources.append(
            Source(
                name=f"{repo_id} ({split})",
                kind="Hugging Face Hub dataset",
                class_names=list(MNIST_CLASSES),
                num_examples=len(dataset),
                read=read,
                split=split,
                license=MNIST_LICENSE,
                provenance={"hub_id": repo_id, "split": split},
            )
        )
    if not sources:
        raise DataError(f"--source {repo_id}: the Hub dataset has neither a 'train' nor a 'test' split")
    return sources
