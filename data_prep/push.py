"""Push a prepared dataset and its card to the Hugging Face Hub."""

import os
from pathlib import Path

import datasets
from huggingface_hub import HfApi

from .errors import DataPrepError


def push_dataset(
    output_dir_or_dataset: str | os.PathLike | datasets.DatasetDict, repo_id: str, private: bool = False
) -> str:
    """Push a `DatasetDict` (and, from a folder made by `prepare`, its card) to a Hub dataset repo.

    The card goes up first, so that `DatasetDict.push_to_hub` merges its `dataset_info` and `configs`
    metadata into our card instead of writing a bare one.

    Args:
        output_dir_or_dataset (`str`, `os.PathLike` or `datasets.DatasetDict`): a folder saved by `prepare`
            (with `README.md`), or a dataset in memory (pushed without a card).
        repo_id (`str`): "owner/name" of the dataset repo; created when missing.
        private (`bool`, defaults to `False`): create the repo private.

    Returns:
        `str`: the URL of the dataset repo.
    """
    card_path = None
    if isinstance(output_dir_or_dataset, datasets.DatasetDict):
        dataset_dict = output_dir_or_dataset
    else:
        folder = Path(output_dir_or_dataset)
        if not (folder / "dataset_dict.json").is_file():
            raise DataPrepError(f"{folder}: not a dataset saved by data_prep (no dataset_dict.json)")
        dataset_dict = datasets.load_from_disk(str(folder))
        card_path = folder / "README.md" if (folder / "README.md").is_file() else None
    api = HfApi()
    repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if card_path is not None:
        api.upload_file(
            path_or_fileobj=str(card_path),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            commit_message="Add dataset card",
        )
    dataset_dict.push_to_hub(repo_id, private=private, commit_message="Upload dataset")
    return str(repo_url)
