"""Turn a `--dataset` value into train and test splits: the one resolver every command uses.

`--dataset` is one of

- a named set (`NAMED_DATASETS`), read from `data_dir/<name>` where `python -m data_prep <name>` writes it;
  `glyphs` is rendered there on first use, so a fresh machine needs no other step;
- a folder saved with `save_to_disk` (a `Dataset` or a `DatasetDict`);
- an image folder, read with `datasets`' `imagefolder` builder (one sub-folder per class gives labels);
- a Hub dataset id, loaded with `datasets.load_dataset`.

With `streaming=True` the splits are `datasets.IterableDataset`s read as they are used (a Hub dataset is not
downloaded whole; a folder of parquet or arrow files is read file by file), for data larger than memory.

`train_ddpm.py`, `python -m evaluation.train_classifier` and `python -m evaluation` all call
`resolve_dataset`, so anything that trains can be scored.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import datasets

from sharing import first_line

from .build import prepare
from .errors import DataError
from .registry import NAMED_DATASETS, looks_like_hub_id

# Share of a dataset without a `test` split that is held out as one (seeded).
TEST_SHARE = 0.05
# Shards of a stream made from a local map-style dataset (`to_iterable_dataset`): enough for the processes and
# data-loading workers of one run to read disjoint parts, and for shuffling the shard order.
STREAM_SHARDS = 64


@dataclass
class ResolvedDataset:
    """A resolved `--dataset`: its splits and the columns that hold images and labels.

    Args:
        splits (`datasets.DatasetDict` or `datasets.IterableDatasetDict`): the `train` and `test` splits; iterable
            ones when `streaming`.
        image_column (`str`): name of the `datasets.Image` column.
        label_column (`str`, *optional*): name of the `datasets.ClassLabel` column; None when the data has no labels.
        class_names (`list[str]`, *optional*): the label names in class-index order; None without labels.
        description (`str`): where the data came from (the `--dataset` value), for model cards.
        streaming (`bool`): whether the splits are streams (`datasets.IterableDataset`).
    """

    splits: datasets.DatasetDict | datasets.IterableDatasetDict
    image_column: str
    label_column: str | None
    class_names: list[str] | None
    description: str
    streaming: bool = False


def missing_local_path(text: str) -> str | None:
    """A sentence for a `--dataset` that is meant as a local path but exists nowhere, or None.

    A value is meant as a path when it starts like one (`/`, `./`, `../`, `~`) or when its first component is a
    folder here (`data/mnits` beside `data/`): such a value is reported at once with the nearest existing names,
    rather than tried on the Hub first.
    """
    path = Path(text).expanduser()
    first = Path(text).parts[0] if Path(text).parts else ""
    if path.exists() or not (text.startswith(("/", "./", "../", "~")) or (len(Path(text).parts) > 1
                                                                           and Path(first).is_dir())):
        return None
    parent = path.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    near = difflib.get_close_matches(path.name, [p.name for p in parent.iterdir() if p.is_dir()], n=1) \
        if parent == path.parent else []
    hint = f" (did you mean {parent / near[0]}?)" if near else ""
    return f"no such folder: {text}{hint}"


def _prepare_command(name: str, data_dir: Path) -> str:
    # MNIST from the Hub id (or a folder of LeCun's IDX files); Persian from Hoda's digit and character .cdb files.
    source = {"mnist": " --source ylecun/mnist",
              "persian": " --source PATH/TO/digits.cdb PATH/TO/letters.cdb"}.get(name, "")
    return f"python -m data_prep {name}{source} --output_dir {data_dir / name}"


def _load_named(name: str, data_dir: Path) -> datasets.DatasetDict:
    """`mnist` / `persian` / `glyphs` from `data_dir/<name>`; `glyphs` is rendered there on first use."""
    path = data_dir / name
    if (path / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(path))
    if name != "glyphs":
        raise DataError(f"--dataset {name}: {path} is not prepared; run `{_prepare_command(name, data_dir)}` first.")
    try:
        return prepare("glyphs", output_dir=str(path))
    except DataError as err:
        raise DataError(f"--dataset glyphs: could not build {path} ({err}).") from err


def _as_stream(loaded: datasets.Dataset | datasets.DatasetDict) -> datasets.IterableDatasetDict:
    """A map-style dataset (a prepared or `save_to_disk` one) read as a stream of `STREAM_SHARDS` shards."""
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return datasets.IterableDatasetDict({name: split.to_iterable_dataset(num_shards=max(1, min(len(split),
                                                                                                 STREAM_SHARDS)))
                                         for name, split in loaded.items()})


def _load_folder(dataset: str, path: Path, streaming: bool):
    """A `save_to_disk` folder, or else a folder of files `datasets` can read: images (one sub-folder per class),
    parquet, arrow."""
    if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
        try:
            loaded = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as err:
            raise DataError(f"--dataset {dataset}: a save_to_disk folder that cannot be read "
                            f"({first_line(err)}).") from err
        return _as_stream(loaded) if streaming else loaded
    try:  # datasets picks the builder from the files: imagefolder for images, parquet, arrow, ...
        return datasets.load_dataset(str(path), streaming=streaming)
    except (FileNotFoundError, ValueError) as err:  # datasets' "no (supported) data files found" and kin
        raise DataError(f"--dataset {dataset}: neither a save_to_disk folder nor a folder of images or parquet/arrow "
                        f"files that datasets can read ({first_line(err)}).") from err


def _load_any(dataset: str, data_dir: Path, streaming: bool = False):
    """Load whatever `--dataset` names, as a DatasetDict (an IterableDatasetDict when `streaming`)."""
    path = Path(dataset)
    if dataset in NAMED_DATASETS:
        loaded = _load_named(dataset, data_dir)
        loaded = _as_stream(loaded) if streaming else loaded
    elif path.is_dir():
        loaded = _load_folder(dataset, path, streaming)
    elif path.exists():
        raise DataError(f"--dataset {dataset}: a file, not a dataset folder; pass a save_to_disk or image folder.")
    elif (missing := missing_local_path(dataset)) is not None:
        raise DataError(f"--dataset {dataset}: {missing}.")
    elif not looks_like_hub_id(dataset):
        raise DataError(f"--dataset {dataset}: no such folder, and not a named dataset "
                        f"({', '.join(NAMED_DATASETS)}) or a Hub dataset id.")
    else:
        try:
            loaded = datasets.load_dataset(dataset, streaming=streaming)
        except Exception as err:  # the Hub client raises many types; all mean "cannot get this dataset"
            raise DataError(
                f"--dataset {dataset}: not a named dataset ({', '.join(NAMED_DATASETS)}), not a local folder, "
                f"and not loadable from the Hub ({type(err).__name__})."
            ) from err
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    elif isinstance(loaded, datasets.IterableDataset):
        loaded = datasets.IterableDatasetDict({"train": loaded})
    return loaded


def resolve_dataset(dataset: str, data_dir: str | os.PathLike = "data", seed: int = 0,
                    streaming: bool = False) -> ResolvedDataset:
    """Resolve `--dataset` into train/test splits with an image column and, if any, a label column.

    Args:
        dataset (`str`): a name of `NAMED_DATASETS`, a `save_to_disk` folder, an image folder or a Hub dataset id.
        data_dir (`str` or `os.PathLike`, defaults to `"data"`): where the named datasets live.
        seed (`int`, defaults to 0): seed of the `TEST_SHARE` held out when the data has no `test` split.
        streaming (`bool`, defaults to `False`): return streams (`datasets.IterableDataset`) instead of loading
            the data; a stream must have its own `test` split, since it cannot hold out a share of itself.

    Returns:
        `ResolvedDataset`: the splits, their image and label columns, and the class names.

    Raises:
        `DataError`: the data cannot be found, or has no image column or no `train` split.

    Example:

    ```py
    >>> from data_prep.resolve import resolve_dataset
    >>> data = resolve_dataset("glyphs")  # rendered into data/glyphs on first use
    >>> data.image_column, data.label_column, data.class_names[:3]
    ('image', 'label', ['۰', '۱', '۲'])
    ```
    """
    loaded = _load_any(dataset, Path(data_dir), streaming)
    if "train" not in loaded:
        raise DataError(f"--dataset {dataset}: no `train` split (found {', '.join(loaded) or 'none'}).")
    features = loaded["train"].features
    if features is None:  # a stream of files without a schema
        raise DataError(f"--dataset {dataset}: the stream does not say its columns' types; save the data with "
                        "datasets (save_to_disk, to_parquet or push_to_hub) so that it has an Image column.")
    image_column = next((k for k, v in features.items() if isinstance(v, datasets.Image)), None)
    if image_column is None:
        raise DataError(f"--dataset {dataset}: no image column (features: {', '.join(features)}).")
    label_column = next((k for k, v in features.items() if isinstance(v, datasets.ClassLabel)), None)
    if "test" not in loaded and streaming:
        raise DataError(f"--dataset {dataset} --streaming: no `test` split, and a stream cannot hold out a share of "
                        "itself; give the data a `test` split, or train without --streaming.")
    if "test" not in loaded:
        held_out = loaded["train"].train_test_split(test_size=TEST_SHARE, seed=seed)
        loaded = datasets.DatasetDict({"train": held_out["train"], "test": held_out["test"]})
    class_names = list(features[label_column].names) if label_column else None
    kind = datasets.IterableDatasetDict if streaming else datasets.DatasetDict
    return ResolvedDataset(kind({"train": loaded["train"], "test": loaded["test"]}), image_column, label_column,
                           class_names, dataset, streaming)
