"""pipelines.sampling: the one way to sample, its sampler registry, and the flags every command shares."""

import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler
from transformers import HfArgumentParser

from evaluation.evaluate_model import EvaluationConfig
from evaluation.usefulness import UsefulnessConfig
from pipelines import CharacterDDPMPipeline
from pipelines.generate import build_parser as generate_parser
from pipelines.samplers import DEFAULT_SAMPLER, SAMPLERS, build_sampler, fast_sampler, sampler_name
from pipelines.sampling import SamplingArguments, default_steps, draw
from pipelines.synthesize import SynthesizeArguments
from tests.pipeline_helpers import CLASS_NAMES, tiny_unet


@pytest.fixture
def conditional():
    scheduler = fast_sampler(DDPMScheduler(num_train_timesteps=100).config)
    return CharacterDDPMPipeline(
        tiny_unet(len(CLASS_NAMES) + 1).eval(), scheduler, id2label=dict(enumerate(CLASS_NAMES))
    )


def test_every_sampler_is_recognised_from_its_scheduler():
    config = DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2").config
    for name in SAMPLERS:
        assert sampler_name(build_sampler(name, config)) == name
    assert sampler_name(fast_sampler(config)) == DEFAULT_SAMPLER
    with pytest.raises(ValueError, match="unknown sampler 'euler'; choose one of ddpm, ddim"):
        build_sampler("euler", config)


def test_draw_takes_the_samplers_usual_steps_and_leaves_the_pipeline_as_it_was(conditional):
    saved = conditional.scheduler
    drawing = draw(conditional, 4, sampler="ddim", seed=1)
    assert (drawing.sampler, drawing.num_inference_steps) == ("DDIM", SAMPLERS["ddim"].num_inference_steps)
    assert conditional.scheduler is saved
    default = draw(conditional, 4, num_inference_steps=2)
    assert (default.sampler, default.num_inference_steps) == (SAMPLERS[DEFAULT_SAMPLER].title, 2)
    assert default_steps(conditional) == SAMPLERS[DEFAULT_SAMPLER].num_inference_steps
    # DDPM's usual 1000 steps, on this model's 100-step schedule: all 100
    assert draw(conditional, 1, sampler="ddpm").num_inference_steps == 100


def test_draw_labels_guidance_and_trajectory(conditional):
    drawing = draw(conditional, 5, class_labels="ب", guidance_scale=2.0, num_inference_steps=4, gif_frames=3,
                   batch_size=2)
    assert drawing.labels.tolist() == [2] * 5
    assert drawing.images.shape == (5, 1, 8, 8) and 0 <= drawing.images.min() and drawing.images.max() <= 1
    # frames from every batch are joined; the last frame is the final image
    assert all(frame.shape == (5, 1, 8, 8) for frame in drawing.trajectory)
    torch.testing.assert_close(drawing.trajectory[-1], drawing.images)
    # the same x_T gives the same images from any seed to a deterministic sampler
    latents = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    one = draw(conditional, 2, sampler="ddim", num_inference_steps=3, latents=latents, seed=0).images
    two = draw(conditional, 2, sampler="ddim", num_inference_steps=3, latents=latents, seed=9).images
    torch.testing.assert_close(one, two)
    with pytest.raises(ValueError, match="unknown class name 'x'"):
        draw(conditional, 2, class_labels="x", num_inference_steps=2)
    with pytest.raises(ValueError, match="--num_inference_steps 101: must be between 1 and 100"):
        draw(conditional, 2, num_inference_steps=101)


def test_draw_runs_stock_ddpm_pipelines_like_ours():
    unet, scheduler = tiny_unet().eval(), fast_sampler(DDPMScheduler(num_train_timesteps=100).config)
    stock = draw(DDPMPipeline(unet, scheduler), 3, num_inference_steps=3, autocast=False).images
    ours = draw(CharacterDDPMPipeline(unet, scheduler), 3, num_inference_steps=3, autocast=False).images
    torch.testing.assert_close(stock, ours, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="unconditional"):
        draw(DDPMPipeline(unet, scheduler), 2, guidance_scale=2.0, num_inference_steps=2)


def parsers():
    """Each command that samples, as (name, parser): the generated flags of its dataclass."""
    yield "pipelines.generate", generate_parser()
    yield "python -m evaluation", HfArgumentParser(EvaluationConfig)
    yield "evaluation.usefulness", HfArgumentParser(UsefulnessConfig)
    yield "pipelines.synthesize", HfArgumentParser(SynthesizeArguments)


