"""save_pipeline: stock diffusers loading, our class, and trust_remote_code without the project installed."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, DiffusionPipeline

from pipelines import CharacterDDPMPipeline, save_pipeline
from tests.pipeline_helpers import CLASS_NAMES, tiny_unet


@pytest.fixture(scope="module")
def unconditional_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unconditional")
    save_pipeline(folder, tiny_unet(), DDPMScheduler(num_train_timesteps=100))
    return folder


@pytest.fixture(scope="module")
def conditional_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conditional")
    save_pipeline(
        folder,
        tiny_unet(len(CLASS_NAMES) + 1),
        DDPMScheduler(num_train_timesteps=100),
        class_names=CLASS_NAMES,
        card_info={"dataset": "glyphs", "train_loss": 0.05},
    )
    return folder


def test_unconditional_loads_with_stock_ddpm_pipeline_and_ours_matches(unconditional_dir):
    assert json.loads((unconditional_dir / "model_index.json").read_text())["_class_name"] == "DDPMPipeline"
    assert not (unconditional_dir / "character_pipeline.py").exists()
    stock = DDPMPipeline.from_pretrained(unconditional_dir)
    ours = CharacterDDPMPipeline.from_pretrained(unconditional_dir)
    assert type(ours) is CharacterDDPMPipeline
    for scheduler_class in (DDPMScheduler, DDIMScheduler, None):  # None: the saved (default) scheduler
        if scheduler_class is not None:
            stock.scheduler = scheduler_class.from_config(stock.scheduler.config)
            ours.scheduler = scheduler_class.from_config(ours.scheduler.config)
        kwargs = dict(batch_size=2, num_inference_steps=3, output_type="np")
        expected = stock(generator=torch.Generator().manual_seed(7), **kwargs).images
        got = ours(generator=torch.Generator().manual_seed(7), **kwargs).images
        np.testing.assert_array_equal(got, expected)
    images = stock(batch_size=2, num_inference_steps=2).images
    assert [(image.mode, image.size) for image in images] == [("L", (8, 8))] * 2


def test_saved_scheduler_keeps_the_training_noise_schedule(unconditional_dir):
    scheduler = DDPMPipeline.from_pretrained(unconditional_dir).scheduler
    assert scheduler.config.num_train_timesteps == 100
    assert scheduler.config.prediction_type == "epsilon"


def test_conditional_loads_with_our_class_and_names_round_trip(conditional_dir):
    pipe = CharacterDDPMPipeline.from_pretrained(conditional_dir)
    assert type(pipe) is CharacterDDPMPipeline  # the installed class, not the copy stored in the folder
    assert pipe.class_names == CLASS_NAMES
    by_name = pipe(class_labels="ب", num_inference_steps=2, generator=torch.manual_seed(0), output_type="np")
    by_index = pipe(class_labels=2, num_inference_steps=2, generator=torch.manual_seed(0), output_type="np")
    np.testing.assert_array_equal(by_name.images, by_index.images)


def test_conditional_without_trust_remote_code_raises_diffusers_error(conditional_dir):
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        DiffusionPipeline.from_pretrained(conditional_dir)


def test_save_refuses_mismatched_class_names(tmp_path):
    with pytest.raises(ValueError, match="num_class_embeds=4"):
        save_pipeline(tmp_path, tiny_unet(3), DDPMScheduler(), class_names=CLASS_NAMES)
    with pytest.raises(ValueError, match="pass class_names"):
        save_pipeline(tmp_path, tiny_unet(4), DDPMScheduler())
    assert not (tmp_path / "model_index.json").exists()


def test_save_keeps_other_files_and_replaces_a_previous_save(tmp_path, conditional_dir):
    (tmp_path / "checkpoint-10").mkdir()
    save_pipeline(tmp_path, tiny_unet(4), DDPMScheduler(), class_names=CLASS_NAMES)
    assert (tmp_path / "character_pipeline.py").exists()
    save_pipeline(tmp_path, tiny_unet(), DDPMScheduler())
    assert (tmp_path / "checkpoint-10").is_dir()
    assert not (tmp_path / "character_pipeline.py").exists()  # a stale copy would make it look remote-code
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".saving")]
    assert isinstance(DDPMPipeline.from_pretrained(tmp_path), DDPMPipeline)


# Run by a fresh interpreter in an empty folder, after removing this project from the import system.
CLEAN_LOAD = textwrap.dedent(
    """
    import importlib.util, os, sys
    repo = sys.argv[2]
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != repo]
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                        and "editable" not in getattr(f, "__name__", "").lower()]
    assert importlib.util.find_spec("pipelines") is None, "the project is still importable"
    import torch
    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained(sys.argv[1], trust_remote_code=True)
    assert type(pipe).__name__ == sys.argv[3], type(pipe)
    assert not type(pipe).__module__.startswith("pipelines"), type(pipe).__module__
    out = pipe(batch_size=2, class_labels="ب", guidance_scale=2.0, num_inference_steps=2,
               generator=torch.manual_seed(0), output_type="np")
    assert out.images.shape == (2, 8, 8, 1), out.images.shape
    print("OK", pipe.class_names)
    """
)


def test_conditional_loads_with_trust_remote_code_without_the_project(conditional_dir, tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", CLEAN_LOAD, str(conditional_dir), repo, "CharacterDDPMPipeline"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK ['۰', '۷', 'ب']" in result.stdout
    # diffusers checks what it loads against __init__'s annotations and warns on a mismatch
    assert "Expected types" not in result.stderr, result.stderr[-2000:]


def saved_before_the_rename(conditional_dir, folder):
    """A copy of a class-conditional model as saved before the pipeline class was renamed: glyph_pipeline.py
    with `GlyphDDPMPipeline`, named so in model_index.json."""
    import shutil

    shutil.copytree(conditional_dir, folder)
    code = (folder / "character_pipeline.py").read_text(encoding="utf-8")
    (folder / "glyph_pipeline.py").write_text(
        code.replace("CharacterDDPMPipeline", "GlyphDDPMPipeline").replace(
            "CharacterPipelineOutput", "GlyphPipelineOutput"
        ),
        encoding="utf-8",
    )
    (folder / "character_pipeline.py").unlink()
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    index["_class_name"] = ["glyph_pipeline", "GlyphDDPMPipeline"]
    (folder / "model_index.json").write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
    return folder


def test_models_saved_before_the_rename_still_load(conditional_dir, tmp_path):
    old = saved_before_the_rename(conditional_dir, tmp_path / "old")
    ours = CharacterDDPMPipeline.from_pretrained(old)
    assert ours.class_names == CLASS_NAMES
    new = CharacterDDPMPipeline.from_pretrained(conditional_dir)
    kwargs = dict(class_labels="ب", num_inference_steps=2, output_type="np")
    np.testing.assert_array_equal(ours(generator=torch.manual_seed(0), **kwargs).images,
                                  new(generator=torch.manual_seed(0), **kwargs).images)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", CLEAN_LOAD, str(old), repo, "GlyphDDPMPipeline"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # saving over such a folder leaves no stale copy of the old module
    save_pipeline(old, tiny_unet(4), DDPMScheduler(), class_names=CLASS_NAMES)
    assert not (old / "glyph_pipeline.py").exists() and (old / "character_pipeline.py").exists()


def test_the_old_class_names_are_deprecated_aliases():
    import pipelines
    from pipelines import glyph_pipeline

    with pytest.warns(FutureWarning, match="use pipelines.CharacterDDPMPipeline"):
        assert glyph_pipeline.GlyphDDPMPipeline is CharacterDDPMPipeline
    with pytest.warns(FutureWarning):
        assert pipelines.GlyphDDPMPipeline is CharacterDDPMPipeline
    assert glyph_pipeline.image_grid is pipelines.image_grid
