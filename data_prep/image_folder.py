"""Image folders and `.zip` files of Persian digits and letters, in three layouts.

- "per_sample": `<root>/<anything>/<label>.png`, one folder per sample, the file named by its class;
- "classes": `<root>/<class>/*.png`, one folder per class;
- "csv": a `labels.csv` (columns `file,label`, paths relative to the CSV) beside the images.

A label is a Persian character, a Latin letter name or a number (see `classes.resolve_persian_class`).
The layout is detected unless forced; a zip is read in place, without extracting it.
"""

import csv
import io
import logging
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image, UnidentifiedImageError

from .classes import persian_order, resolve_persian_class
from .errors import DataError
from .normalize import fit_and_center, to_white_on_black
from .sources import Source, file_provenance

logger = logging.getLogger(__name__)

# Bounds on what one image may take, so that a hostile file cannot exhaust memory: bytes of one zip member,
# its expansion over its compressed size, and pixels of one decoded image (a 4096 x 4096 scan).
MAX_MEMBER_BYTES = 64 * 2**20
MAX_COMPRESSION_RATIO = 200
MAX_IMAGE_PIXELS = 4096 * 4096
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
LAYOUTS = ("auto", "per_sample", "classes", "csv")
LABELS_CSV = "labels.csv"


@dataclass
class _Tree:
    """The files of a folder or zip: POSIX paths relative to the root, and a way to read each."""

    root: str
    files: list[PurePosixPath]
    open: Callable[[PurePosixPath], bytes]


def _folder_tree(path: Path) -> _Tree:
    files = [PurePosixPath(p.relative_to(path).as_posix()) for p in sorted(path.rglob("*")) if p.is_file()]
    return _Tree(str(path), files, lambda rel: (path / rel).read_bytes())


def _check_member(path: Path, info: zipfile.ZipInfo) -> None:
    """Refuse a zip member whose name leaves the archive or whose size would exhaust memory."""
    name = PurePosixPath(info.filename)
    if name.is_absolute() or ".." in name.parts or "\\" in info.filename or ":" in name.parts[0]:
        raise DataError(f"{path}: member {info.filename!r} has an unsafe name (absolute or with '..'); "
                            "rebuild the zip with relative names")
    if info.file_size > MAX_MEMBER_BYTES:
        raise DataError(f"{path}: member {info.filename} declares {info.file_size:,} bytes, more than the "
                            f"{MAX_MEMBER_BYTES:,} an image may have; remove it from the zip")
    if info.file_size > 1_000_000 and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        raise DataError(f"{path}: member {info.filename} would expand {info.file_size // max(info.compress_size, 1):,}"
                            f" times (a zip bomb?); remove it from the zip")


def _zip_tree(path: Path) -> _Tree:
    try:
        archive = zipfile.ZipFile(path)
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: not a readable zip file ({error})") from None
    for info in infos:
        _check_member(path, info)

    def read(rel: PurePosixPath) -> bytes:
        # A damaged member fails here (bad CRC, bad header, truncated deflate data; NotImplementedError is
        # zipfile's answer to a compression method it lacks, RuntimeError to an encrypted member); as an OSError
        # it is an unreadable image for the reader (or an unreadable labels.csv), which says so in one line.
        try:
            return archive.read(str(rel))
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as error:
            raise OSError(f"damaged zip member: {error}") from None

    return _Tree(str(path), sorted(PurePosixPath(info.filename) for info in infos), read)


def _visible(rel: PurePosixPath) -> bool:
    # Skip hidden files and macOS resource forks (`__MACOSX/`, `._x.png`) that zips often carry.
    return not any(part.startswith((".", "__MACOSX")) for part in rel.parts)


def _strip_wrapper(files: list[PurePosixPath]) -> tuple[PurePosixPath, list[PurePosixPath]]:
    """Remove the folders that every file shares (a zip usually wraps everything in one folder)."""
    prefix = PurePosixPath()
    while files and all(len(f.parts) > 1 for f in files) and len({f.parts[0] for f in files}) == 1:
        prefix = prefix / files[0].parts[0]
        files = [PurePosixPath(*f.parts[1:]) for f in files]
    return prefix, files


def _detect_layout(root: str, images: list[PurePosixPath], numeric_labels: str) -> str:
    depths = {len(f.parts) for f in images}
    if depths != {2}:
        raise DataError(
            f"{root}: cannot tell the layout: images should sit one folder deep (<root>/<class>/*.png or "
            f"<root>/<sample>/<label>.png) or be listed in a {LABELS_CSV}; pass --layout to force one"
        )
    stems_known = all(resolve_persian_class(f.stem, numeric_labels) for f in images)
    folders_known = all(resolve_persian_class(f.parts[0], numeric_labels) for f in images)
    if stems_known and not folders_known:
        return "per_sample"
    if stems_known and folders_known and len({f.parts[0] for f in images}) == len(images):
        return "per_sample"  # every folder holds one image: folders are samples
    return "classes"


