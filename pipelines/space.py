"""Publish the web demo (`app.py`) with a model as a Hugging Face Space.

    python -m pipelines.space runs/glyphs --repo_id me/glyphs-demo [--private] [--title "Persian glyphs"]
    python -m pipelines.space me/glyphs-ddpm --repo_id me/glyphs-demo     # a model already on the Hub

The Space holds `app.py`, the modules of `pipelines/` that it imports, `space/requirements.txt` and the
`space/README.md` template filled in (Space metadata: `sdk: gradio`, `app_file: app.py`). A local model folder
goes up with it as the Space's folder `model/` (not `runs/glyphs`: `runs/` folders, TensorBoard's, are never
uploaded); a Hub model id is loaded by the Space at start-up. Either way the Space's copy of `app.py` names its
model in `model_id.txt` beside `app.py`, which the app reads, so the Space opens it with no settings. The
modules copied are those `app.py` imports from this project, found by reading its imports. The model folder is
only read.
"""

from __future__ import annotations

import ast
import json
import shutil
import string
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi, SpaceCard
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import HfArgumentParser

from pipelines.character_pipeline import CharacterDDPMPipeline
from sharing import PushError, first_line, push_folder

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = PROJECT_ROOT / "space"
# Where a local model goes in the Space, relative to app.py, and the file that names the Space's model
# (app.py's MODEL_FILE).
BUNDLED_MODEL_DIR = "model"
MODEL_FILE_NAME = "model_id.txt"


class SpaceError(Exception):
    """A model or project file that cannot make a Space; the message is one line naming it and what to do."""


def _check_local_model(folder: Path) -> None:
    if not (folder / "model_index.json").is_file():
        raise SpaceError(f"{folder}: not a saved pipeline (no model_index.json); pass a folder saved by train_ddpm.py")
    try:
        CharacterDDPMPipeline.from_pretrained(
            folder
        )  # the app's loader: fails on missing or broken weights and configs
    except Exception as error:  # any loader failure becomes one line
        message = f"{folder}: the pipeline does not load ({first_line(error)}); save it again with train_ddpm.py"
        raise SpaceError(message) from error


def _check_hub_model(model_id: str) -> None:
    try:
        validate_repo_id(model_id)
    except HFValidationError as error:
        message = f"{model_id}: no such folder, and not a Hub model id; pass a folder saved by train_ddpm.py"
        raise SpaceError(message) from error
    try:
        found = HfApi().file_exists(model_id, "model_index.json")
    except Exception as error:  # network and authentication failures alike
        reason = first_line(error)
        message = f"{model_id}: no such folder, and the Hub could not be asked for it as a model id ({reason})"
        raise SpaceError(message) from error
    if not found:
        raise SpaceError(
            f"{model_id}: no such folder, and no Hub model repo with a model_index.json; "
            "pass a folder saved by train_ddpm.py or a Hub model id"
        )


def _imported_names(path: Path) -> set[str]:
    """The dotted module names a Python file imports, relative imports resolved against its package."""
    package = list(path.relative_to(PROJECT_ROOT).parts[:-1])  # the same for pkg/mod.py and pkg/__init__.py
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # `from . import x` is the package itself, `from .. import x` its parent
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _project_file(name: str) -> Path | None:
    """The file of this project that the dotted module name `name` is, if any."""
    base = PROJECT_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if name and candidate.is_file():
            return candidate
    return None


def project_modules(entry: Path) -> list[Path]:
    """The project's Python files that `entry` imports, directly or through them, with each package's `__init__`.

    Imports are read from the sources (`ast`), not executed, so this needs none of the app's dependencies.

    Args:
        entry (`Path`): a Python file of this project, e.g. `app.py`.

    Returns:
        `list[Path]`: the files, sorted, without `entry` itself.
    """
    found, pending = set(), [entry]
    while pending:
        for name in _imported_names(pending.pop()):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # a module's packages run their __init__ too
                path = _project_file(".".join(parts[:depth]))
                if path is not None and path not in found and path != entry:
                    found.add(path)
                    pending.append(path)
    return sorted(found)


