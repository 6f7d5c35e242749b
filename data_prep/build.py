"""Turn sources into the saved `DatasetDict`, and `prepare()`, the Python API behind the CLI."""

import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import datasets
import numpy as np
from tqdm.auto import tqdm

from .card import write_card
from .classes import MNIST_CLASSES, NUMERIC_TABLES, persian_order
from .errors import DataPrepError, first_line
from .glyphs import glyph_source
from .hoda_cdb import cdb_source
from .idx import hub_sources, idx_sources
from .image_folder import LAYOUTS, image_folder_source
from .push import push_dataset
from .resolve import NAMED_DATASETS as KINDS, looks_like_hub_id
from .sources import Source

logger = logging.getLogger(__name__)

DEFAULT_MNIST_SOURCE = "ylecun/mnist"


@dataclass
class PrepareOptions:
    """Every option of `prepare()`, named like the CLI flags."""

    source: str | list[str] | None = None  # mnist: an IDX folder or Hub id; persian: .cdb files, folders, zips
    image_size: int = 28  # output side in px; 28 keeps MNIST pixel-identical
    test_fraction: float = 0.1  # per-class test share, for sources that do not come split
    max_samples: int | None = None  # read only a seeded random subset of this many images (quick runs)
    seed: int = 0  # seeds the subset, the split and the glyph rendering
    push_to_hub: str | None = None  # also push the dataset and its card to this Hub repo id
    private: bool = False  # make the pushed repo private
    layout: str = "auto"  # persian image folders: one of image_folder.LAYOUTS
    numeric_labels: str = "persian"  # persian: how numbers in names map to classes (classes.NUMERIC_TABLES)
    skip_bad_images: bool = False  # persian: skip unreadable images instead of failing
    per_class: int = 200  # glyphs: images rendered per class
    extra_forms: bool = False  # glyphs: add the four extra Hoda forms (46 classes instead of 42)
    command: str | None = None  # the command line recorded in the card (the CLI passes its own)

    def check(self, kind: str) -> None:
        """Cross-argument checks; raise `DataPrepError` with a sentence naming the argument."""
        if kind not in KINDS:
            raise DataPrepError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
        if kind == "persian" and not self.source:
            raise DataPrepError("--source: persian needs at least one .cdb file, image folder or zip")
        if not 8 <= self.image_size <= 1024:
            raise DataPrepError(f"--image_size {self.image_size}: choose a size between 8 and 1024")
        if not 0 < self.test_fraction < 1:
            raise DataPrepError(f"--test_fraction {self.test_fraction}: must be between 0 and 1 (exclusive)")
        if self.max_samples is not None and self.max_samples < 2:
            raise DataPrepError(f"--max_samples {self.max_samples}: must be at least 2 (one train, one test image)")
        if self.per_class < 1:
            raise DataPrepError(f"--per_class {self.per_class}: must be at least 1")
        if self.layout not in LAYOUTS:
            raise DataPrepError(f"--layout {self.layout}: choose one of {', '.join(LAYOUTS)}")
        if self.numeric_labels not in NUMERIC_TABLES:
            raise DataPrepError(f"--numeric_labels {self.numeric_labels}: choose one of {', '.join(NUMERIC_TABLES)}")
        if self.private and not self.push_to_hub:
            raise DataPrepError("--private only applies with --push_to_hub REPO_ID")


