"""A web demo: pick a character, press Generate, watch a trained character DDPM draw it.

    python app.py --model runs/glyphs          # a folder saved by train_ddpm.py, or a Hub model id

This is also the app file of a Hugging Face Space (`sdk: gradio`, `app_file: app.py`): `python -m pipelines.space`
publishes it with a `model_id.txt` beside it naming the Space's model (its `model/` folder or a Hub id). The page
works offline: no analytics, and only system fonts, so the browser fetches nothing beyond the app's own server.
"""

import os

# Idle OpenMP threads sleep instead of spinning. The app shares its CPU with its own server and often with
# other programs, and there spinning threads slow sampling down several times (`python -m benchmarks.app_speed`:
# 16 images on a busy 2-core CPU, 4.7 s sleeping, 15.9 s spinning). OpenMP reads this once, when torch starts it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402  (the setting above must come before torch is imported)
import functools  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import gradio as gr  # noqa: E402
import PIL.Image  # noqa: E402
import torch  # noqa: E402
from transformers import HfArgumentParser  # noqa: E402

from pipelines import (  # noqa: E402
    CharacterDDPMPipeline,
    image_grid,
    sampling,  # noqa: E402
    save_trajectory_gif,
)
from pipelines.samplers import DEFAULT_SAMPLER as DEFAULT_SAMPLER_KEY  # noqa: E402
from pipelines.samplers import SAMPLERS, is_student, sampler_name, samplers_for  # noqa: E402

# The model the README quick start trains; `--model`, $PERSIAN_DDPM_MODEL and a published Space's
# model_id.txt override it.
DEFAULT_MODEL = "runs/glyphs"
MODEL_ENV_VAR = "PERSIAN_DDPM_MODEL"
# Written by `python -m pipelines.space` beside app.py: the Space's model, a folder or a Hub id, on one line.
MODEL_FILE = Path(__file__).resolve().with_name("model_id.txt")

ANY_CHARACTER = "any"
MAX_IMAGES = 64
GIF_FRAMES = 20
# Where each call writes its denoising GIF; removed when the app exits.
_GIF_DIR = tempfile.TemporaryDirectory(prefix="persian-ddpm-app-")
# Shown name -> key in `pipelines.samplers.SAMPLERS`, whose entry gives the steps offered when it is picked.
SAMPLER_CHOICES = {entry.title: name for name, entry in SAMPLERS.items()}
DEFAULT_SAMPLER = SAMPLERS[DEFAULT_SAMPLER_KEY].title
DEFAULT_NUM_INFERENCE_STEPS = SAMPLERS[DEFAULT_SAMPLER_KEY].num_inference_steps

# System fonts only, so the browser downloads no font; one with Persian glyphs first for the character menu.
# The pixels of the small characters stay sharp when the images are enlarged.
THEME = gr.themes.Default(
    font=["Vazirmatn", "Noto Sans Arabic", "DejaVu Sans", "system-ui", "sans-serif"],
    font_mono=["DejaVu Sans Mono", "ui-monospace", "monospace"],
)
CSS = """
#grid img, #trajectory img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
#character input { font-size: 1.4em; }
"""


class ModelLoadError(Exception):
    """A model folder or Hub id that cannot be loaded; the message is one line for the page."""


@functools.lru_cache(maxsize=2)
def load_model(model: str) -> CharacterDDPMPipeline:
    """Load (once) the pipeline saved at `model`, a local folder or a Hub model id, on the GPU if there is one.

    Raises:
        ModelLoadError: with one line naming the model, the reason and what to do.
    """
    try:
        return sampling.load_pipeline(model)
    except sampling.ModelLoadError as error:
        raise ModelLoadError(f"{error} (--model or ${MODEL_ENV_VAR}).") from error


def character_choices(pipe: CharacterDDPMPipeline | None) -> list[str]:
    """The character menu: "any" (every class in turn, or the only choice of an unconditional model), then
    the model's class names, which are the characters themselves ("ب", "۷", ...)."""
    return [ANY_CHARACTER, *(pipe.class_names or [])] if pipe is not None else [ANY_CHARACTER]


def describe_model(model: str, pipe: CharacterDDPMPipeline) -> str:
    """One Markdown line about the loaded model."""
    size = pipe.unet.config.sample_size
    if pipe.is_class_conditional:
        kind = f"class-conditional, {len(pipe.class_names or [])} characters"
    else:
        kind = "unconditional"
    if is_student(pipe):
        kind += f", a distilled {sampling.default_steps(pipe)}-step student"
    return f"Model '{model}': {kind}, {size}×{size} pixels."


