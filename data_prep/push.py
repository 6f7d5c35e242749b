"""Push a prepared dataset and its card to the Hugging Face Hub, through the project's one publishing path."""

import os
import tempfile
from pathlib import Path

import datasets
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard

from sharing import push_folder

from .errors import DataError


def write_hub_layout(dataset_dict: datasets.DatasetDict, card_path: Path | None, folder: Path) -> None:
    """Writes a `DatasetDict` as the Hub's dataset layout: one parquet file per split and a card.

    The card gets the `dataset_info` (features, split sizes) and `configs` metadata that
    `DatasetDict.push_to_hub` would write. The parquet files keep the `datasets` features (the `ClassLabel`
    names) in their schema, and the card's
    `configs` metadata names the files of each split, so `datasets.load_dataset(repo_id)` returns the same
    splits, columns and class names.

    Args:
        dataset_dict (`datasets.DatasetDict`): the splits to write.
        card_path (`Path`, *optional*): a dataset card (`README.md`) to extend; a bare card when `None`.
        folder (`Path`): an empty folder to write into.
    """
    data_files = []
    for split, dataset in dataset_dict.items():
        path_in_repo = f"data/{split}-00000-of-00001.parquet"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(str(folder / path_in_repo))
        data_files.append({"split": split, "path": path_in_repo})
    card = DatasetCard.load(card_path) if card_path is not None else DatasetCard("---\n---\n")
    splits = datasets.SplitDict()
    for split, dataset in dataset_dict.items():
        splits.add(datasets.SplitInfo(name=split, num_examples=dataset.num_rows))
    first = next(iter(dataset_dict.values()))
    info = datasets.DatasetInfo(features=first.features, splits=splits)
    DatasetInfosDict({"default": info}).to_dataset_card_data(card.data)  # the `dataset_info` metadata
    card.data.configs = [{"config_name": "default", "data_files": data_files}]
    card.save(folder / "README.md")


def push_dataset(
    output_dir_or_dataset: str | os.PathLike | datasets.DatasetDict, repo_id: str, private: bool = False
) -> str:
    """Push a `DatasetDict` (and, from a folder made by `prepare`, its card) to a Hub dataset repo.

    The dataset is written in the Hub's layout (`write_hub_layout`) to a temporary folder, which
    `sharing.push_folder` uploads in one commit, with its retries of transient failures.

    Args:
        output_dir_or_dataset (`str`, `os.PathLike` or `datasets.DatasetDict`): a folder saved by `prepare`
            (with `README.md`), or a dataset in memory (pushed with a bare card).
        repo_id (`str`): "owner/name" of the dataset repo; created when missing.
        private (`bool`, defaults to `False`): create the repo private.

    Returns:
        `str`: the URL of the dataset repo.

    Raises:
        `DataError`: the folder is not a dataset saved by `prepare`.
        `sharing.PushError`: the upload failed.
    """
    card_path = None
    if isinstance(output_dir_or_dataset, datasets.DatasetDict):
        dataset_dict = output_dir_or_dataset
    else:
        folder = Path(output_dir_or_dataset)
        if not (folder / "dataset_dict.json").is_file():
            raise DataError(f"{folder}: not a dataset saved by data_prep (no dataset_dict.json)")
        dataset_dict = datasets.load_from_disk(str(folder))
        card_path = folder / "README.md" if (folder / "README.md").is_file() else None
    with tempfile.TemporaryDirectory(prefix="dataset-push-") as staging:
        write_hub_layout(dataset_dict, card_path, Path(staging))
        return push_folder(staging, repo_id, repo_type="dataset", private=private, commit_message="Upload dataset")