def _csv_labels(text: str, csv_path: PurePosixPath, shown: str) -> dict[PurePosixPath, str]:
    """Parse a labels.csv (`file,label` rows, optional header); paths are relative to the CSV's folder."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as error:  # e.g. a NUL byte in a damaged file
        raise DataError(f"{shown}: not a readable CSV table ({error}); it should list 'file,label' rows") from None
    if rows and rows[0][-1].strip().lower() == "label":
        rows = rows[1:]
    labels = {}
    for line, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise DataError(f"{shown}: row {line} should be 'file,label', got {row}")
        labels[csv_path.parent / row[0].strip()] = row[1].strip()
    if not labels:
        raise DataError(f"{shown}: no rows; it should list 'file,label' for each image")
    return labels


def _raw_labels(
    path: Path, tree: _Tree, prefix: PurePosixPath, relative: list[PurePosixPath], images: list[PurePosixPath],
    layout: str,
) -> tuple[list[PurePosixPath], dict[PurePosixPath, str], dict[PurePosixPath, str]]:
    """The labelled images of a tree in a known layout: the images, each one's label as written, and where."""
    if layout == "csv":
        csv_files = [f for f in relative if f.name == LABELS_CSV]
        if not csv_files:
            raise DataError(f"{path}: --layout csv needs a {LABELS_CSV} file")
        raw_labels = {}
        for csv_file in csv_files:
            try:
                text = tree.open(prefix / csv_file).decode("utf-8-sig")
            except (OSError, UnicodeDecodeError) as error:
                raise DataError(f"{path}: cannot read {prefix / csv_file} ({error}); it should be a UTF-8 "
                                    "'file,label' table") from None
            raw_labels.update(_csv_labels(text, csv_file, f"{path}/{prefix / csv_file}"))
        on_disk = set(images)
        missing = [f for f in raw_labels if f not in on_disk]
        if missing:
            raise DataError(f"{path}: {LABELS_CSV} lists {missing[0]}, which is not an image in the folder")
        images = sorted(raw_labels)
        return images, raw_labels, {f: f"{LABELS_CSV} row for {f}" for f in images}
    bad = next((f for f in images if len(f.parts) != 2), None)
    if bad is not None:
        raise DataError(f"{path}: {bad} is not one folder deep, as --layout {layout} needs")
    part = (lambda f: f.stem) if layout == "per_sample" else (lambda f: f.parts[0])
    return images, {f: part(f) for f in images}, {f: f"{f}" for f in images}


def _resolve_labels(
    path: Path, images: list[PurePosixPath], raw_labels: dict, where: dict, numeric_labels: str
) -> dict[PurePosixPath, str]:
    """Each image's class name; a label that is no known class is an error naming it and where it was."""
    resolved = {}
    for f in images:
        name = resolve_persian_class(raw_labels[f], numeric_labels)
        if name is None:
            raise DataError(
                f"{path}: label {raw_labels[f]!r} ({where[f]}) is not a known class; use a Persian digit or "
                "letter, its Latin name, or a number of the --numeric_labels table"
            )
        resolved[f] = name
    return resolved


def _image_reader(
    path: Path, tree: _Tree, prefix: PurePosixPath, images: list[PurePosixPath], labels: list[int],
    image_size: int, skip_bad_images: bool, skipped: list[str],
) -> Callable:
    """The `Source.read` of an image tree: yields normalised examples, skipping (and listing) bad images if asked."""

    def read(select=None):
        for i in range(len(images)) if select is None else sorted(select):
            f = images[i]
            try:
                with Image.open(io.BytesIO(tree.open(prefix / f))) as image:
                    if image.width * image.height > MAX_IMAGE_PIXELS:  # checked from the header, before decoding
                        raise ValueError(f"{image.width} x {image.height} pixels, more than {MAX_IMAGE_PIXELS:,}")
                    image.load()
                    ink = to_white_on_black(image)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
                    EOFError, zlib.error) as error:
                if not skip_bad_images:
                    raise DataError(
                        f"{path}: unreadable image {prefix / f} ({error}); fix or remove it, or pass --skip_bad_images"
                    ) from None
                skipped.append(str(prefix / f))
                logger.warning("skipping unreadable image %s in %s (%s)", prefix / f, path, error)
                continue
            yield {"image": fit_and_center(ink, image_size), "label": labels[i]}

    return read


def image_folder_source(
    path: Path, image_size: int, *, layout: str = "auto", numeric_labels: str = "persian", skip_bad_images: bool = False
) -> Source:
    """A folder or `.zip` of labelled images as a source.

    Args:
        path (`Path`): the folder or zip.
        image_size (`int`): output side; each image is converted to white ink on black, cropped to its ink,
            fitted and centred like MNIST.
        layout (`str`, defaults to `"auto"`): one of `LAYOUTS`.
        numeric_labels (`str`, defaults to `"persian"`): how numeric labels map to classes.
        skip_bad_images (`bool`, defaults to `False`): skip unreadable images (listed in `Source.skipped`)
            instead of failing.

    Returns:
        `Source`: its class names in the Persian label order.
    """
    tree = _zip_tree(path) if path.is_file() else _folder_tree(path)
    prefix, relative = _strip_wrapper([f for f in tree.files if _visible(f)])
    images = [f for f in relative if f.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise DataError(f"{path}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    if layout == "auto":
        has_csv = any(f.name == LABELS_CSV for f in relative)
        layout = "csv" if has_csv else _detect_layout(str(path), images, numeric_labels)
    images, raw_labels, where = _raw_labels(path, tree, prefix, relative, images, layout)
    resolved = _resolve_labels(path, images, raw_labels, where, numeric_labels)
    class_names = persian_order(set(resolved.values()))
    label_of = {name: i for i, name in enumerate(class_names)}
    skipped: list[str] = []
    labels = [label_of[resolved[f]] for f in images]
    provenance = {"layout": layout, "images": f"{len(images):,}"}
    if path.is_file():
        provenance.update(file_provenance(path))
    return Source(
        name=str(path),
        kind="image zip" if path.is_file() else "image folder",
        class_names=class_names,
        num_examples=len(images),
        read=_image_reader(path, tree, prefix, images, labels, image_size, skip_bad_images, skipped),
        provenance=provenance,
        skipped=skipped,
    )
