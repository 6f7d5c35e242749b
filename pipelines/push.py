"""Upload a saved pipeline folder to the Hugging Face Hub.

    python -m pipelines.push runs/glyphs-ddpm/pipeline --repo_id me/glyphs-ddpm [--private]

Weights, model card, sample grid and pipeline code go up; checkpoints, logs and optimizer states do not
(see `sharing.DEFAULT_IGNORE_PATTERNS`). Transient Hub failures are retried; the folder is only read.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from transformers import HfArgumentParser

from sharing import PushError, push_folder


@dataclass
class PushArguments:
    """The options of `python -m pipelines.push PIPELINE_DIR` (the folder is the one positional argument)."""

    repo_id: str = field(metadata={"help": 'target repo, "namespace/name" (created if missing)'})
    private: bool = field(default=False, metadata={"help": "create the repo private"})
    commit_message: Optional[str] = field(default=None, metadata={"help": "commit summary (default: names the folder)"})


def parse_args(argv: list[str] | None = None) -> tuple[PushArguments, Path]:
    """The options and the pipeline folder; a folder that is not a saved pipeline is a usage error (exit code 2)."""
    parser = HfArgumentParser(
        PushArguments,
        prog="python -m pipelines.push",
        description="Upload a pipeline folder saved by save_pipeline / train_ddpm.py to a Hub model repo.",
    )
    parser.add_argument("pipeline_dir", type=Path, help="folder holding model_index.json, unet/ and scheduler/")
    args, positional = parser.parse_args_into_dataclasses(args=argv)
    if not (positional.pipeline_dir / "model_index.json").is_file():
        parser.error(
            f"{positional.pipeline_dir}: not a saved pipeline (no model_index.json); "
            "pass the folder written by save_pipeline or train_ddpm.py"
        )
    return args, positional.pipeline_dir


def main(argv: list[str] | None = None) -> int:
    args, pipeline_dir = parse_args(argv)
    try:
        url = push_folder(pipeline_dir, args.repo_id, private=args.private, commit_message=args.commit_message)
    except PushError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
