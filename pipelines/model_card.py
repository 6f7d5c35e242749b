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


def usage_snippet(class_names: list[str] | None, model: str = MODEL_PLACEHOLDER) -> str:
    """Copy-paste Python that loads the model and saves a grid of 16 samples as `samples.png`."""
    if class_names is None:
        return (
            "import torch\n"
            "from diffusers import DDPMPipeline\n"
            "from diffusers.utils import make_image_grid\n\n"
            f'pipe = DDPMPipeline.from_pretrained("{model}")\n'
            "images = pipe(batch_size=16, num_inference_steps=20, generator=torch.manual_seed(0)).images\n"
            'make_image_grid(images, rows=4, cols=4).save("samples.png")\n'
        )
    return (
        "import torch\n"
        "from diffusers import DiffusionPipeline\n"
        "from diffusers.utils import make_image_grid\n\n"
        "# trust_remote_code=True runs character_pipeline.py from this repository: read it first.\n"
        f'pipe = DiffusionPipeline.from_pretrained("{model}", trust_remote_code=True)\n'
        f"print(pipe.class_names)  # {' '.join(class_names[:12])}{' ...' if len(class_names) > 12 else ''}\n"
        f'images = pipe(batch_size=16, class_labels="{class_names[0]}", guidance_scale=2.0,\n'
        "              num_inference_steps=20, generator=torch.manual_seed(0)).images\n"
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
    lines += ["## Usage", "", "```python", usage_snippet(class_names).rstrip("\n"), "```", ""]
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
    lines += [
        f"The saved scheduler is `{type(pipeline.scheduler).__name__}` (fast sampling, same noise schedule as "
        "training); swap it with e.g. `pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)`.",
        "",
        "## Training",
        "",
    ]
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