def _copy_pipeline_files(source: Path, target: Path) -> None:
    """Copy the files of a saved pipeline: its top-level files and the component folders in model_index.json,
    leaving out what training keeps beside them (checkpoints, logs, sample history)."""
    components = [name for name in json.loads((source / "model_index.json").read_text()) if not name.startswith("_")]
    target.mkdir()
    for path in source.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
        elif path.name in components:
            shutil.copytree(path, target / path.name, ignore=shutil.ignore_patterns("__pycache__"))


def _space_card(title: str, model_id: str) -> SpaceCard:
    """`space/README.md` filled in; the title goes into the front matter quoted (a JSON string is YAML), so that
    any title parses."""
    _, front_matter, body = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8").split("---\n", 2)
    quoted_title = json.dumps(title, ensure_ascii=False)
    front_matter = string.Template(front_matter).substitute(title=quoted_title, model_id=model_id)
    body = string.Template(body).substitute(title=title, model_id=model_id)
    return SpaceCard(f"---\n{front_matter}---\n{body}")


def build_space(model: str, folder: str | Path, *, title: str = "Persian DDPM") -> None:
    """Write a Gradio Space for `model` into the empty or missing directory `folder`.

    Args:
        model (`str`): a folder saved by `save_pipeline` / train_ddpm.py (copied into the Space as `model/`), or
            a Hub model id (loaded by the Space when it starts).
        folder (`str` or `Path`): where to write the Space.
        title (`str`, defaults to `"Persian DDPM"`): the Space's title, in its card and on the Hub.

    Raises:
        `SpaceError`: one line naming the model or project file and what to do.
    """
    folder = Path(folder)
    local = Path(model).exists()
    if local:
        _check_local_model(Path(model))
    else:
        _check_hub_model(model)
    app_source = PROJECT_ROOT / "app.py"
    if not (app_source.is_file() and (TEMPLATE_DIR / "README.md").is_file()):
        raise SpaceError(f"{PROJECT_ROOT}: no app.py or space/ folder; run this from a persian-ddpm source checkout")
    app_model = BUNDLED_MODEL_DIR if local else model

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(app_source, folder / "app.py")
    (folder / MODEL_FILE_NAME).write_text(app_model + "\n", encoding="utf-8")
    for path in project_modules(app_source):
        target = folder / path.relative_to(PROJECT_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    shutil.copy2(TEMPLATE_DIR / "requirements.txt", folder / "requirements.txt")
    card = _space_card(title, app_model)
    if local:
        _copy_pipeline_files(Path(model), folder / BUNDLED_MODEL_DIR)
        card.data.models = None  # the front matter's `models` links Hub repos; a bundled model has none
    card.save(folder / "README.md")


@dataclass
class SpaceArguments:
    """The options of `python -m pipelines.space MODEL` (the model is the one positional argument)."""

    repo_id: str = field(metadata={"help": 'the Space, "namespace/name" (created if missing)'})
    private: bool = field(default=False, metadata={"help": "create the Space private"})
    title: str = field(default="Persian DDPM", metadata={"help": "the Space's title"})


def parse_args(argv: list[str] | None = None) -> tuple[SpaceArguments, str]:
    """The options and the model."""
    parser = HfArgumentParser(
        SpaceArguments,
        prog="python -m pipelines.space",
        description="Publish the web demo (app.py) with a model as a Gradio Space on the Hugging Face Hub.",
    )
    parser.add_argument(
        "model", help="a folder saved by train_ddpm.py (uploaded with the Space) or a Hub model id (loaded by it)"
    )
    args, positional = parser.parse_args_into_dataclasses(args=argv)
    return args, positional.model


def main(argv: list[str] | None = None) -> int:
    args, model = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="persian-ddpm-space-") as tmp:
        try:
            build_space(model, tmp, title=args.title)
            url = push_folder(tmp, args.repo_id, repo_type="space", private=args.private,
                              commit_message=f"Publish the persian-ddpm demo with {model}")  # fmt: skip
        except (SpaceError, PushError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2 if isinstance(error, SpaceError) else 1
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
