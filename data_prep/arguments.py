"""The data flags every command that reads a data set shares: `--dataset` and `--data_dir`.

`train_ddpm.py`, `python -m evaluation`, `evaluation.train_classifier` and `evaluation.usefulness` inherit this
dataclass, so the flags mean the same everywhere: what `data_prep.resolve.resolve_dataset` takes.
"""

from dataclasses import dataclass, field


@dataclass(kw_only=True)
class DataArguments:
    """Which data set, and where the named ones live."""

    dataset: str = field(metadata={"help": (
        "mnist, persian or glyphs (prepared under --data_dir/<name> by python -m data_prep), a save_to_disk "
        "folder, a folder of images (one sub-folder per class) or a Hub dataset id")})
    data_dir: str = field(default="data", metadata={"help": "Where the named datasets live (<data_dir>/<name>)."})
