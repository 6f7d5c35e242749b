"""benchmarks/time_to_quality.py: its recipes and report, and (slow) a real one-minute run on MNIST."""

import json
import subprocess
import sys

import pytest

from benchmarks import time_to_quality as ttq
from tests.conftest import REPO_ROOT


def test_points_past_the_budget_are_dropped_and_the_budget_is_a_point(tmp_path):
    args = ttq.parse_args(["--minutes", "7", "--points", "2", "5", "10", "--output_dir", str(tmp_path)])
    assert args.points == [2, 5, 7]
    assert args.classifier is None  # python -m evaluation's default, classifiers/DATASET


def test_every_recipe_trains_with_the_same_budget_data_and_snapshots(tmp_path):
    args = ttq.parse_args(["--minutes", "3", "--points", "1", "--output_dir", str(tmp_path),
                           "--variant", "fast:--learning_rate 2e-3"])
    commands = ttq.recipe_commands(args)
    assert set(commands) == {"default", "previous", "diffusers_example", "bare_loop", "fast"}
    for name, command in commands.items():
        text = " ".join(command)
        assert "--dataset mnist" in text and "--snapshot_minutes 1 3" in text, name
        assert ("--minutes 3" if name == "bare_loop" else "--max_train_minutes 3") in text, name
    assert "configs/mnist.yaml" in commands["default"] and "benchmarks/recipes/previous.yaml" in commands["previous"]
    assert commands["fast"][-2:] == ["--learning_rate", "2e-3"]
    assert all((REPO_ROOT / path).is_file() for path in ttq.RECIPE_FILES.values())


def test_variants_alone_train_without_the_baselines_and_nothing_at_all_is_refused(tmp_path, capsys):
    args = ttq.parse_args(
        ["--output_dir", str(tmp_path), "--recipes", "--variant", "narrow:--block_out_channels 16 64 64"]
    )
    assert list(ttq.recipe_commands(args)) == ["narrow"]
    with pytest.raises(SystemExit):
        ttq.parse_args(["--output_dir", str(tmp_path), "--recipes"])
    assert "nothing to train" in capsys.readouterr().err


def test_report_puts_each_score_next_to_its_floor(tmp_path):
    args = ttq.parse_args(["--minutes", "2", "--points", "1", "--output_dir", str(tmp_path), "--recipes", "default"])
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "training_config.json").write_text(json.dumps({"train_batch_size": 64}))
    floor = {"recognisable": 0.98, "frechet_distance": 0.5, "precision": 0.9, "recall": 0.9}
    samples = {"recognisable": 0.8, "frechet_distance": 2.0, "precision": 0.7, "recall": 0.95}
    rows = {"default": [{"minutes": 2, "global_step": 600, "training_time_s": 120.0, "samples": samples,
                         "floor": floor}]}
    table = ttq.report(args, rows, {"default": {"threads": 1}})
    row = table.splitlines()[-1]
    assert row.startswith("| default | 2 | 600 | 320 | 1 | – | 80.0% (98.0%) | 2.00 (0.50) | 4.0x |"), row
    assert "pinned" in table.splitlines()[0] or "all cores" in table.splitlines()[0]
    assert "requested class" not in table
    ttq.plot(rows, tmp_path / "plot.png", "title")
    assert (tmp_path / "plot.png").stat().st_size > 1000
    # with the independent reader: its share, next to real held-out images and the ratio
    rows["default"][0]["reader"] = {"samples_readable": 0.746, "real_readable": 0.867, "readable_ratio": 0.746 / 0.867}
    assert "| 1 | 74.6% (86.7%, 0.86×) | 80.0% (98.0%) |" in ttq.report(args, rows, {"default": {"threads": 1}})
    ttq.plot(rows, tmp_path / "reader.png", "title")
    assert (tmp_path / "reader.png").stat().st_size > 1000


def test_report_adds_the_requested_class_for_class_conditional_recipes(tmp_path):
    args = ttq.parse_args(["--minutes", "2", "--points", "1", "--output_dir", str(tmp_path), "--recipes", "default"])
    floor = {"recognisable": 0.9, "frechet_distance": 2.0, "precision": 0.9, "recall": 0.9, "class_accuracy": 0.953}
    conditional = {
        "recognisable": 0.8,
        "frechet_distance": 4.0,
        "precision": 0.7,
        "recall": 0.6,
        "class_accuracy": 0.912,
    }
    unconditional = {key: value for key, value in conditional.items() if key != "class_accuracy"}
    rows = {name: [{"minutes": 2, "global_step": 60, "training_time_s": 60.0, "samples": samples, "floor": floor}]
            for name, samples in (("cond", conditional), ("uncond", unconditional))}
    table = ttq.report(args, rows, {}).splitlines()
    assert table[2].startswith("Made on ") and " 1 thread per process, at commit " in table[2]  # pinned: 1 thread
    assert table[4].endswith("| recall | requested class recognised |") and table[5].count("---") == 12
    assert table[-2].endswith("| 91.2% (95.3%) |") and table[-1].endswith("| – |")


@pytest.mark.slow
def test_one_minute_run_trains_scores_and_plots_every_recipe(shared_data, tmp_path):
    from data_prep import prepare

    prepare("mnist", output_dir=str(tmp_path / "data/mnist"), source=str(shared_data / "mnist"))
    subprocess.run([sys.executable, "-m", "evaluation.train_classifier", "--dataset", str(tmp_path / "data/mnist"),
                    "--output_dir", str(tmp_path / "classifier"), "--num_epochs", "1"], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    out = tmp_path / "ttq"
    subprocess.run([sys.executable, "-m", "benchmarks.time_to_quality", "--minutes", "1", "--points", "0.5",
                    "--data_dir", str(tmp_path / "data"), "--classifier", str(tmp_path / "classifier"),
                    "--num_samples", "100", "--output_dir", str(out)], cwd=REPO_ROOT, check=True, timeout=1200)
    results = json.loads((out / "results.json").read_text())
    assert set(results["points"]) == set(ttq.RECIPES)
    for name, points in results["points"].items():
        assert [p["minutes"] for p in points] == [0.5, 1], name
        assert points[1]["global_step"] > points[0]["global_step"] > 0, name
        assert 0 <= points[1]["samples"]["recognisable"] <= 1
    assert (out / "plot.png").is_file() and "| bare_loop | 1 |" in (out / "results.md").read_text()
