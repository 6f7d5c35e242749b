"""app.py without a browser: what Generate returns, the messages for bad settings and models, the CLI defaults."""

import importlib.util
import string

import numpy as np
import PIL.Image
import pytest
import yaml
from diffusers import DDPMScheduler

from pipelines import save_pipeline
from tests.conftest import REPO_ROOT
from tests.pipeline_helpers import tiny_unet

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[app]')")

# app.py is a script at the repository root (a Space's app file), not part of the installed package.
_spec = importlib.util.spec_from_file_location("app", REPO_ROOT / "app.py")
app = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(app)

CLASS_NAMES = ["ب", "۷"]


@pytest.fixture(scope="module")
def conditional_model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("conditional")
    unet = tiny_unet(num_class_embeds=len(CLASS_NAMES) + 1)
    save_pipeline(folder, unet, DDPMScheduler(num_train_timesteps=100), class_names=CLASS_NAMES)
    return str(folder)


@pytest.fixture(scope="module")
def unconditional_model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("unconditional")
    save_pipeline(folder, tiny_unet(), DDPMScheduler(num_train_timesteps=100))
    return str(folder)


def test_generate_returns_grid_gif_and_time(conditional_model):
    """The grid has the requested tiles, the GIF ends on it, the seed decides the images."""
    grid, gif_path, status = app.generate(conditional_model, "۷", 7, "DPM-Solver++", 10, 2.0, 3)
    assert grid.size == (3 * 8, 3 * 8)  # 7 tiles of 8 x 8 in a 3 x 3 grid
    with PIL.Image.open(gif_path) as gif:
        assert gif.n_frames == 11  # the noise, then each of the 10 steps
        gif.seek(gif.n_frames - 1)
        last_frame = np.asarray(gif.convert("L"))
    # the animation ends on the characters shown in the grid (GIF palettes may round a little)
    assert np.abs(last_frame.astype(int) - np.asarray(grid, dtype=int)).max() <= 8
    assert status.startswith("Drew 7 × ۷ in **") and "(DPM-Solver++, 10 steps)" in status

    again, _, _ = app.generate(conditional_model, "۷", 7, "DPM-Solver++", 10, 2.0, 3)
    other_seed, _, _ = app.generate(conditional_model, "۷", 7, "DPM-Solver++", 10, 2.0, 4)
    assert np.array_equal(np.asarray(grid), np.asarray(again))
    assert not np.array_equal(np.asarray(grid), np.asarray(other_seed))


@pytest.mark.parametrize("sampler", ["DDIM", "DDPM"])
def test_other_samplers_and_few_steps(conditional_model, sampler):
    """Fewer steps than GIF frames: one frame per step."""
    grid, gif_path, status = app.generate(conditional_model, "any", 2, sampler, 3, 1.0, 0)
    assert grid.size == (2 * 8, 1 * 8)
    with PIL.Image.open(gif_path) as gif:
        assert gif.n_frames == 4  # the noise, then each of the 3 steps
    assert f"({sampler}, 3 steps)" in status


def test_unconditional_model_offers_any_and_ignores_guidance(unconditional_model):
    pipe = app.load_model(unconditional_model)
    assert app.character_choices(pipe) == [app.ANY_CHARACTER]
    grid, gif_path, _ = app.generate(unconditional_model, app.ANY_CHARACTER, 2, "DPM-Solver++", 25, 3.0, 0)
    assert grid.size == (16, 8)
    with PIL.Image.open(gif_path) as gif:
        assert gif.n_frames == app.GIF_FRAMES  # more steps than frames: the GIF skips some
    model, choices, guidance, sampler, steps, info = app.switch_model(unconditional_model, "previous")
    assert model == unconditional_model and guidance["visible"] is False and "unconditional" in info
    assert "Consistency (distilled student)" not in sampler["choices"] and steps["value"] == 10


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"num_images": 0}, "Number of images must be a whole number from 1 to 64"),
        ({"num_images": 65}, "Number of images must be a whole number from 1 to 64"),
        ({"steps": 0}, "Steps must be a whole number, 1 or more"),
        ({"steps": 101}, "Steps must be at most 100"),
        ({"seed": -1}, "Seed must be a whole number"),
        ({"seed": None}, "Seed must be a whole number"),
        ({"sampler": "Euler"}, "Unknown sampler 'Euler'"),
        ({"character": "ج"}, "unknown class name 'ج'; valid names: ب ۷"),
    ],
)
def test_bad_settings_give_a_message(conditional_model, setting, message):
    settings = {"character": "ب", "num_images": 4, "sampler": "DPM-Solver++", "steps": 5, "guidance_scale": 1.0}
    settings = {**settings, "seed": 0, **setting}
    with pytest.raises(gr.Error, match=message):
        app.generate(conditional_model, **settings)


