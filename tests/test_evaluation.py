"""Tests of `python -m evaluation` (sampling, scoring, report) and the training-time hook."""

import csv
import json

import datasets
import numpy as np
import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler

from evaluation import load_feature_extractor
from evaluation.__main__ import main
from evaluation.data import reader_split
from evaluation.scores import fid_for_pipeline, split_features
from evaluation.train_classifier import main as train_classifier_main
from pipelines import CharacterDDPMPipeline, save_pipeline
from pipelines.sampling import draw
from tests.evaluation_helpers import SHAPES, TINY_MODEL, make_shapes_dataset, make_shapes_folder, train_quickly
from tests.pipeline_helpers import tiny_unet  # 8-px samples: the classifier resizes them to its 16 px


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A shapes dataset, a classifier trained on it, and an unconditional and a class-conditional model."""
    root = tmp_path_factory.mktemp("evaluation")
    dataset = make_shapes_dataset(root / "shapes")
    classifier = root / "classifier"
    argv = ["--dataset", str(dataset), "--output_dir", str(classifier), "--num_epochs", "6", "--batch_size", "16"]
    assert train_classifier_main([*argv, "--learning_rate", "0.01", *TINY_MODEL]) == 0
    reader = ["--dataset", str(dataset), "--output_dir", str(root / "reader"), "--independent", "--batch_size", "8"]
    assert train_classifier_main([*reader, "--min_train_steps", "30", "--learning_rate", "0.01", *TINY_MODEL]) == 0
    save_pipeline(root / "uncond", tiny_unet(), DDPMScheduler(num_train_timesteps=50))
    save_pipeline(
        root / "cond", tiny_unet(len(SHAPES) + 1), DDPMScheduler(num_train_timesteps=50), class_names=list(SHAPES)
    )
    return root, dataset, classifier


def run(setup, model: str, *extra: str) -> tuple[int, dict]:
    root, dataset, classifier = setup
    out = root / f"out-{model}"
    argv = [str(root / model), "--dataset", str(dataset), "--classifier", str(classifier), "--output_dir", str(out),
            "--reader", str(root / "reader")]
    argv += ["--num_samples", "12", "--batch_size", "5", "--num_inference_steps", "2", "--kid_subset_size", "6"]
    code = main([*argv, "--overwrite", *extra])
    return code, (json.loads((out / "metrics.json").read_text()) if code == 0 else {})


def test_unconditional_model_report_has_scores_next_to_the_floor(setup, capsys):
    code, metrics = run(setup, "uncond")
    assert code == 0
    keys = {"frechet_distance", "kernel_distance", "kernel_distance_std", "precision", "recall", "recognisable"}
    assert set(metrics["samples"]) == keys and set(metrics["real_data_floor"]) == keys
    # The classifier is sure of most real shapes (this tiny one is also sure of much of the noise, so the
    # samples' share is only range-checked; test_recognisable_share_counts_confident_predictions checks the count).
    assert metrics["real_data_floor"]["recognisable"] >= 0.5
    assert 0.0 <= metrics["samples"]["recognisable"] <= 1.0
    assert metrics["class_conditional"] is False and metrics["num_samples"] == 12
    assert metrics["num_test_images"] == 30 and metrics["num_floor_images"] == 12
    check = metrics["memorisation"]  # noise is no copy of a training image
    assert check["quantile"] == 0.01 and 0.0 <= check["flagged_share"] <= 1.0 and check["copies"] is False
    # Two-step samples of an untrained UNet are noise: much farther from the test set than real train images.
    assert metrics["samples"]["frechet_distance"] > 2 * metrics["real_data_floor"]["frechet_distance"]
    out = setup[0] / "out-uncond"
    with open(out / "per_class.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [row["class"] for row in rows] == list(SHAPES)
    assert "requested" not in rows[0]  # no requested classes for an unconditional model
    assert sum(float(row["sample_share"]) for row in rows) == pytest.approx(1.0)
    assert {"per_class.md", "summary.md", "samples.png"} <= {p.name for p in out.iterdir()}
    printed = capsys.readouterr().out
    assert "| Fréchet distance (lower is better) |" in printed and "real-data floor" in printed


def test_image_folder_dataset_is_scored_like_a_prepared_one(setup, tmp_path):
    folder = make_shapes_folder(tmp_path / "shapes")
    assert train_quickly(folder, tmp_path / "clf") == 0  # a classifier of the folder's classes (sorted names)
    argv = [str(setup[0] / "uncond"), "--dataset", str(folder), "--classifier", str(tmp_path / "clf")]
    argv += ["--output_dir", str(tmp_path / "out"), "--num_samples", "12", "--batch_size", "6"]
    assert main([*argv, "--num_inference_steps", "2", "--kid_subset_size", "6", "--no_independent_reader"]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["independent_reader"] is None
    assert metrics["num_test_images"] == 6 and metrics["num_floor_images"] == 12  # 5% of 120 held out, seeded
    assert [row["class"] for row in metrics["per_class"]] == sorted(SHAPES)
    assert np.isfinite([metrics[name]["frechet_distance"] for name in ("samples", "real_data_floor")]).all()


def test_class_conditional_model_reports_recognition_per_requested_class(setup):
    code, metrics = run(setup, "cond", "--guidance_scale", "2.0")
    assert code == 0
    assert metrics["class_conditional"] is True
    assert 0.0 <= metrics["samples"]["class_accuracy"] <= 1.0
    # The floor's class accuracy is the classifier's own accuracy on the real test images.
    classifier_results = json.loads((setup[2] / "classifier_results.json").read_text())
    assert metrics["real_data_floor"]["class_accuracy"] == pytest.approx(classifier_results["test_accuracy"])
    assert metrics["scheduler"] == "DPMSolverMultistepScheduler"  # save_pipeline's fast default
    assert metrics["sampler_used"] == "SDE-DPM-Solver++" and metrics["num_inference_steps_used"] == 2
    per_class = metrics["per_class"]
    assert [row["requested"] for row in per_class] == [4, 4, 4]  # 12 samples, equal numbers per class
    recognised = sum(row["recognised"] * row["requested"] for row in per_class) / 12
    assert recognised == pytest.approx(metrics["samples"]["class_accuracy"])


def test_sampling_is_seeded_per_image_and_independent_of_batch_size(setup):
    pipeline = CharacterDDPMPipeline.from_pretrained(setup[0] / "cond")
    first = draw(pipeline, 7, batch_size=3, seed=5, num_inference_steps=2)
    again = draw(pipeline, 7, batch_size=7, seed=5, num_inference_steps=2)
    assert first.images.shape == (7, 1, 8, 8) and 0 <= first.images.min() and first.images.max() <= 1
    assert first.labels.tolist() == [0, 1, 2, 0, 1, 2, 0]
    torch.testing.assert_close(first.images, again.images)
    other = draw(pipeline, 7, batch_size=7, seed=6, num_inference_steps=2)
    assert not torch.allclose(first.images, other.images)


def test_fid_hook_works_with_our_pipeline_and_stock_ddpm_pipeline(setup):
    root, dataset, classifier = setup
    extractor = load_feature_extractor(classifier)
    reference = split_features(extractor, datasets.load_from_disk(str(dataset))["test"])[0]
    options = {"num_samples": 8, "batch_size": 4, "num_inference_steps": 2}
    ours = fid_for_pipeline(CharacterDDPMPipeline.from_pretrained(root / "uncond"), classifier, reference,
                            autocast=False, **options)
    stock = fid_for_pipeline(DDPMPipeline.from_pretrained(root / "uncond"), extractor, reference, **options)
    assert np.isfinite(ours) and ours > 0
    assert stock == pytest.approx(ours, rel=1e-4)  # same UNet, scheduler and seeds (stock pipelines: float32)
    conditional = fid_for_pipeline(
        CharacterDDPMPipeline.from_pretrained(root / "cond"), extractor, reference, **options
    )
    assert np.isfinite(conditional)


def test_missing_model_exits_2(setup, capsys):
    code, _ = run(setup, "no-such-model")
    assert code == 2
    assert "no-such-model: cannot load it" in capsys.readouterr().err


def test_classifier_of_other_classes_is_refused(setup, tmp_path, capsys):
    root, dataset, _ = setup
    other = make_shapes_dataset(tmp_path / "other")
    other_dict = datasets.load_from_disk(str(other))
    other_dict = other_dict.cast_column("label", datasets.ClassLabel(names=["a", "b", "c"]))
    other_dict.save_to_disk(str(tmp_path / "renamed"))
    argv = [str(root / "uncond"), "--dataset", str(tmp_path / "renamed"), "--classifier", str(setup[2])]
    assert main([*argv, "--output_dir", str(tmp_path / "out")]) == 2
    assert "was trained on other classes" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_too_few_samples_is_an_argument_error(setup, capsys):
    root, dataset, classifier = setup
    with pytest.raises(SystemExit) as exit_info:
        main([str(root / "uncond"), "--dataset", str(dataset), "--output_dir", "x", "--num_samples", "1"])
    assert exit_info.value.code == 2
    assert "--num_samples 1: must be at least 2" in capsys.readouterr().err


def test_recognisable_share_counts_confident_predictions():
    from evaluation.evaluate_model import recognisable_share
    from evaluation.reader import READABLE_CONFIDENCE as RECOGNISABLE_CONFIDENCE

    sure, unsure = torch.tensor([10.0, 0.0, 0.0]), torch.tensor([1.0, 0.9, 0.0])
    assert torch.softmax(sure, 0).max() >= RECOGNISABLE_CONFIDENCE > torch.softmax(unsure, 0).max()
    assert recognisable_share(torch.stack([sure, unsure, sure, unsure])) == 0.5


def test_without_classifier_or_output_dir_it_trains_its_classifier_once_and_writes_under_eval(setup, tmp_path,
                                                                                               monkeypatch, capsys):
    root = setup[0]
    # more test images and samples than the default classifier's 128 features, for full-rank covariances
    dataset = make_shapes_dataset(tmp_path / "shapes", per_class_train=50, per_class_test=50)
    monkeypatch.chdir(tmp_path)
    argv = [str(root / "cond"), "--dataset", str(dataset), "--num_samples", "150", "--batch_size", "75",
            "--num_inference_steps", "2", "--kid_subset_size", "50"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "no classifier at classifiers/shapes: training one" in err
    assert "no independent reader at classifiers/shapes_reader: training one" in err
    trained = tmp_path / "classifiers" / "shapes" / "config.json"
    metrics = json.loads((tmp_path / "eval" / "cond" / "metrics.json").read_text())
    assert metrics["classifier"] == "classifiers/shapes" and metrics["output_dir"] == "eval/cond"
    assert metrics["independent_reader"]["reader"] == "classifiers/shapes_reader"
    first_mtime = trained.stat().st_mtime_ns
    assert main([*argv, "--overwrite"]) == 0  # the second run reuses the classifier
    assert "training one" not in capsys.readouterr().err and trained.stat().st_mtime_ns == first_mtime


def test_the_reader_split_halves_each_class_disjointly_and_by_seed():
    labels = torch.tensor([0] * 7 + [1] * 4 + [2] * 1)
    reader, held_out = reader_split(labels, seed=3)
    assert sorted(reader.tolist() + held_out.tolist()) == list(range(12))  # disjoint, and covering the split
    assert torch.bincount(labels[reader], minlength=3).tolist() == [4, 2, 1]
    assert torch.bincount(labels[held_out], minlength=3).tolist() == [3, 2, 0]
    assert reader.tolist() == reader_split(labels, seed=3)[0].tolist()
    assert reader.tolist() != reader_split(labels, seed=4)[0].tolist()


def test_the_independent_reader_scores_samples_against_real_images_it_never_saw(setup):
    code, metrics = run(setup, "cond")
    assert code == 0
    reader = metrics["independent_reader"]
    assert reader["reader"].endswith("reader") and reader["num_real_held_out"] == 15  # half of 30 test images
    results = json.loads((setup[0] / "reader" / "classifier_results.json").read_text())
    assert results["independent"] is True and results["num_train"] == 15 and results["num_test"] == 15
    assert reader["readable_ratio"] == pytest.approx(reader["samples_readable"] / reader["real_readable"])
    assert 0 <= reader["requested_accuracy"] <= 1 and len(reader["per_class_requested"]) == len(SHAPES)
    assert [row["reader_on_real"] for row in metrics["per_class"]] == reader["per_class_real"]
    summary = (setup[0] / "out-cond" / "summary.md").read_text(encoding="utf-8")
    assert "readable by the independent reader (real: 15 held-out test images)" in summary


def test_a_classifier_of_the_train_split_is_refused_as_reader(setup, capsys):
    code, _ = run(setup, "uncond", "--reader", str(setup[2]))
    assert code == 2
    assert "not an independent reader" in capsys.readouterr().err