@pytest.mark.parametrize("name, parser", list(parsers()), ids=lambda value: value if isinstance(value, str) else "")
def test_every_sampling_command_names_its_flags_the_same(name, parser):
    words = set(parser.format_help().replace(",", " ").split())
    assert {"--sampler", "--num_inference_steps", "--guidance_scale", "--seed", "--no_autocast",
            "--guidance_scale_max", "--guidance_interval", "--noise_temperature"} <= words, name
    # the names of before still parse, onto the new fields
    flags = ["--scheduler", "ddim", "--steps", "7", "--dataset", "d", "--output_dir", "o", "M"]
    namespace, _ = parser.parse_known_args(flags)
    assert (namespace.sampler, namespace.num_inference_steps) == ("ddim", 7)


def test_the_docs_table_of_samplers_is_the_registry():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "generation.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): int(line.split("|")[3]) for line in text.splitlines()
            if line.startswith("| `") and line.count("|") == 4 and line.split("|")[3].strip().isdigit()}
    assert rows == {name: entry.num_inference_steps for name, entry in SAMPLERS.items()}


def test_a_guidance_interval_guides_only_the_steps_inside_it(conditional):
    options = {"class_labels": "ب", "sampler": "ddim", "num_inference_steps": 4, "seed": 3}
    guided = draw(conditional, 3, guidance_scale=3.0, **options).images
    plain = draw(conditional, 3, **options).images
    every_step = draw(conditional, 3, guidance_scale=3.0, guidance_interval=(0.0, 1e9), **options).images
    no_step = draw(conditional, 3, guidance_scale=3.0, guidance_interval=(1e8, 1e9), **options).images
    some_steps = draw(conditional, 3, guidance_scale=3.0, guidance_interval=(0.0, 0.5), **options).images
    assert not torch.allclose(guided, plain, atol=1e-4)
    torch.testing.assert_close(every_step, guided)
    torch.testing.assert_close(no_step, plain)
    assert not torch.allclose(some_steps, guided, atol=1e-4) and not torch.allclose(some_steps, plain, atol=1e-4)


def test_per_image_guidance_scales_are_seeded_per_image(conditional):
    options = {"class_labels": "ب", "sampler": "ddim", "num_inference_steps": 3, "guidance_scale": 1.0,
               "guidance_scale_max": 4.0}
    batch = draw(conditional, 4, seed=10, batch_size=4, **options).images
    alone = draw(conditional, 1, seed=12, **options).images  # image 2 of the batch, drawn by itself
    torch.testing.assert_close(batch[2:3], alone)
    # the scales differ between images: none is the plain conditional sample or a single fixed scale's
    fixed = draw(conditional, 4, seed=10, class_labels="ب", sampler="ddim", num_inference_steps=3,
                 guidance_scale=2.5).images
    assert all(not torch.allclose(batch[i], fixed[i], atol=1e-4) for i in range(4))


def test_noise_temperature_scales_the_seeded_initial_noise(conditional):
    options = {"class_labels": "ب", "sampler": "ddim", "num_inference_steps": 3, "seed": 5}
    torch.testing.assert_close(draw(conditional, 2, noise_temperature=1.0, **options).images,
                               draw(conditional, 2, **options).images)
    noise = torch.cat([torch.randn((1, 1, 8, 8), generator=torch.Generator().manual_seed(5 + i)) for i in range(2)])
    hot = draw(conditional, 2, noise_temperature=1.5, **options).images
    torch.testing.assert_close(hot, draw(conditional, 2, latents=1.5 * noise, **options).images)


@pytest.mark.parametrize("flags, problem", [
    (["--guidance_scale", "2", "--guidance_scale_max", "1.5"], "--guidance_scale_max 1.5: must be at least"),
    (["--guidance_interval", "3", "1"], "--guidance_interval 3.0 1.0: must be LOW HIGH"),
    (["--guidance_interval", "1"], "--guidance_interval 1.0: must be LOW HIGH"),
    (["--noise_temperature", "0"], "--noise_temperature 0.0: must be more than 0"),
])
def test_impossible_diversity_settings_are_named(flags, problem):
    (args,) = HfArgumentParser(SamplingArguments).parse_args_into_dataclasses(args=flags)
    assert args.sampling_problem().startswith(problem)


@pytest.mark.parametrize("flags", [["--guidance_scale", "1.5", "--guidance_interval", "0.28", "5.42", "--seed", "3"],
                                   ["--sampler", "ddpm", "--num_inference_steps", "4", "--no_autocast"]])
def test_the_flags_of_a_setting_give_the_same_setting_back(flags):
    # usefulness hands these words to pipelines.synthesize to draw the very images it measured: on a CPU with
    # native bf16 a float32 draw differs from a bf16 one, so the precision has to travel with them
    (settings,) = HfArgumentParser(SamplingArguments).parse_args_into_dataclasses(flags)
    (again,) = HfArgumentParser(SamplingArguments).parse_args_into_dataclasses(settings.as_flags())
    assert again.draw_options() == settings.draw_options()
    assert ("--no_autocast" in settings.as_flags()) == ("--no_autocast" in flags)
