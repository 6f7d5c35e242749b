"""Save a trained UNet and its noise schedule as a diffusers pipeline folder, with a model card."""

import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path

import PIL.Image
from diffusers import DDPMPipeline, UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from pipelines import character_pipeline
from pipelines.character_pipeline import CharacterDDPMPipeline
from pipelines.model_card import SAMPLE_GRID_NAME, write_model_card
from pipelines.samplers import fast_sampler

# The copy of the pipeline module that `DiffusionPipeline.from_pretrained(..., trust_remote_code=True)` imports;
# model_index.json names it in `_class_name`: ["character_pipeline", "CharacterDDPMPipeline"].
PIPELINE_FILE_NAME = Path(inspect.getsourcefile(character_pipeline)).name
PIPELINE_MODULE = PIPELINE_FILE_NAME.removesuffix(".py")

# The module's name before the rename (models saved then carry it); replaced when such a folder is saved again.
LEGACY_PIPELINE_FILE_NAME = "glyph_pipeline.py"
# Everything `save_pipeline` writes at the top of the folder; training's checkpoints and logs are left alone.
SAVED_ENTRIES = ("unet", "scheduler", "model_index.json", "README.md", SAMPLE_GRID_NAME, PIPELINE_FILE_NAME,
                 LEGACY_PIPELINE_FILE_NAME)


def save_pipeline(
    output_dir: str | os.PathLike,
    unet: UNet2DModel,
    scheduler: SchedulerMixin,
    *,
    class_names: list[str] | None = None,
    card_info: dict | None = None,
    sample_grid: PIL.Image.Image | None = None,
    sampler: SchedulerMixin | None = None,
    distillation: dict | None = None,
) -> None:
    """Save `unet` and `scheduler` to `output_dir` as a pipeline with a model card.

    The training scheduler is saved as the default sampler (`fast_sampler`: SDE-DPM-Solver++, same noise schedule
    and prediction type), so generation is fast whichever pipeline loads the folder; a distilled student is saved
    with its own `sampler` instead.

    - Unconditional (`class_names` None): a plain `DDPMPipeline` folder; stock
      `DDPMPipeline.from_pretrained(output_dir)` loads and runs it, and so does `CharacterDDPMPipeline`.
    - Class-conditional: `unet.config.num_class_embeds` must be `len(class_names) + 1` (the last index is
      the null class). The folder holds a `CharacterDDPMPipeline` with the names in `model_index.json`
      (`id2label`), plus a copy of the pipeline module, so that
      `DiffusionPipeline.from_pretrained(output_dir, trust_remote_code=True)` works without this project.

    Files are written to a temporary folder beside `output_dir` and then moved in, `model_index.json` last, so
    an interrupted save never leaves a folder that looks complete. Other files in `output_dir` (checkpoints,
    logs) are kept.

    Args:
        output_dir (`str` or `os.PathLike`): The folder to save to (created if needed).
        unet ([`UNet2DModel`]): The trained (EMA) denoiser.
        scheduler ([`SchedulerMixin`]): The training noise scheduler (its config gives the noise schedule).
        class_names (`list[str]`, *optional*): Class names by class index, for a class-conditional `unet`.
        card_info (`dict`, *optional*): For the model card: "dataset", "config", "train_loss", "val_loss",
            "global_step", "training_time_s", and optionally "license".
        sample_grid (`PIL.Image.Image`, *optional*): A grid of samples, saved as `sample_grid.png` and shown
            in the card.
        sampler ([`SchedulerMixin`], *optional*): The scheduler to save instead of `fast_sampler` (a student's).
        distillation (`dict`, *optional*): For a student: teacher, method, steps and folded guidance scale, in
            the card and, for a class-conditional student, in `model_index.json`.
    """
    num_class_embeds = unet.config.num_class_embeds
    if class_names is None and num_class_embeds is not None:
        raise ValueError(
            f"save_pipeline: the UNet has {num_class_embeds} class embeddings; pass class_names "
            f"({num_class_embeds - 1} names, the last embedding being the null class)"
        )
    if class_names is not None and num_class_embeds != len(class_names) + 1:
        raise ValueError(
            f"save_pipeline: {len(class_names)} class names need a UNet with num_class_embeds="
            f"{len(class_names) + 1} (one null class for guidance), got {num_class_embeds}"
        )
    sampler = sampler or fast_sampler(scheduler.config)
    if class_names is None:  # stock DDPMPipeline takes no extra config; a student's card says what it is
        pipeline = DDPMPipeline(unet=unet, scheduler=sampler)
    else:
        pipeline = CharacterDDPMPipeline(unet=unet, scheduler=sampler, id2label=dict(enumerate(class_names)),
                                         distillation=distillation)

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".saving-pipeline-", dir=output_dir))
    try:
        pipeline.save_pretrained(staging)
        if class_names is not None:
            shutil.copyfile(inspect.getsourcefile(character_pipeline), staging / PIPELINE_FILE_NAME)
            _name_custom_class(staging / "model_index.json")
        if sample_grid is not None:
            sample_grid.save(staging / SAMPLE_GRID_NAME)
        write_model_card(
            staging,
            pipeline,
            class_names=class_names,
            card_info={**(card_info or {}), **({"distillation": distillation} if distillation else {})},
            has_sample_grid=sample_grid is not None,
        )
        _move_into(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _name_custom_class(model_index_path: Path) -> None:
    """Point `_class_name` at the copied module, the form diffusers resolves with `trust_remote_code=True`."""
    model_index = json.loads(model_index_path.read_text(encoding="utf-8"))
    model_index["_class_name"] = [PIPELINE_MODULE, CharacterDDPMPipeline.__name__]
    model_index_path.write_text(
        json.dumps(model_index, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _move_into(staging: Path, output_dir: Path) -> None:
    """Replace the saved entries of `output_dir` by those in `staging`, `model_index.json` last."""
    (output_dir / "model_index.json").unlink(missing_ok=True)
    for name in sorted(SAVED_ENTRIES, key=lambda entry: entry == "model_index.json"):
        target = output_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if (staging / name).exists():
            os.replace(staging / name, target)