def sampler_menu(pipe: CharacterDDPMPipeline | None) -> tuple[list[str], str, int]:
    """The samplers the model takes (a student only its own), the one picked at first and its steps."""
    if pipe is None:
        return list(SAMPLER_CHOICES), DEFAULT_SAMPLER, DEFAULT_NUM_INFERENCE_STEPS
    names = samplers_for(pipe)
    first = sampler_name(pipe.scheduler) if sampler_name(pipe.scheduler) in names else names[0]
    return [SAMPLERS[name].title for name in names], SAMPLERS[first].title, sampling.default_steps(pipe, first)


def guidance_visible(pipe: CharacterDDPMPipeline | None) -> bool:
    """The guidance slider is for class-conditional models that do not have guidance distilled into them."""
    return pipe is not None and pipe.is_class_conditional and pipe.folded_guidance_scale is None


def generate(
    model: str,
    character: str,
    num_images: float,
    sampler: str,
    steps: float,
    guidance_scale: float,
    seed: float | None,
) -> tuple[PIL.Image.Image, str, str]:
    """Draw `num_images` characters; returns the grid, the path of the denoising GIF and a status line.

    Bad settings and unloadable models raise `gr.Error`, which the page shows as a message.
    """
    if seed is None or seed < 0 or seed != int(seed):
        raise gr.Error("Seed must be a whole number, 0 or more.")
    if not 1 <= num_images <= MAX_IMAGES or num_images != int(num_images):
        raise gr.Error(f"Number of images must be a whole number from 1 to {MAX_IMAGES}.")
    if steps < 1 or steps != int(steps):
        raise gr.Error("Steps must be a whole number, 1 or more.")
    if sampler not in SAMPLER_CHOICES:
        raise gr.Error(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLER_CHOICES)}.")
    try:
        pipe = load_model(model)
    except ModelLoadError as error:
        raise gr.Error(str(error)) from error
    schedule_length = pipe.scheduler.config.num_train_timesteps
    if steps > schedule_length:
        raise gr.Error(f"Steps must be at most {schedule_length}, the length of this model's noise schedule.")
    steps = int(steps)
    num_frames = min(GIF_FRAMES, steps + 1)
    try:
        drawing = sampling.draw(
            pipe, int(num_images), class_labels=None if character == ANY_CHARACTER else character,
            sampler=SAMPLER_CHOICES[sampler], num_inference_steps=steps,
            guidance_scale=guidance_scale if guidance_visible(pipe) else 1.0, seed=int(seed),
            batch_size=MAX_IMAGES, gif_frames=num_frames)
    except ValueError as error:  # e.g. more steps than the noise schedule has, or a character of another model
        raise gr.Error(str(error)) from error

    grid = image_grid(drawing.images)  # (B, 1, H, W) -> one near-square grid
    gif_dir = Path(_GIF_DIR.name)
    for old in gif_dir.glob("*.gif"):  # Gradio copied it into its own cache when the last call returned
        old.unlink()
    gif_path = gif_dir / f"trajectory-{uuid.uuid4().hex}.gif"
    save_trajectory_gif(drawing.trajectory, gif_path, num_frames=num_frames)
    what = "characters" if character == ANY_CHARACTER else character
    status = f"Drew {int(num_images)} × {what} in **{drawing.seconds:.2f} s** ({sampler}, {steps} steps)."
    return grid, str(gif_path), status


def switch_model(model: str, current: str):
    """Load another model from the page; on failure keep the current one and say why."""
    model = model.strip()
    try:
        pipe = load_model(model)
    except ModelLoadError as error:
        gr.Warning(str(error))
        return current, gr.update(), gr.update(), gr.update(), gr.update(), f"⚠️ {error}"
    choices, sampler, steps = sampler_menu(pipe)
    return (
        model,
        gr.update(choices=character_choices(pipe), value=ANY_CHARACTER),
        gr.update(visible=guidance_visible(pipe)),
        gr.update(choices=choices, value=sampler),
        gr.update(value=steps),
        describe_model(model, pipe),
    )


def pick_sampler(sampler: str):
    """Offer the sampler's usual number of steps when it is picked."""
    return gr.update(value=SAMPLERS[SAMPLER_CHOICES[sampler]].num_inference_steps)


