"""Upload a saved pipeline folder to the Hugging Face Hub.

    python -m pipelines.push runs/glyphs-ddpm/pipeline --repo_id me/glyphs-ddpm [--private]

Weights, model card, sample grid and pipeline code go up; checkpoints, logs and optimizer states do not
(see `sharing.DEFAULT_IGNORE_PATTERNS`). Transient Hub failures are retried; the folder is only read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sharing import PushError, push_folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.push",
        description="Upload a pipeline folder saved by save_pipeline / train_ddpm.py to a Hub model repo.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("pipeline_dir", type=Path, help="folder holding model_index.json, unet/ and scheduler/")
    parser.add_argument("--repo_id", required=True, help='target repo, "namespace/name" (created if missing)')
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--commit_message", default=None, help="commit summary (default: names the folder)")
    args = parser.parse_args(argv)
    if not (args.pipeline_dir / "model_index.json").is_file():
        parser.error(
            f"{args.pipeline_dir}: not a saved pipeline (no model_index.json); "
            "pass the folder written by save_pipeline or train_ddpm.py"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        url = push_folder(args.pipeline_dir, args.repo_id, private=args.private, commit_message=args.commit_message)
    except PushError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
