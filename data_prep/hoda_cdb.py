"""Reader for the Hoda `.cdb` files: the digit layout and the "CDB 5.0" character layout.

No maintained library reads this format, so the reader is written here from the layout documented in
the Hoda data sets (see the project README, section Data). Both layouts are little-endian files of
run-length-encoded binary images, one record per image; every row is a sequence of one-byte run
lengths that alternate background and ink, starting with background, and add up to the row's width.
"""

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .classes import HODA_LETTER_CLASSES, PERSIAN_DIGITS
from .errors import DataError
from .normalize import fit_and_center
from .sources import Source, file_provenance

HODA_LICENSE = "other"  # free for research and non-commercial use (the producers' terms)

# Digit layout: a 1,024-byte header: year uint16, month, day, width, height uint8 (0 = per record),
# total record count int32, 128 int32 per-class counts, image type uint8, 256-byte comment, 245 reserved.
_DIGITS_HEADER = struct.Struct("<HBBBBi")
_DIGITS_HEADER_SIZE = 1024
# Character layout: magic "CDB 5.0", year uint16, month, day uint8, W, H int16, total int32, nMax int16,
# nMax int32 counts, image type uint8, 512-byte comment, 490 reserved (1,280 bytes with nMax = 64).
_CDB5_MAGIC = b"CDB 5.0"
_CDB5_HEADER = struct.Struct("<7sHBBhhih")


@dataclass
class CdbIndex:
    """Where each record of a `.cdb` file lies: labels and sizes, and the offset and length of its runs."""

    layout: str  # "digits" or "characters"
    labels: np.ndarray  # (N,) int
    widths: np.ndarray  # (N,) int
    heights: np.ndarray  # (N,) int
    offsets: np.ndarray  # (N,) int, start of the run bytes
    lengths: np.ndarray  # (N,) int, number of run bytes


def _corrupt(path: Path, detail: str) -> DataError:
    return DataError(f"{path}: truncated or corrupt Hoda .cdb file ({detail}); re-download it")


def index_cdb(path: Path, data: bytes) -> CdbIndex:
    """Parse the header and walk every record to the end of the file, without decoding the images.

    Args:
        path (`Path`): the file name, for messages.
        data (`bytes`): the whole file.

    Returns:
        `CdbIndex`: one entry per record; the records fill the file exactly.
    """
    if data[:7] == _CDB5_MAGIC:
        if len(data) < _CDB5_HEADER.size:
            raise _corrupt(path, "header cut short")
        _, _, month, day, width, height, total, n_max = _CDB5_HEADER.unpack_from(data)
        header_size = _CDB5_HEADER.size + 4 * n_max + 1 + 512 + 490
        layout, record_head = "characters", struct.Struct("<HHH")  # 0xFFFF, label, confidence
        size_head = struct.Struct("<HH")
        count_head = struct.Struct("<I")
        start_marker = 0xFFFF
    elif data[:4] == b"CDB " or len(data) < _DIGITS_HEADER_SIZE:
        raise DataError(f"{path}: not a Hoda .cdb file this reader knows (header {data[:7]!r})")
    else:
        _, month, day, width, height, total = _DIGITS_HEADER.unpack_from(data)
        header_size = _DIGITS_HEADER_SIZE
        layout, record_head = "digits", struct.Struct("<BB")  # 0xFF, label
        size_head = struct.Struct("<BB")
        count_head = struct.Struct("<H")
        start_marker = 0xFF
    if not (1 <= month <= 12 and 1 <= day <= 31 and total >= 0):
        raise DataError(f"{path}: not a Hoda .cdb file (its header date and record count make no sense)")
    if len(data) < header_size:
        raise _corrupt(path, "header cut short")

    labels, widths, heights, offsets, lengths = [], [], [], [], []
    pos, end = header_size, len(data)
    while pos < end:
        try:
            head = record_head.unpack_from(data, pos)
            pos += record_head.size
            if head[0] != start_marker:
                raise _corrupt(path, f"record {len(labels)} at byte {pos - record_head.size} has no start marker")
            if width == 0 or height == 0:
                w, h = size_head.unpack_from(data, pos)
                pos += size_head.size
            else:
                w, h = width, height
            (n,) = count_head.unpack_from(data, pos)
            pos += count_head.size
        except struct.error:
            raise _corrupt(path, f"record {len(labels)} cut short at byte {pos}") from None
        if pos + n > end:
            raise _corrupt(path, f"record {len(labels)} needs {n} bytes but the file ends first")
        if w == 0 or h == 0:
            raise _corrupt(path, f"record {len(labels)} has an empty {w}x{h} image")
        labels.append(head[1])
        widths.append(w)
        heights.append(h)
        offsets.append(pos)
        lengths.append(n)
        pos += n
    if len(labels) != total:
        raise _corrupt(path, f"the header promises {total} records but the file holds {len(labels)}")
    return CdbIndex(layout, *(np.asarray(a, dtype=np.int64) for a in (labels, widths, heights, offsets, lengths)))


