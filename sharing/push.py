"""Upload a local folder (a saved pipeline, a dataset card, a Space) to a Hugging Face Hub repo."""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import HfApi

from .retry import PushError, retry_transient

logger = logging.getLogger(__name__)

# Training by-products that never belong in a published repo. Patterns follow
# `huggingface_hub.utils.filter_repo_objects` (fnmatch on paths relative to the folder; `*` also
# matches `/`, and a pattern ending in `/` covers everything below that folder).
DEFAULT_IGNORE_PATTERNS = [
    "checkpoints/",
    "*/checkpoints/",
    "checkpoint-*/",  # accelerate `save_state` folders
    "*/checkpoint-*/",
    "logs/",
    "*/logs/",
    "runs/",  # TensorBoard
    "*/runs/",
    "wandb/",
    "*/wandb/",
    "teacher_targets/",  # a distillation's teacher images (`pipelines.distill --keep_targets`)
    "*/teacher_targets/",
    "*.ckpt",
    "*events.out.tfevents.*",
    "*optimizer*.bin",
    "*optimizer*.pt",
    "*optimizer*.safetensors",
    "*random_states*.pkl",
    "*.log",
    "__pycache__/",
    "*/__pycache__/",
    "*.pyc",
    ".DS_Store",
    "*/.DS_Store",
]


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "model",
    private: bool = False,
    ignore_patterns: list[str] | None = None,
    commit_message: str | None = None,
    space_sdk: str = "gradio",
    max_tries: int = 5,
    base_delay_s: float = 1.0,
) -> str:
    """Create `repo_id` on the Hub if needed and upload `folder` to it in one commit.

    Checkpoints, logs, optimizer states and caches are never uploaded (see
    `DEFAULT_IGNORE_PATTERNS`). Transient failures (HTTP 408/429/5xx, dropped connections) are
    retried with exponential backoff; the local folder is only read, never written, whatever happens.
    The Hub address and token come from the usual `huggingface_hub` settings (`HF_ENDPOINT`,
    `HF_TOKEN` or `hf auth login`).

    Args:
        folder (`str` or `Path`): the folder to upload, e.g. a `save_pipeline` output directory.
        repo_id (`str`): `"namespace/name"` of the repo (created if it does not exist).
        repo_type (`str`, defaults to `"model"`): `"model"`, `"dataset"` or `"space"`.
        private (`bool`, defaults to `False`): create the repo private. If the repo already exists
            and is public, a private push is refused rather than published.
        ignore_patterns (`list[str]`, *optional*): more patterns to leave out, added to the defaults.
        commit_message (`str`, *optional*): the commit summary.
        space_sdk (`str`, defaults to `"gradio"`): the SDK of a new Space (`repo_type="space"` only); the
            folder's README front matter (`sdk:`, `app_file:`) should agree.
        max_tries (`int`, defaults to 5): attempts per Hub step before giving up.
        base_delay_s (`float`, defaults to 1.0): first retry delay, doubled after each failure.

    Returns:
        `str`: the URL of the repo on the Hub.

    Raises:
        `PushError`: one line naming the folder or repo and the cause (not a folder, bad
            credentials, no write access, too many transient failures, ...).

    Example:
    ```py
    >>> from sharing import push_folder
    >>> push_folder("runs/glyphs-ddpm/pipeline", "me/glyphs-ddpm")  # doctest: +SKIP
    'https://huggingface.co/me/glyphs-ddpm'
    ```
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PushError(f"{folder}: not a folder; pass the directory to upload")
    patterns = DEFAULT_IGNORE_PATTERNS + list(ignore_patterns or [])
    api = HfApi()
    target = f"{repo_type} repo {repo_id}"

    def retried(call, what):
        return retry_transient(call, what=what, max_tries=max_tries, base_delay_s=base_delay_s)

    url = retried(
        lambda: api.create_repo(
            repo_id,
            repo_type=repo_type,
            private=private,
            exist_ok=True,
            space_sdk=space_sdk if repo_type == "space" else None,
        ),
        f"creating {target}",
    )
    if private and not retried(lambda: api.repo_info(repo_id, repo_type=repo_type).private, f"checking {target}"):
        raise PushError(f"{target} already exists and is public; make it private on the Hub or pick another repo id")
    commit = retried(
        lambda: api.upload_folder(
            repo_id=repo_id,
            repo_type=repo_type,
            folder_path=folder,
            # upload_folder appends its own defaults to the list it is given: pass a fresh copy.
            ignore_patterns=list(patterns),
            commit_message=commit_message or f"Upload {folder.name} with persian-ddpm",
        ),
        f"uploading {folder} to {target}",
    )
    logger.info("pushed %s to %s (commit %s)", folder, url, commit.oid)
    return str(url)