def build_demo(model: str) -> gr.Blocks:
    """The page for `model`. A model that cannot be loaded still gives a page, with the reason at the top."""
    try:
        pipe = load_model(model)
        model_status = describe_model(model, pipe)
    except ModelLoadError as error:
        pipe, model_status = None, f"⚠️ {error}"
    sampler_choices, first_sampler, first_steps = sampler_menu(pipe)

    # No analytics: Gradio's version check and usage reports are the only calls it makes to the internet.
    with gr.Blocks(title="Persian DDPM", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# Persian DDPM\nA denoising diffusion model draws handwritten characters. Pick one and press "
            "**Generate**."
        )
        current_model = gr.State(model)
        with gr.Row(variant="compact"):
            model_box = gr.Textbox(value=model, label="Model (folder or Hub id)", scale=4)
            load_button = gr.Button("Load model", scale=1, min_width=120)
        model_info = gr.Markdown(model_status)
        with gr.Row():
            with gr.Column(scale=1):
                character = gr.Dropdown(
                    character_choices(pipe), value=ANY_CHARACTER, label="Character", elem_id="character"
                )
                num_images = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="Number of images")
                sampler = gr.Radio(sampler_choices, value=first_sampler, label="Sampler")
                steps = gr.Slider(1, 1000, value=first_steps, step=1, label="Steps")
                guidance = gr.Slider(
                    1.0,
                    8.0,
                    value=1.0,
                    step=0.5,
                    label="Guidance scale",
                    info="1 = none; more gives more typical characters, at twice the cost",
                    visible=guidance_visible(pipe),
                )
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
                generate_button = gr.Button("Generate", variant="primary")
            with gr.Column(scale=2):
                grid = gr.Image(
                    label="Characters", type="pil", format="png", interactive=False, height=360, elem_id="grid"
                )
                trajectory = gr.Image(
                    label="Denoising, from noise to characters", type="filepath", interactive=False, height=360,
                    elem_id="trajectory",
                )
                status = gr.Markdown(elem_id="status")

        load_button.click(
            switch_model, [model_box, current_model], [current_model, character, guidance, sampler, steps, model_info]
        )
        sampler.change(pick_sampler, sampler, steps)
        # One generation at a time: the users of a page share each loaded pipeline, and `draw` swaps its scheduler.
        generate_button.click(
            generate,
            [current_model, character, num_images, sampler, steps, guidance, seed],
            [grid, trajectory, status],
            concurrency_limit=1,
        )
    return demo


def default_model() -> str:
    """The model to open: $PERSIAN_DDPM_MODEL, else a published Space's `model_id.txt`, else the quick start's.

    A relative folder in `model_id.txt` is taken relative to app.py, so the Space finds its bundled `model/`
    from any working directory.
    """
    if os.environ.get(MODEL_ENV_VAR):
        return os.environ[MODEL_ENV_VAR]
    if MODEL_FILE.is_file():
        named = MODEL_FILE.read_text(encoding="utf-8").strip()
        bundled = MODEL_FILE.parent / named
        return str(bundled) if named and bundled.is_dir() else (named or DEFAULT_MODEL)
    return DEFAULT_MODEL


@dataclass
class AppArguments:
    """The options of `python app.py`."""

    model: str = field(
        default_factory=default_model,  # read when the parser is built
        metadata={"help": f"a folder saved by train_ddpm.py, or a Hub model id (default: ${MODEL_ENV_VAR}, else "
                          f"the model named in {MODEL_FILE.name} beside app.py, else {DEFAULT_MODEL}, the README "
                          "quick start's model)"},
    )
    host: Optional[str] = field(default=None, metadata={
        "help": "address to listen on (default: $GRADIO_SERVER_NAME, else 127.0.0.1, this machine only)"})
    port: Optional[int] = field(default=None, metadata={
        "help": "port to listen on (default: $GRADIO_SERVER_PORT, else the first free from 7860)"})
    num_threads: Optional[int] = field(default=None, metadata={
        "help": "CPU threads for torch (default: torch's choice, one per core); 1 is faster on a machine busy with "
                "other jobs"})


def parse_args(argv: list[str] | None = None) -> AppArguments:
    parser = HfArgumentParser(
        AppArguments,
        prog="python app.py",
        description="Serve a web page that draws characters with a trained character DDPM.",
        formatter_class=argparse.HelpFormatter,  # the help texts say the defaults, which depend on the environment
    )
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    if args.num_threads is not None and args.num_threads < 1:
        parser.error(f"--num_threads must be at least 1, got {args.num_threads}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    demo = build_demo(args.model)
    demo.queue(max_size=32).launch(
        server_name=args.host, server_port=args.port, theme=THEME, css=CSS
    )


if __name__ == "__main__":
    main()
