"""Tests of the domain classifier: training CLI, saved card, feature extractor, and bad input."""

import json

import datasets
import numpy as np
import pytest
import torch

from evaluation import EvaluationError, build_classifier, load_feature_extractor
from evaluation.classifier import DomainFeatureExtractor
from evaluation.train_classifier import ClassifierTrainingConfig, main, random_affine
from tests.evaluation_helpers import SHAPES, TINY_MODEL, make_shapes_dataset, make_shapes_folder, train_quickly
from tests.hub_client import last_json, run_client


@pytest.fixture(scope="module")
def shapes_dataset(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes")


@pytest.fixture(scope="module")
def trained_classifier(shapes_dataset, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("classifiers") / "shapes"
    argv = ["--dataset", str(shapes_dataset), "--output_dir", str(output_dir), "--num_epochs", "6"]
    assert main([*argv, "--batch_size", "16", "--learning_rate", "0.01", *TINY_MODEL]) == 0
    return output_dir


def test_train_classifier_saves_model_card_and_results(trained_classifier):
    assert {"config.json", "model.safetensors", "README.md", "classifier_results.json"} <= {
        p.name for p in trained_classifier.iterdir()
    }
    assert not list(trained_classifier.parent.glob(".*partial"))
    results = json.loads((trained_classifier / "classifier_results.json").read_text())
    # Three easy shapes: far above the 1/3 of chance after a few dozen steps.
    assert results["test_accuracy"] >= 0.8
    assert results["class_names"] == list(SHAPES) and results["num_train"] == 120 and results["num_test"] == 30
    assert sum(map(sum, results["confusion_matrix"])) == 30
    card = (trained_classifier / "README.md").read_text()
    assert "library_name: transformers" in card
    assert f"**Test accuracy: {results['test_accuracy']:.2%}**" in card
    assert "## Most confused pairs" in card
    for pair in results["most_confused"]:
        assert f"| {pair['true']} | {pair['predicted']} | {pair['count']} |" in card


def test_feature_extractor_features_logits_and_value_ranges(trained_classifier, shapes_dataset):
    extractor = load_feature_extractor(trained_classifier)
    assert extractor.class_names == list(SHAPES) and extractor.image_size == 16 and extractor.feature_dim == 16
    test = datasets.load_from_disk(str(shapes_dataset))["test"]
    images = torch.from_numpy(np.stack([np.asarray(im) for im in test["image"]])).float().div(255).unsqueeze(1)
    features, logits = extractor(images)  # images in [0, 1]
    assert features.shape == (30, 16) and logits.shape == (30, 3)
    predicted = logits.argmax(1)
    results = json.loads((trained_classifier / "classifier_results.json").read_text())
    assert (predicted == torch.tensor(test["label"])).float().mean().item() == pytest.approx(results["test_accuracy"])
    # The same images in the diffusion model's [-1, 1] space give the same outputs.
    features_pm1, logits_pm1 = extractor(images * 2 - 1, value_range=(-1.0, 1.0))
    torch.testing.assert_close(features_pm1, features)
    torch.testing.assert_close(logits_pm1, logits)
    # Larger images are resized to the classifier's input size.
    upsampled = torch.nn.functional.interpolate(images, size=(32, 32), mode="nearest")
    features_32, logits_32 = extractor(upsampled)
    assert features_32.shape == (30, 16)
    assert (logits_32.argmax(1) == predicted).float().mean() >= 0.8
    # Batching does not change the result.
    extractor.batch_size = 7
    torch.testing.assert_close(extractor(images)[0], features)


def test_feature_extractor_rejects_colour_images():
    extractor = DomainFeatureExtractor(build_classifier(["a", "b"], image_size=16, hidden_sizes=(8,), depths=(1,)))
    with pytest.raises(ValueError, match=r"grayscale images of shape \(batch, 1, height, width\)"):
        extractor(torch.rand(2, 3, 16, 16))


def test_random_affine_is_identity_without_jitter_and_moves_ink_with_it():
    images = torch.zeros(4, 1, 16, 16)
    images[:, :, 6:10, 6:10] = 1.0
    generator = torch.Generator().manual_seed(0)
    still = ClassifierTrainingConfig(dataset="d", output_dir="o", max_shift=0, max_rotation=0, max_scale=0)
    torch.testing.assert_close(random_affine(images, still, generator), images)
    shifted = random_affine(images, ClassifierTrainingConfig(dataset="d", output_dir="o", max_shift=3), generator)
    assert not torch.allclose(shifted, images)
    # Shifts of a few pixels keep the ink inside the image: about the same total brightness.
    assert shifted.sum((1, 2, 3)) == pytest.approx(images.sum((1, 2, 3)), rel=0.3)


def test_image_folder_trains_with_its_sub_folders_as_classes(tmp_path):
    assert train_quickly(make_shapes_folder(tmp_path / "shapes"), tmp_path / "clf") == 0
    results = json.loads((tmp_path / "clf" / "classifier_results.json").read_text())
    assert results["class_names"] == sorted(SHAPES)
    # No test split in a folder: 5% is held out, seeded, as train_ddpm.py does.
    assert (results["num_train"], results["num_test"]) == (114, 6)
    assert load_feature_extractor(tmp_path / "clf").class_names == sorted(SHAPES)


def test_save_to_disk_folder_with_its_own_column_names_and_one_split(shapes_dataset, tmp_path):
    train = datasets.load_from_disk(str(shapes_dataset))["train"].rename_columns({"image": "glyph", "label": "shape"})
    train.save_to_disk(str(tmp_path / "renamed"))  # a Dataset, not a DatasetDict
    assert train_quickly(tmp_path / "renamed", tmp_path / "clf", "--max_train_samples", "60") == 0
    results = json.loads((tmp_path / "clf" / "classifier_results.json").read_text())
    assert results["class_names"] == list(SHAPES)
    assert (results["num_train"], results["num_test"]) == (60, 6)


def test_unlabelled_dataset_exits_2_with_one_line(shapes_dataset, tmp_path, capsys):
    images = datasets.load_from_disk(str(shapes_dataset)).remove_columns("label")
    images.save_to_disk(str(tmp_path / "unlabelled"))
    capsys.readouterr()  # drop datasets' progress bars
    assert train_quickly(tmp_path / "unlabelled", tmp_path / "clf") == 2
    err = capsys.readouterr().err
    assert f"error: --dataset {tmp_path / 'unlabelled'}: no label column" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "clf").exists()


def test_missing_dataset_exits_2_with_a_clear_message(tmp_path, capsys):
    assert main(["--dataset", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "out")]) == 2
    assert f"--dataset {tmp_path / 'nope'}: no such folder: {tmp_path / 'nope'}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_builtin_name_that_is_not_prepared_says_how_to_prepare_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--dataset", "persian", "--output_dir", "out"]) == 2
    assert "run `python -m data_prep persian --source PATH/TO/digits.cdb" in capsys.readouterr().err


