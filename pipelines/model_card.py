"""The model card (README.md with YAML metadata) written next to every saved pipeline."""

import json
import os
from pathlib import Path

from diffusers import DiffusionPipeline
from huggingface_hub import ModelCard, ModelCardData

SAMPLE_GRID_NAME = "sample_grid.png"
# Where `usage_snippet` puts the model's location; a reader (or a test) replaces it with a folder or repo id.
MODEL_PLACEHOLDER = "path/to/this/model"

# Hub dataset ids and licences of the data sets `data_prep` builds, by kind.
KNOWN_DATASETS = {
    "mnist": {"hub_id": "ylecun/mnist", "license": "cc-by-sa-3.0", "about": "MNIST handwritten digits (LeCun et al.)"},
    "persian": {
        "hub_id": None,
        "license": "other",
        "about": "the Hoda handwritten Persian digits and letters (research and non-commercial use only)",
    },
    "glyphs": {"hub_id": None, "license": "apache-2.0", "about": "Persian digits and letters rendered from fonts"},
}


def usage_snippet(class_names: list[str] | None, model: str = MODEL_PLACEHOLDER, student_steps: int | None = None,
                  ) -> str:
    """Copy-paste Python that loads the model and saves a grid of 16 samples as `samples.png` (a distilled
    student's in its `student_steps`, without guidance: it is folded in)."""
    steps = student_steps or 20
    if class_names is None:
        return (
            "import torch\n"
            "from diffusers import DDPMPipeline\n"
            "from diffusers.utils import make_image_grid\n\n"
            f'pipe = DDPMPipeline.from_pretrained("{model}")\n'
            f"images = pipe(batch_size=16, num_inference_steps={steps}, generator=torch.manual_seed(0)).images\n"
            'make_image_grid(images, rows=4, cols=4).save("samples.png")\n'
        )
    guidance = "" if student_steps else " guidance_scale=2.0,"
    return (
        "import torch\n"
        "from diffusers import DiffusionPipeline\n"
        "from diffusers.utils import make_image_grid\n\n"
        "# trust_remote_code=True runs character_pipeline.py from this repository: read it first.\n"
        f'pipe = DiffusionPipeline.from_pretrained("{model}", trust_remote_code=True)\n'
        f"print(pipe.class_names)  # {' '.join(class_names[:12])}{' ...' if len(class_names) > 12 else ''}\n"
        f'images = pipe(batch_size=16, class_labels="{class_names[0]}",{guidance}\n'
        f"              num_inference_steps={steps}, generator=torch.manual_seed(0)).images\n"
        'make_image_grid(images, rows=4, cols=4).save("samples.png")\n'
    )


def _card_data(class_names: list[str] | None, card_info: dict) -> ModelCardData:
    dataset = str(card_info.get("dataset", ""))
    known = KNOWN_DATASETS.get(dataset, {})
    hub_id = known.get("hub_id")
    # A Hub id ("owner/name") that is not a local folder names a dataset the Hub can link to.
    if hub_id is None and dataset.count("/") == 1 and not os.path.exists(dataset):
        hub_id = dataset
    tags = ["diffusers", "ddpm", "handwriting"]
    tags += ["class-conditional-image-generation"] if class_names else ["unconditional-image-generation"]
    return ModelCardData(
        library_name="diffusers",
        license=card_info.get("license", known.get("license", "apache-2.0")),
        tags=tags,
        datasets=[hub_id] if hub_id else None,
        pipeline_tag="unconditional-image-generation" if class_names is None else None,
    )


