"""Turn sources into the saved `DatasetDict`, and `prepare()`, the Python API behind the CLI."""

import logging
import os
import shutil
import tempfile
from dataclasses import MISSING, fields
from pathlib import Path

import datasets
import numpy as np
from tqdm.auto import tqdm

from sharing import first_line

from .card import write_card
from .classes import MNIST_CLASSES, persian_order
from .errors import DataError
from .options import PrepareOptions
from .push import push_dataset
from .registry import KINDS
from .sources import Source

logger = logging.getLogger(__name__)

# The options of each kind, by name (`data_prep.registry.KINDS`).
OPTIONS: dict[str, type[PrepareOptions]] = {name: kind.options for name, kind in KINDS.items()}


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
        raise DataError(f"{', '.join(s.name for s in sources)}: no images could be read")
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


def _api_call(kind: str, options: PrepareOptions) -> str:
    """The `prepare(...)` call that reproduces this run, for the card (the CLI passes its command line)."""
    arguments = [repr(kind)]
    for option in fields(options):
        value = getattr(options, option.name)
        if option.default is MISSING or value != option.default:  # the required ones, and what differs
            arguments.append(f"{option.name}={os.fspath(value) if isinstance(value, os.PathLike) else value!r}")
    return f"data_prep.prepare({', '.join(arguments)})"


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    if not output_dir.exists():
        return
    if not overwrite:
        raise DataError(f"--output_dir {output_dir}: already exists; pass --overwrite to replace it")
    if output_dir.is_file() or (any(output_dir.iterdir()) and not (output_dir / "dataset_dict.json").exists()):
        raise DataError(
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


def _make_options(kind: str, **options) -> PrepareOptions:
    """The checked options of `kind` (`OPTIONS[kind]`) from keyword arguments named like the CLI flags.

    Raises:
        `DataError`: an unknown kind, an unknown or missing option, or a bad value.
    """
    if kind not in OPTIONS:
        raise DataError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    known = {option.name: option for option in fields(OPTIONS[kind])}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise DataError(f"unknown option(s) {', '.join(unknown)} for prepare({kind!r}); see python -m data_prep "
                            f"{kind} --help")
    missing = [f"--{name}" for name, option in known.items()
               if option.default is MISSING and option.default_factory is MISSING and name not in options]
    if missing:
        raise DataError(f"{kind} needs {', '.join(missing)}")
    config = OPTIONS[kind](**options)
    config.check()
    return config


def prepare(kind: str, *, command: str | None = None, **options) -> datasets.DatasetDict:
    """Convert a source into the project's dataset format and save it (and optionally push it).

    Args:
        kind (`str`): "mnist", "persian" or "glyphs".
        command (`str`, *optional*): the command line recorded in the card (the CLI passes its own); by default
            the `prepare(...)` call itself.
        **options: the fields of the kind's options, `OPTIONS[kind]` (`MnistOptions`, `PersianOptions` or
            `GlyphsOptions`, all of them a `PrepareOptions`), named like the CLI flags: `output_dir` (default
            `data/<kind>`), where the `DatasetDict` and its card `README.md` are saved; `overwrite`, to replace an
            existing dataset there; persian's `source` (required), and so on.

    Returns:
        `datasets.DatasetDict`: the saved dataset, loaded from `output_dir`; splits "train" and "test",
        features `image` (`Image`, mode "L") and `label` (`ClassLabel` named by the characters).

    Raises:
        `DataError`: bad input or arguments; nothing is left in `output_dir`'s place.

    Example:

    ```py
    >>> from data_prep import prepare
    >>> ds = prepare("glyphs", output_dir="data/glyphs", per_class=200, seed=0)
    >>> ds["train"].features["label"].names[:3]
    ['۰', '۱', '۲']
    ```
    """
    config = _make_options(kind, **options)
    if config.output_dir is None:
        config.output_dir = f"data/{kind}"
    output_dir = Path(config.output_dir)
    _check_output_dir(output_dir, config.overwrite)

    sources = KINDS[kind].open_sources(config)
    dataset_dict, class_names = collect(
        kind, sources, test_fraction=config.test_fraction, max_samples=config.max_samples, seed=config.seed
    )
    skipped = [name for source in sources for name in source.skipped]
    if skipped:
        logger.warning("skipped %d unreadable image(s) (--skip_bad_images)", len(skipped))
    command = command or _api_call(kind, config)
    card = write_card(kind, dataset_dict, sources, config, command=command, skipped=len(skipped))
    save_atomically(dataset_dict, card, output_dir)
    if config.push_to_hub:
        try:
            push_dataset(output_dir, config.hub_model_id, private=config.hub_private_repo)
        except DataError:
            raise
        except Exception as error:  # network, auth and server errors come in many types
            reason = first_line(error)
            raise DataError(
                f"--hub_model_id {config.hub_model_id}: the push failed ({reason}); the dataset is saved in "
                f"{output_dir}, push it again with data_prep.push_dataset"
            ) from None
    return datasets.load_from_disk(str(output_dir))
