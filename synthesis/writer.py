"""A synthetic data set written in shards as it is made: resumable, the same for the same seed, never
half-written where the result belongs.

Shard i is a `datasets.Dataset` made from seed (seed, i) and saved under a hidden folder beside the output; a
stopped run keeps its finished shards, and the next run with the same settings makes only the rest. When all
are there they are joined into one `DatasetDict` (split `train`) with its card, saved beside the output and
moved into place in one rename, and the shards are removed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import datasets
from tqdm.auto import tqdm

SETTINGS_FILE = "settings.json"


def shards_folder(output_dir: Path) -> Path:
    return output_dir.parent / f".{output_dir.name}.shards"


def write_in_shards(output_dir: Path, count: int, shard_size: int, settings: dict,
                    make_shard: Callable[[int, int], datasets.Dataset], card: str, progress: bool = True
                    ) -> datasets.DatasetDict:
    """Make `count` examples in shards of `shard_size` with `make_shard(index, size)` and save them as one
    `DatasetDict` ({"train"}) in `output_dir`, with `card` as its README.md.

    Shards made under other `settings` (a JSON-able dict of everything the examples depend on) are discarded.
    """
    folder = shards_folder(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = json.dumps(settings, sort_keys=True, ensure_ascii=False)
    settings_path = folder / SETTINGS_FILE
    if not settings_path.is_file() or settings_path.read_text(encoding="utf-8") != wanted:
        for old in folder.glob("shard-*"):
            shutil.rmtree(old)
        settings_path.write_text(wanted, encoding="utf-8")
    paths = []
    with tqdm(total=count, desc="synthesizing", unit="example", disable=not progress) as bar:
        for index in range(math.ceil(count / shard_size)):
            size = min(shard_size, count - index * shard_size)
            path = folder / f"shard-{index:05d}"
            if not (path / "state.json").is_file():
                partial = folder / f".shard-{index:05d}.partial"
                shutil.rmtree(partial, ignore_errors=True)
                make_shard(index, size).save_to_disk(str(partial))
                os.replace(partial, path)
            paths.append(path)
            bar.update(size)
    joined = datasets.DatasetDict({"train": datasets.concatenate_datasets(
        [datasets.load_from_disk(str(path)) for path in paths])})
    staging = output_dir.parent / f".{output_dir.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    joined.save_to_disk(str(staging))
    (staging / "README.md").write_text(card, encoding="utf-8")
    if output_dir.exists():
        shutil.rmtree(output_dir)
    os.replace(staging, output_dir)
    shutil.rmtree(folder, ignore_errors=True)
    return datasets.load_from_disk(str(output_dir))