def decode_rle(runs: np.ndarray, width: int, height: int) -> np.ndarray:
    """Decode one image's run lengths, vectorised over the whole record.

    A row ends at the first run where the row's sum reaches `width` (as a sequential reader would stop),
    and the next row starts again with background.

    Args:
        runs (`np.ndarray`): uint8 run lengths of all rows, concatenated.
        width (`int`): image width.
        height (`int`): image height.

    Returns:
        `np.ndarray`: `(height, width)` bool, True where there is ink.

    Raises:
        `ValueError`: when the runs do not tile the image row by row exactly.
    """
    cumulative = np.cumsum(runs, dtype=np.int64)  # (R,)
    row_ends_at = width * np.arange(1, height + 1)  # (H,) cumulative pixel count at each row's end
    if cumulative.size == 0 or cumulative[-1] != width * height:
        raise ValueError(f"runs add up to {cumulative[-1] if cumulative.size else 0}, not {width}x{height}")
    last_run = np.searchsorted(cumulative, row_ends_at, side="left")  # (H,) index of each row's last run
    if not np.array_equal(cumulative[last_run], row_ends_at) or last_run[-1] != runs.size - 1:
        raise ValueError("a row's runs do not add up to the image width")
    first_run = np.concatenate(([0], last_run[:-1] + 1))  # (H,)
    run_index = np.arange(runs.size)
    row_of_run = np.searchsorted(last_run, run_index, side="left")  # (R,)
    is_ink = ((run_index - first_run[row_of_run]) & 1).astype(bool)  # odd runs within a row are ink
    return np.repeat(is_ink, runs).reshape(height, width)


def cdb_source(path: Path, image_size: int) -> Source:
    """A Hoda `.cdb` file (either layout, detected from its header) as a source.

    Args:
        path (`Path`): the `.cdb` file.
        image_size (`int`): output side; the crops are fitted and centred like MNIST.

    Returns:
        `Source`: the classes present in the file, named from the Persian digits (digit layout)
            or the Hoda letter table (CDB 5.0).
    """
    data = path.read_bytes()
    index = index_cdb(path, data)
    table = PERSIAN_DIGITS if index.layout == "digits" else HODA_LETTER_CLASSES
    if index.labels.size and index.labels.max() >= len(table):
        bad = int(index.labels.max())
        raise DataError(f"{path}: label {bad} is not a known class (the Hoda {index.layout} table has {len(table)})")
    present = np.unique(index.labels)  # the label space holds the classes present in the file
    class_names = [table[label] for label in present]
    label_of = np.searchsorted(present, index.labels)  # (N,) positions in class_names
    buffer = np.frombuffer(data, dtype=np.uint8)

    def read(select=None):
        for i in range(len(index.labels)) if select is None else sorted(select):
            start = index.offsets[i]
            runs = buffer[start : start + index.lengths[i]]
            try:
                ink = decode_rle(runs, int(index.widths[i]), int(index.heights[i]))
            except ValueError as error:
                raise _corrupt(path, f"record {i}: {error}") from None
            yield {"image": fit_and_center(ink, image_size), "label": int(label_of[i])}

    return Source(
        name=str(path),
        kind=f"Hoda {index.layout} .cdb",
        class_names=class_names,
        num_examples=len(index.labels),
        read=read,
        license=HODA_LICENSE,
        provenance=file_provenance(path),
    )
