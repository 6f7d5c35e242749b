"""CharacterDDPMPipeline.__call__: labels, guidance, generators, output types, schedulers, trajectory GIF."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from pipelines import CharacterDDPMPipeline, CharacterPipelineOutput, image_grid, save_trajectory_gif
from tests.pipeline_helpers import tiny_unet

NAMES = ["۰", "۷", "ب"]


@pytest.fixture(scope="module")
def conditional():
    pipe = CharacterDDPMPipeline(
        tiny_unet(len(NAMES) + 1), DDPMScheduler(num_train_timesteps=50), id2label=dict(enumerate(NAMES))
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def unconditional():
    pipe = CharacterDDPMPipeline(tiny_unet(), DDPMScheduler(num_train_timesteps=50))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, seed=0, **kwargs):
    kwargs = {"num_inference_steps": 2, "output_type": "pt", **kwargs}
    return pipe(generator=torch.Generator().manual_seed(seed), **kwargs)


def test_output_types(conditional):
    pil = run(conditional, batch_size=3, output_type="pil").images
    assert [(image.mode, image.size) for image in pil] == [("L", (8, 8))] * 3
    array = run(conditional, batch_size=3, output_type="np").images
    tensor = run(conditional, batch_size=3, output_type="pt").images
    assert array.shape == (3, 8, 8, 1) and tensor.shape == (3, 1, 8, 8)
    assert 0 <= tensor.min() and tensor.max() <= 1
    np.testing.assert_allclose(array, tensor.permute(0, 2, 3, 1).numpy())
    np.testing.assert_array_equal(np.asarray(pil[0]), (array[0, ..., 0] * 255).round().astype(np.uint8))
    images, = run(conditional, batch_size=3, return_dict=False)
    torch.testing.assert_close(images, tensor)
    with pytest.raises(ValueError, match="output_type"):
        run(conditional, output_type="jpeg")


def test_generator_reproducible_and_per_image(conditional):
    torch.testing.assert_close(
        run(conditional, seed=3, batch_size=2).images, run(conditional, seed=3, batch_size=2).images
    )
    assert not torch.equal(run(conditional, seed=3, batch_size=2).images, run(conditional, seed=4, batch_size=2).images)
    # A list of generators gives image i from generator i, whatever the rest of the batch.
    pair = conditional(
        class_labels=[1, 2],
        generator=[torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)],
        num_inference_steps=2,
        output_type="pt",
    ).images
    alone = run(conditional, seed=6, class_labels=[2]).images
    torch.testing.assert_close(pair[1:], alone)


def test_class_labels_by_name_index_and_list(conditional):
    by_name = run(conditional, batch_size=2, class_labels="ب").images
    torch.testing.assert_close(by_name, run(conditional, batch_size=2, class_labels=2).images)
    torch.testing.assert_close(by_name, run(conditional, class_labels=["ب", 2]).images)
    assert not torch.equal(by_name, run(conditional, batch_size=2, class_labels="۷").images)
    # Default: cycle through the classes.
    torch.testing.assert_close(
        run(conditional, batch_size=4).images, run(conditional, class_labels=[0, 1, 2, 0]).images
    )


def test_bad_labels_are_clear_errors(conditional, unconditional):
    with pytest.raises(ValueError, match="unknown class name 'پ'; valid names: ۰ ۷ ب"):
        run(conditional, class_labels="پ")
    with pytest.raises(ValueError, match=r"valid indices: 0\.\.2"):
        run(conditional, class_labels=3)  # 3 is the null class, not a character
    with pytest.raises(ValueError, match="unconditional"):
        run(unconditional, class_labels=0)
    with pytest.raises(ValueError, match="class-conditional"):
        run(unconditional, guidance_scale=3.0)


def test_guidance_matches_its_formula(conditional):
    """eps = eps(null) + s (eps(c) - eps(null)): s = 0 samples the null class alone; s = 1 (no guidance) the class."""
    null_only = run(conditional, batch_size=2, class_labels="ب", guidance_scale=0.0).images
    unet, scheduler = conditional.unet, conditional.scheduler
    scheduler.set_timesteps(2)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 1, 8, 8, generator=generator)
    null = torch.full((2,), len(NAMES))
    for t in scheduler.timesteps:
        sample = scheduler.step(unet(sample, t, class_labels=null).sample, t, sample, generator=generator).prev_sample
    torch.testing.assert_close(null_only, (sample / 2 + 0.5).clamp(0, 1))
    unguided = run(conditional, batch_size=2, class_labels="ب").images
    guided = run(conditional, batch_size=2, class_labels="ب", guidance_scale=4.0).images
    assert not torch.allclose(guided, unguided)


@pytest.mark.parametrize("scheduler_class", [DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler])
@pytest.mark.parametrize("pipe_name", ["conditional", "unconditional"])
def test_any_scheduler_from_config(request, pipe_name, scheduler_class):
    pipe = request.getfixturevalue(pipe_name)
    original = pipe.scheduler
    pipe.scheduler = scheduler_class.from_config(original.config)
    try:
        kwargs = {"class_labels": "ب", "guidance_scale": 2.0} if pipe_name == "conditional" else {}
        images = run(pipe, batch_size=2, num_inference_steps=3, **kwargs).images
    finally:
        pipe.scheduler = original
    assert images.shape == (2, 1, 8, 8) and torch.isfinite(images).all()


def test_trajectory_and_gif(conditional, tmp_path):
    output = run(conditional, batch_size=2, num_inference_steps=5, trajectory_every=2)
    assert isinstance(output, CharacterPipelineOutput)
    # x_T, after steps 2 and 4, and after the last step 5
    assert len(output.trajectory) == 4
    torch.testing.assert_close(output.trajectory[-1], output.images)
    images, trajectory = run(conditional, batch_size=2, num_inference_steps=5, trajectory_every=2, return_dict=False)
    torch.testing.assert_close(trajectory[-1], images)

    path = tmp_path / "trajectory.gif"
    save_trajectory_gif(output.trajectory, path, num_frames=3)
    with PIL.Image.open(path) as gif:
        assert gif.n_frames == 3
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("L"))
    np.testing.assert_array_equal(last, np.asarray(image_grid(output.images)))
    with pytest.raises(ValueError, match="trajectory_every"):
        save_trajectory_gif(output.trajectory, path, num_frames=5)


def test_latents_fix_the_initial_noise(unconditional):
    noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(9))
    original = unconditional.scheduler
    unconditional.scheduler = DDIMScheduler.from_config(original.config)  # deterministic: x_0 depends on x_T only
    try:
        drawn = run(unconditional, seed=9, batch_size=2).images  # the generator draws x_T first
        given = run(unconditional, seed=1, batch_size=2, latents=noise).images
    finally:
        unconditional.scheduler = original
    torch.testing.assert_close(given, drawn)
    with pytest.raises(ValueError, match=r"latents must have shape \(3, 1, 8, 8\)"):
        run(unconditional, batch_size=3, latents=noise)

