"""`python -m evaluation.usefulness`: train on generated, test on real; augmentation; the memorisation check."""

import json
import shlex

import datasets
import numpy
import pytest
import torch
from diffusers import DDPMScheduler

import data_prep
from evaluation import usefulness as usefulness_module
from evaluation.data import split_to_tensors
from evaluation.memorisation import memorisation_check
from evaluation.usefulness import main, parse_args
from pipelines import save_pipeline
from pipelines.sampling import draw, load_pipeline
from pipelines.synthesize import main as synthesize_main
from tests.evaluation_helpers import SHAPES, make_shapes_dataset
from tests.pipeline_helpers import tiny_unet


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("usefulness")
    dataset = make_shapes_dataset(root / "shapes")
    model = root / "model"
    save_pipeline(model, tiny_unet(len(SHAPES) + 1), DDPMScheduler(num_train_timesteps=50), class_names=list(SHAPES))
    return root, dataset, model


FAST = ["--per_class", "4", "--fractions", "0.25", "0.5", "--num_epochs", "1", "--batch_size", "6",
        "--num_inference_steps", "2", "--no_autocast"]


def test_report_has_every_measure_and_scores_on_the_real_test_split_only(shapes, tmp_path, monkeypatch):
    root, dataset, model = shapes
    scored = []
    real_score = usefulness_module.score_classifier

    def recording_score(classifier, images, labels, num_classes):
        scored.append((images.clone(), labels.clone()))
        return real_score(classifier, images, labels, num_classes)

    monkeypatch.setattr(usefulness_module, "score_classifier", recording_score)
    out = tmp_path / "out"
    argv = [str(model), "--dataset", str(dataset), "--output_dir", str(out), *FAST, "--guidance_scale", "1.5",
            "--guidance_scale_max", "3"]
    assert main(argv) == 0

    results = json.loads((out / "usefulness.json").read_text(encoding="utf-8"))
    runs = results["train_on_generated"]
    assert list(runs) == ["generated only", "real, same count", "real, all"]
    assert runs["generated only"]["num_train"] == 4 * len(SHAPES) == runs["real, same count"]["num_train"]
    assert runs["real, all"]["num_train"] == 40 * len(SHAPES)
    assert all(0.0 <= run["accuracy"] <= 1.0 and len(run["per_class_accuracy"]) == len(SHAPES) for run in runs.values())
    assert [row["fraction"] for row in results["augmentation"]] == [0.25, 0.5]
    assert [row["num_real"] for row in results["augmentation"]] == [10 * len(SHAPES), 20 * len(SHAPES)]
    assert set(results["memorisation"]) == {"pixels", "features"}
    # 3 runs + 2 x 2 augmentation runs, each scored on exactly the real test split
    test_images, test_labels = split_to_tensors(datasets.load_from_disk(str(dataset))["test"], "image", "label", 16)
    assert len(scored) == 7 and results["num_test"] == len(test_images) == 10 * len(SHAPES)
    assert all(torch.equal(images, test_images) and torch.equal(labels, test_labels) for images, labels in scored)
    for name in ("usefulness.md", "usefulness.png", "closest.png"):
        assert (out / name).is_file()
    assert "| generated only | 12 |" in (out / "usefulness.md").read_text(encoding="utf-8")

    # the command the report gives writes, with pipelines.synthesize, the very images that were measured
    command = shlex.split(results["synthesize_command"].replace(" DIR", f" {tmp_path / 'synthetic'}"))
    assert command[:3] == ["python", "-m", "pipelines.synthesize"] and command[3] == str(model)
    assert command[-2:] == ["--output_dir", str(tmp_path / "synthetic")]
    synthesize_main(command[3:] + ["--shard_size", "5"])  # shards of another size than one draw: the same set
    synthetic = datasets.load_from_disk(str(tmp_path / "synthetic"))["train"]
    assert synthetic.features["label"].names == list(SHAPES) and synthetic.num_rows == 12
    config, _ = parse_args(argv)  # usefulness' own draw, before it resizes to the data's size
    drawing = draw(load_pipeline(str(model), "cpu"), 4 * len(SHAPES), **config.draw_options())
    assert synthetic["label"] == drawing.labels.tolist()
    pixels = torch.stack([torch.from_numpy(numpy.asarray(image)) for image in synthetic["image"]])
    assert torch.equal(pixels, (drawing.grayscale[:, 0] * 255).round().byte())


def test_an_unconditional_model_is_refused_with_one_line(shapes, tmp_path, capsys):
    root, dataset, _ = shapes
    save_pipeline(tmp_path / "uncond", tiny_unet(), DDPMScheduler(num_train_timesteps=50))
    assert main([str(tmp_path / "uncond"), "--dataset", str(dataset), "--output_dir", str(tmp_path / "o"), *FAST]) == 2
    assert "needs a class-conditional model" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_fractions_zero_skips_the_augmentation_curve_and_a_share_above_one_is_refused(capsys):
    config, model = parse_args(["m", "--dataset", "d", "--output_dir", "o", "--fractions", "0"])
    assert config.fractions == [] and model == "m"
    config, _ = parse_args(["m", "--dataset", "d", "--output_dir", "o", "--fractions", "0.05", "0"])
    assert config.fractions == [0.05]
    with pytest.raises(SystemExit):
        parse_args(["m", "--dataset", "d", "--output_dir", "o", "--fractions", "1.5"])
    assert "--fractions must lie in (0, 1]" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mnist_rows(shared_data, tmp_path_factory):
    """Real handwriting: MNIST pixels as rows, train (9,000) and test (1,000), from data_prep's split."""
    folder = tmp_path_factory.mktemp("mnist") / "mnist"
    data_prep.prepare("mnist", output_dir=str(folder), source=str(shared_data / "mnist"))
    splits = datasets.load_from_disk(str(folder))
    return [split_to_tensors(splits[name], "image", "label")[0].flatten(1) for name in ("train", "test")]


def test_memorisation_check_flags_a_model_that_returns_its_training_images(mnist_rows):
    train, test = mnist_rows
    copies = memorisation_check(train[:500], train, test[:500])
    assert copies["copies"] is True and copies["flagged_share"] == 1.0
    assert copies["closest"]["distances"][0] == 0.0


def test_memorisation_check_does_not_flag_real_images_it_has_not_seen(mnist_rows):
    train, test = mnist_rows
    check = memorisation_check(test[500:], train, test[:500])  # unseen real handwriting as the "samples"
    assert check["copies"] is False and check["flagged_share"] < 0.03
    assert 0 < check["threshold"] < check["test_nearest"]["50%"]