def test_unloadable_model_gives_a_message(tmp_path, conditional_model):
    missing = str(tmp_path / "not-trained-yet")
    with pytest.raises(gr.Error, match="model .*not-trained-yet: cannot load it \\(no such folder"):
        app.generate(missing, "any", 4, "DPM-Solver++", 5, 1.0, 0)
    # a folder that is not a saved model
    with pytest.raises(gr.Error, match="model_index.json"):
        app.generate(str(tmp_path), "any", 4, "DPM-Solver++", 5, 1.0, 0)
    # switching to it from the page keeps the current model and says why
    model, *_, info = app.switch_model(missing, conditional_model)
    assert model == conditional_model and info.startswith("⚠️ model ") and "cannot load it" in info


def test_page_builds_with_an_unloadable_model(tmp_path):
    demo = app.build_demo(str(tmp_path / "missing"))
    assert demo.analytics_enabled is False
    markdown = [block.value for block in demo.blocks.values() if isinstance(block, gr.Markdown)]
    assert any("cannot load it" in text for text in markdown)


def test_model_comes_from_flag_then_environment_then_model_file_then_default(monkeypatch, tmp_path):
    monkeypatch.delenv(app.MODEL_ENV_VAR, raising=False)
    monkeypatch.setattr(app, "MODEL_FILE", tmp_path / "model_id.txt")
    assert app.parse_args([]).model == app.DEFAULT_MODEL
    (tmp_path / "model_id.txt").write_text("someone/from-the-file\n")
    assert app.parse_args([]).model == "someone/from-the-file"
    (tmp_path / "model").mkdir()
    (tmp_path / "model_id.txt").write_text("model\n")  # a bundled folder, found beside the file
    assert app.parse_args([]).model == str(tmp_path / "model")
    monkeypatch.setenv(app.MODEL_ENV_VAR, "someone/glyphs")
    assert app.parse_args([]).model == "someone/glyphs"
    assert app.parse_args(["--model", "runs/mnist"]).model == "runs/mnist"


def test_space_template_names_this_app():
    space = REPO_ROOT / "space"
    text = string.Template((space / "README.md").read_text(encoding="utf-8")).substitute(
        title="Persian glyphs", model_id="someone/persian-glyphs"
    )
    front_matter = yaml.safe_load(text.split("---")[1])
    assert front_matter["sdk"] == "gradio" and (REPO_ROOT / front_matter["app_file"]).is_file()
    assert int(front_matter["sdk_version"].split(".")[0]) >= 6  # launch(theme=..., css=...) is Gradio 6's API
    assert front_matter["models"] == ["someone/persian-glyphs"]
    assert app.DEFAULT_MODEL in text and app.MODEL_ENV_VAR in text
    requirements = (space / "requirements.txt").read_text(encoding="utf-8")
    assert {"torch", "diffusers", "huggingface-hub"} <= {line.split(">")[0] for line in requirements.splitlines()}


def test_bad_thread_count_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        app.parse_args(["--num_threads", "0"])
    assert exit_info.value.code == 2
    assert "--num_threads must be at least 1" in capsys.readouterr().err