def _format_number(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def model_card_text(
    pipeline: DiffusionPipeline, class_names: list[str] | None, card_info: dict, has_sample_grid: bool
) -> str:
    """The card's Markdown, YAML front matter included."""
    unet = pipeline.unet.config
    dataset = str(card_info.get("dataset", "unknown"))
    about = KNOWN_DATASETS.get(dataset, {}).get("about", f"`{dataset}`")
    kind = "class-conditional" if class_names else "unconditional"
    distillation = card_info.get("distillation")
    if distillation:
        lines = [
            "# Few-step student of a DDPM of handwritten characters",
            "",
            f"A {kind} {distillation['num_inference_steps']}-step student distilled from a denoising diffusion model "
            f"(the teacher `{distillation['teacher']}`) that draws {unet.sample_size}x{unet.sample_size} characters "
            f"of {about}, made by the persian-ddpm project (`python -m pipelines.distill`).",
            "",
        ]
    else:
        lines = [
            "# DDPM of handwritten characters",
            "",
            f"A {kind} denoising diffusion model (DDPM, Ho et al. 2020, arXiv:2006.11239) that draws "
            f"{unet.sample_size}x{unet.sample_size} characters, trained on {about} with the "
            "persian-ddpm project (`train_ddpm.py`).",
            "",
        ]
    if has_sample_grid:
        lines += [f"![samples]({SAMPLE_GRID_NAME})", ""]
    if class_names:
        lines += [f"Classes ({len(class_names)}): {' '.join(class_names)}", ""]
    student_steps = distillation["num_inference_steps"] if distillation else None
    lines += ["## Usage", "", "```python", usage_snippet(class_names, student_steps=student_steps).rstrip("\n"), "```",
              ""]
    if class_names:
        lines += [
            "This model needs the pipeline code stored with it (`character_pipeline.py`, a `CharacterDDPMPipeline` "
            "with class labels, character names and classifier-free guidance). Without `trust_remote_code=True`, "
            'diffusers refuses to load it with its own error: *"... contains custom code in character_pipeline.py '
            'which must be executed to correctly load the model ... Pass `trust_remote_code=True`"*. With the '
            "persian-ddpm project installed, `from pipelines import CharacterDDPMPipeline; "
            "CharacterDDPMPipeline.from_pretrained(...)` loads it without running any downloaded code.",
            "",
        ]
    if distillation:
        lines += distillation_lines(distillation, class_names is None)
    else:
        lines += [
            f"The saved scheduler is `{type(pipeline.scheduler).__name__}` (fast sampling, same noise schedule as "
            "training); swap it with e.g. `pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)`.",
            "",
        ]
    lines += ["## Training", ""]
    results = [
        ("dataset", dataset),
        ("optimizer steps", card_info.get("global_step")),
        ("final training loss", card_info.get("train_loss")),
        ("final validation loss", card_info.get("val_loss")),
        ("training time (s)", card_info.get("training_time_s")),
    ]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {name} | {_format_number(value)} |" for name, value in results if value is not None]
    lines += [""]
    if card_info.get("config"):
        config = json.dumps(card_info["config"], indent=2, sort_keys=True, ensure_ascii=False, default=str)
        lines += ["Training configuration:", "", "```json", config, "```", ""]
    return f"---\n{_card_data(class_names, card_info).to_yaml()}\n---\n\n" + "\n".join(lines)


def _interval(interval: list[float] | None) -> str | None:
    return None if interval is None else f"({interval[0]:g}, {interval[1]:g}]"


def distillation_lines(distillation: dict, unconditional: bool) -> list[str]:
    """The card's section on a student: how it samples, its teacher, method, steps, guidance and budget."""
    steps = distillation["num_inference_steps"]
    lines = [
        f"The saved scheduler is `LCMScheduler` (multistep consistency sampling): the student predicts where the "
        f"teacher's probability-flow ODE ends, in 1 to {steps} steps; the diffusion samplers (DDPM, DPM-Solver++) do "
        "not apply to it.",
        "",
    ]
    if unconditional:
        lines += [
            f"Stock `DDPMPipeline` loads it but asks for 1000 steps unless told: pass `num_inference_steps={steps}` "
            f"(or fewer). persian-ddpm's `CharacterDDPMPipeline` takes its {steps} steps by itself.",
            "",
        ]
    rows = [
        ("teacher", f"`{distillation['teacher']}`"),
        ("method", distillation.get("method")),
        ("steps", steps),
        ("guidance scale folded in", distillation.get("guidance_scale")),
        ("guided where sigma_t is in", _interval(distillation.get("guidance_interval"))),
        ("teacher trajectories", distillation.get("num_pairs")),
        ("teacher sampler", distillation.get("teacher_sampler")),
        ("distillation time (s)", distillation.get("seconds")),
    ]
    lines += ["## Distillation", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {_format_number(value)} |" for name, value in rows if value is not None]
    return lines + [""]


def write_model_card(
    folder: str | os.PathLike,
    pipeline: DiffusionPipeline,
    *,
    class_names: list[str] | None,
    card_info: dict,
    has_sample_grid: bool,
) -> None:
    """Write `README.md` (the Hub model card) into `folder`."""
    card = ModelCard(model_card_text(pipeline, class_names, card_info, has_sample_grid))
    card.save(Path(folder) / "README.md")
