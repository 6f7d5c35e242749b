"""python -m pipelines.generate end to end, and the model card: metadata and its usage snippet, executed."""

import os
import re
import subprocess
import sys

import pytest
import yaml
from diffusers import DDPMScheduler
from PIL import Image

from pipelines import save_pipeline
from pipelines.generate import main
from tests.pipeline_helpers import CLASS_NAMES, tiny_unet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    card_info = {
        "dataset": "mnist",
        "config": {"learning_rate": 1e-4, "resolution": 8},
        "train_loss": 0.0312,
        "val_loss": 0.0345,
        "global_step": 300,
        "training_time_s": 61.5,
    }
    grid = Image.new("L", (16, 16), 128)
    save_pipeline(
        root / "uncond", tiny_unet(), DDPMScheduler(num_train_timesteps=50), card_info=card_info, sample_grid=grid
    )
    save_pipeline(
        root / "cond",
        tiny_unet(len(CLASS_NAMES) + 1),
        DDPMScheduler(num_train_timesteps=50),
        class_names=CLASS_NAMES,
        card_info={**card_info, "dataset": "persian"},
    )
    return root


def test_generate_grid_and_gif(models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main([
        str(models / "cond"), "--num_images", "6", "--class_name", "ب", "--guidance_scale", "2",
        "--num_inference_steps", "4",
        "--output", "grid.png", "--gif", "trajectory.gif", "--gif_frames", "3", "--cols", "3",
    ])  # fmt: skip
    with Image.open(tmp_path / "grid.png") as grid:
        assert (grid.mode, grid.size) == ("L", (24, 16))  # 3 columns x 2 rows of 8x8
    with Image.open(tmp_path / "trajectory.gif") as gif:
        assert gif.n_frames == 3
        gif.seek(2)
        assert list(gif.convert("L").getdata()) == list(Image.open(tmp_path / "grid.png").getdata())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["grid.png", "trajectory.gif"]  # no leftovers


def test_the_default_gif_has_a_frame_per_step_up_to_twenty(models, tmp_path):
    for steps, frames in (("4", 5), ("30", 20)):
        main(
            [
                str(models / "uncond"),
                "--num_images",
                "2",
                "--num_inference_steps",
                steps,
                "--output",
                str(tmp_path / "g.png"),
                "--gif",
                str(tmp_path / "t.gif"),
            ]
        )
        with Image.open(tmp_path / "t.gif") as gif:
            assert gif.n_frames == frames


def test_generate_is_reproducible_and_takes_a_scheduler(models, tmp_path):
    for name in ("a.png", "b.png"):
        main(
            [
                str(models / "uncond"),
                "--num_images",
                "2",
                "--num_inference_steps",
                "3",
                "--sampler",
                "ddim",
                "--output",
                str(tmp_path / name),
            ]
        )
    assert Image.open(tmp_path / "a.png").tobytes() == Image.open(tmp_path / "b.png").tobytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["cond", "--class_name", "پ"], "unknown class name 'پ'; valid names: ۰ ۷ ب"),
        (["uncond", "--class_name", "1"], "unconditional"),
        (["cond", "--num_images", "0"], "--num_images must be at least 1"),
        (["cond", "--output", "grid.txt"], "unsupported file type .txt"),
        (
            ["cond", "--num_inference_steps", "2", "--gif", "t.gif", "--gif_frames", "5"],
            "--gif_frames must be between 2 and",
        ),
        (["missing_folder"], "no such folder"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(models, tmp_path, monkeypatch, capsys, args, message):
    model, *rest = args
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([str(models / model), "--num_inference_steps", "2", *rest])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def card_parts(folder):
    text = (folder / "README.md").read_text(encoding="utf-8")
    front_matter = yaml.safe_load(text.split("---\n")[1])
    snippet = re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)
    return text, front_matter, snippet


def test_model_card_metadata_and_contents(models):
    text, meta, _ = card_parts(models / "uncond")
    assert meta["library_name"] == "diffusers"
    assert meta["license"] == "cc-by-sa-3.0" and meta["datasets"] == ["ylecun/mnist"]
    assert {"diffusers", "unconditional-image-generation"} <= set(meta["tags"])
    assert (models / "uncond" / "sample_grid.png").exists() and "](sample_grid.png)" in text
    for expected in ("0.0312", "0.0345", "300", '"learning_rate": 0.0001', "DPMSolverMultistepScheduler"):
        assert expected in text

    text, meta, _ = card_parts(models / "cond")
    assert "class-conditional-image-generation" in meta["tags"]
    assert meta["license"] == "other" and "non-commercial" in text
    assert "trust_remote_code=True" in text and "۰ ۷ ب" in text
    assert not (models / "cond" / "sample_grid.png").exists() and "sample_grid.png" not in text


def test_model_card_snippets_run(models, tmp_path):
    """Copy-paste each card's code, pointed at its saved folder, into a fresh interpreter outside the project."""
    runs = []
    for kind in ("uncond", "cond"):
        _, _, snippet = card_parts(models / kind)
        assert "path/to/this/model" in snippet
        (tmp_path / kind).mkdir()
        (tmp_path / kind / "snippet.py").write_text(
            snippet.replace("path/to/this/model", str(models / kind)), encoding="utf-8"
        )
        runs.append(f"os.chdir({str(tmp_path / kind)!r}); runpy.run_path('snippet.py')")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    script = "import os, runpy\n" + "\n".join(runs)  # one interpreter for both: imports dominate the time
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for kind in ("uncond", "cond"):
        with Image.open(tmp_path / kind / "samples.png") as grid:
            assert grid.size == (32, 32)  # 4 x 4 samples of 8 x 8