def test_not_a_dataset_folder_exits_2(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("hello")
    assert main(["--dataset", str(tmp_path / "junk"), "--output_dir", str(tmp_path / "out")]) == 2
    assert f"--dataset {tmp_path / 'junk'}: no image column" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_existing_output_dir_needs_overwrite(shapes_dataset, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert main(["--dataset", str(shapes_dataset), "--output_dir", str(tmp_path / "out")]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_stage_settings_must_match(shapes_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--dataset", str(shapes_dataset), "--output_dir", str(tmp_path / "o"), "--hidden_sizes", "8", "16"])
    assert exit_info.value.code == 2
    assert "--hidden_sizes and --depths need one value per stage" in capsys.readouterr().err


def test_bad_classifier_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EvaluationError, match="not a classifier saved by"):
        load_feature_extractor(tmp_path)


# The targets, on the real data sets (minutes each on 2 cores).
REAL_SETS = {
    "mnist": ("mnist", 0.98),
    "persian": (["hoda/Test 20000.cdb", "hoda_letters/Persian-Character-DB-Test.cdb"], 0.92),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(REAL_SETS))
def test_real_data_classifier_reaches_its_target(kind, shared_data, tmp_path):
    from data_prep import prepare

    sources, target = REAL_SETS[kind]
    source = [str(shared_data / path) for path in sources] if isinstance(sources, list) else str(shared_data / sources)
    prepare(kind, output_dir=tmp_path / kind, source=source)
    assert main(["--dataset", str(tmp_path / kind), "--output_dir", str(tmp_path / "clf")]) == 0
    results = json.loads((tmp_path / "clf" / "classifier_results.json").read_text())
    assert results["test_accuracy"] >= target
    assert (
        results["most_confused"] and f"{results['test_accuracy']:.2%}" in (tmp_path / "clf" / "README.md").read_text()
    )


PUSH_AND_LOAD = """
import json, sys, torch
from evaluation import load_feature_extractor
from evaluation.train_classifier import main
dataset, output_dir = sys.argv[1:]
argv = ["--dataset", dataset, "--output_dir", output_dir, "--num_epochs", "1", "--embedding_size", "8"]
assert main([*argv, "--hidden_sizes", "8", "--depths", "1", "--push_to_hub", "--hub_model_id",
            "tester/shapes-classifier"]) == 0
images = torch.rand(4, 1, 16, 16)
local, remote = load_feature_extractor(output_dir), load_feature_extractor("tester/shapes-classifier")
print(json.dumps({"names": remote.class_names, "diff": float((local(images)[1] - remote(images)[1]).abs().max())}))
"""


def test_classifier_is_pushed_and_loads_back_by_repo_id(hub, shapes_dataset, tmp_path):
    result = last_json(run_client(hub, PUSH_AND_LOAD, str(shapes_dataset), str(tmp_path / "clf"), home=tmp_path))
    assert result == {"names": list(SHAPES), "diff": 0.0}
    files = hub.files("tester/shapes-classifier")
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    assert b"Test accuracy" in files["README.md"]


TRAIN_FROM_HUB = """
import json, sys
import datasets
from data_prep import push_dataset
from evaluation.train_classifier import main
folder, output_dir = sys.argv[1:]
push_dataset(datasets.load_from_disk(folder), "tester/shapes")
argv = ["--dataset", "tester/shapes", "--output_dir", output_dir, "--num_epochs", "1", "--embedding_size", "8"]
assert main([*argv, "--hidden_sizes", "8", "--depths", "1"]) == 0
results = json.load(open(f"{output_dir}/classifier_results.json"))
print(json.dumps({key: results[key] for key in ("dataset", "class_names", "num_train", "num_test")}))
"""


def test_classifier_trains_from_a_hub_dataset_id(hub, shapes_dataset, tmp_path):
    result = last_json(run_client(hub, TRAIN_FROM_HUB, str(shapes_dataset), str(tmp_path / "clf"), home=tmp_path))
    assert result == {"dataset": "tester/shapes", "class_names": list(SHAPES), "num_train": 120, "num_test": 30}
    assert any(path.endswith(".parquet") for path in hub.files("tester/shapes", repo_type="dataset"))


SCORE_AGAINST_HUB = """
import json, sys
import datasets
from diffusers import DDPMScheduler
from data_prep import push_dataset
from evaluation.__main__ import main as evaluate
from evaluation.train_classifier import main as train_classifier
from pipelines import save_pipeline
from tests.evaluation_helpers import SHAPES
from tests.pipeline_helpers import tiny_unet
folder, root = sys.argv[1:]
push_dataset(datasets.load_from_disk(folder), "tester/shapes-to-score")
data = ["--dataset", "tester/shapes-to-score"]
assert train_classifier([*data, "--output_dir", f"{root}/clf", "--num_epochs", "1", "--embedding_size", "8",
                         "--hidden_sizes", "8", "--depths", "1"]) == 0
save_pipeline(f"{root}/model", tiny_unet(len(SHAPES) + 1), DDPMScheduler(num_train_timesteps=50),
              class_names=list(SHAPES))
assert evaluate([f"{root}/model", *data, "--classifier", f"{root}/clf", "--output_dir", f"{root}/eval",
                 "--num_samples", "6", "--batch_size", "6", "--num_inference_steps", "2",
                 "--kid_subset_size", "3", "--no_independent_reader"]) == 0
metrics = json.load(open(f"{root}/eval/metrics.json"))
print(json.dumps({key: metrics[key] for key in ("dataset", "class_conditional", "num_test_images")}))
"""


def test_evaluation_scores_a_model_against_a_hub_dataset_id(hub, shapes_dataset, tmp_path):
    result = last_json(run_client(hub, SCORE_AGAINST_HUB, str(shapes_dataset), str(tmp_path), home=tmp_path))
    assert result == {"dataset": "tester/shapes-to-score", "class_conditional": True, "num_test_images": 30}