def features_for(class_names: list[str]) -> datasets.Features:
    """The output features: `image` (grey PNG) and `label` named by the characters."""
    return datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=class_names)})


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split that sends `round(n_c * test_fraction)` images of each class `c` to the test split.

    Neither split is left empty when there are two images or more.

    Written here rather than with `Dataset.train_test_split(stratify_by_column=...)` because that one
    refuses classes with a single image and test splits smaller than the number of classes, which small
    `--max_samples` runs hit.

    Args:
        labels (`np.ndarray`): `(N,)` int labels.
        test_fraction (`float`): share of each class that goes to the test split.
        seed (`int`): seeds the per-class shuffles.

    Returns:
        `tuple[np.ndarray, np.ndarray]`: sorted train and test positions.
    """
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        is_test[rng.permutation(members)[: int(round(len(members) * test_fraction))]] = True
    # Neither split may be empty: with tiny classes, move one image of the largest class across.
    for want_test in (True, False):
        if len(labels) >= 2 and not (is_test == want_test).any():
            largest = np.bincount(labels).argmax()
            is_test[rng.choice(np.flatnonzero(labels == largest))] = want_test
    train_positions, test_positions = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    return train_positions, test_positions


def _merged_class_names(kind: str, sources: list[Source]) -> list[str]:
    if kind == "mnist":
        return list(MNIST_CLASSES)
    if kind == "persian":
        return persian_order({name for source in sources for name in source.class_names})
    return sources[0].class_names


def _select(sources: list[Source], max_samples: int | None, seed: int) -> list[set[int] | None]:
    """Per source, the positions to read: all, or a seeded random `max_samples` over all sources."""
    total = sum(source.num_examples for source in sources)
    if max_samples is None or max_samples >= total:
        return [None] * len(sources)
    chosen = np.sort(np.random.default_rng([seed, 0]).choice(total, size=max_samples, replace=False))
    selections, start = [], 0
    for source in sources:
        end = start + source.num_examples
        selections.append({int(k) - start for k in chosen[(chosen >= start) & (chosen < end)]})
        start = end
    return selections


def collect(kind: str, sources: list[Source], *, test_fraction: float, max_samples: int | None, seed: int):
    """Read every source into one `DatasetDict` with splits "train" and "test" and a merged label space.

    Args:
        kind (`str`): one of `KINDS`; decides the label order.
        sources (`list[Source]`): all pre-split (`split` set) or all unsplit.
        test_fraction (`float`): for unsplit sources, the per-class share of the test split.
        max_samples (`int`, *optional*): read only a seeded random subset of this size.
        seed (`int`): seeds the subset and the split.

    Returns:
        `tuple[datasets.DatasetDict, list[str]]`: the dataset and its class names.
    """
    class_names = _merged_class_names(kind, sources)
    features = features_for(class_names)
    images, labels, splits = [], [], []
    for source, select in zip(sources, _select(sources, max_samples, seed)):
        to_merged = [class_names.index(name) for name in source.class_names]
        total = source.num_examples if select is None else len(select)
        for item in tqdm(source.read(select), total=total, desc=Path(source.name).name, unit="img", disable=None):
            images.append(item["image"])
            labels.append(to_merged[item["label"]])
            splits.append(source.split)
    if not images:
        raise DataPrepError(f"{', '.join(s.name for s in sources)}: no images could be read")
    labels = np.asarray(labels)
    if all(split is not None for split in splits) and {"train", "test"} <= set(splits):
        positions = {name: np.flatnonzero(np.asarray(splits) == name) for name in ("train", "test")}
    else:
        train, test = stratified_split(labels, test_fraction, seed)
        positions = {"train": train, "test": test}
    dataset_dict = datasets.DatasetDict(
        {
            name: datasets.Dataset.from_dict(
                {"image": [images[i] for i in index], "label": labels[index].tolist()}, features=features
            )
            for name, index in positions.items()
        }
    )
    return dataset_dict, class_names


def _open_sources(kind: str, options: PrepareOptions) -> list[Source]:
    image_size = options.image_size
    if kind == "glyphs":
        return [glyph_source(options.per_class, image_size, options.seed, options.extra_forms)]
    if kind == "mnist":
        source = str(options.source or DEFAULT_MNIST_SOURCE)
        if Path(source).is_dir():
            return idx_sources(Path(source), image_size)
        if Path(source).exists():
            raise DataPrepError(f"--source {source}: expected a directory holding the MNIST IDX files")
        if not looks_like_hub_id(source):
            raise DataPrepError(f"--source {source}: no such directory (nor a Hub id like {DEFAULT_MNIST_SOURCE})")
        return hub_sources(source, image_size)
    sources = []
    paths = [options.source] if isinstance(options.source, (str, os.PathLike)) else options.source
    for path in map(Path, paths):
        if not path.exists():
            raise DataPrepError(f"--source {path}: no such file or directory")
        if path.is_dir() or path.suffix.lower() == ".zip":
            sources.append(
                image_folder_source(
                    path,
                    image_size,
                    layout=options.layout,
                    numeric_labels=options.numeric_labels,
                    skip_bad_images=options.skip_bad_images,
                )
            )
        elif path.suffix.lower() == ".cdb":
            sources.append(cdb_source(path, image_size))
        else:
            raise DataPrepError(
                f"--source {path}: unknown format; expected a Hoda .cdb file, an image folder or a .zip of one"
            )
    return sources


def _api_call(kind: str, output_dir: Path, overwrite: bool, config: "PrepareOptions") -> str:
    """The `prepare(...)` call that reproduces this run, for the card (the CLI passes its command line)."""
    defaults = PrepareOptions()
    arguments = [repr(kind), f"output_dir={str(output_dir)!r}"] + (["overwrite=True"] if overwrite else [])
    arguments += [f"{k}={v!r}" for k, v in asdict(config).items() if k != "command" and v != getattr(defaults, k)]
    return f"data_prep.prepare({', '.join(arguments)})"


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    if not output_dir.exists():
        return
    if not overwrite:
        raise DataPrepError(f"--output_dir {output_dir}: already exists; pass --overwrite to replace it")
    if output_dir.is_file() or (any(output_dir.iterdir()) and not (output_dir / "dataset_dict.json").exists()):
        raise DataPrepError(
            f"--output_dir {output_dir}: exists and is not a dataset saved by data_prep; "
            "refusing to replace it, choose another directory"
        )


def save_atomically(dataset_dict: datasets.DatasetDict, card: str, output_dir: Path) -> None:
    """Save the dataset and its card in a temporary directory beside `output_dir`, then rename it into place.

    Any earlier `output_dir` is replaced only once the new one is complete; on failure nothing is left.
    """
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".tmp", dir=output_dir.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result should look like any new folder
        dataset_dict.save_to_disk(str(tmp))
        (tmp / "README.md").write_text(card, encoding="utf-8")
        if output_dir.exists():
            old = tmp.with_suffix(".old")
            os.replace(output_dir, old)
            os.replace(tmp, output_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prepare(kind: str, *, output_dir: str | os.PathLike, overwrite: bool = False, **options) -> datasets.DatasetDict:
    """Convert a source into the project's dataset format and save it (and optionally push it).

    Args:
        kind (`str`): "mnist", "persian" or "glyphs".
        output_dir (`str` or `os.PathLike`): where the `DatasetDict` and its card `README.md` are saved.
        overwrite (`bool`, defaults to `False`): replace an existing dataset in `output_dir`.
        **options: the fields of `PrepareOptions`, named like the CLI flags.

    Returns:
        `datasets.DatasetDict`: the saved dataset, loaded from `output_dir`; splits "train" and "test",
        features `image` (`Image`, mode "L") and `label` (`ClassLabel` named by the characters).

    Raises:
        `DataPrepError`: bad input or arguments; nothing is left in `output_dir`'s place.

    Example:

    ```py
    >>> from data_prep import prepare
    >>> ds = prepare("glyphs", output_dir="data/glyphs", per_class=200, seed=0)
    >>> ds["train"].features["label"].names[:3]
    ['۰', '۱', '۲']
    ```
    """
    unknown = set(options) - {f.name for f in fields(PrepareOptions)}
    if unknown:
        raise DataPrepError(f"unknown option(s) {', '.join(sorted(unknown))} for prepare()")
    config = PrepareOptions(**options)
    config.check(kind)
    output_dir = Path(output_dir)
    _check_output_dir(output_dir, overwrite)

    sources = _open_sources(kind, config)
    dataset_dict, class_names = collect(
        kind, sources, test_fraction=config.test_fraction, max_samples=config.max_samples, seed=config.seed
    )
    skipped = [name for source in sources for name in source.skipped]
    if skipped:
        logger.warning("skipped %d unreadable image(s) (--skip_bad_images)", len(skipped))
    command = config.command or _api_call(kind, output_dir, overwrite, config)
    card = write_card(kind, dataset_dict, sources, config, command=command, skipped=len(skipped))
    save_atomically(dataset_dict, card, output_dir)
    if config.push_to_hub:
        try:
            push_dataset(output_dir, config.push_to_hub, private=config.private)
        except DataPrepError:
            raise
        except Exception as error:  # network, auth and server errors come in many types
            reason = first_line(error)
            raise DataPrepError(
                f"--push_to_hub {config.push_to_hub}: the push failed ({reason}); the dataset is saved in "
                f"{output_dir}, push it again with data_prep.push_dataset"
            ) from None
    return datasets.load_from_disk(str(output_dir))
