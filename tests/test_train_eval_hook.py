"""`train_ddpm.py --eval_steps N --eval_classifier DIR`: the Fréchet distance during training, and `best/`."""

import csv
import math
import subprocess
import sys

import pytest
import torch
from diffusers import DDPMPipeline, UNet2DModel

import train_ddpm
from evaluation import build_classifier
from tests.conftest import REPO_ROOT
from tests.train_helpers import FAST_ARGS, make_trainer, reset_accelerate_state
from training.config import ConfigError, parse_config

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # tests/conftest.py

# A dozen samples (more than the test classifier's 8 features) in two pipeline calls.
EVAL_ARGS = ["--eval_num_samples", "12", "--eval_batch_size", "6"]


def save_classifier(folder, class_names=("□", "|")):
    """An untrained (seeded) domain classifier: its features are fixed, which is all the distance needs."""
    torch.manual_seed(0)
    build_classifier(list(class_names), image_size=16, hidden_sizes=(8,), depths=(1,)).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return save_classifier(tmp_path_factory.mktemp("classifier") / "blobs")


def make_eval_trainer(blobs, output_dir, *extra):
    return make_trainer(blobs, output_dir, *EVAL_ARGS, *extra)


def fid_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return {int(row["step"]): row["fid"] for row in csv.DictReader(handle)}


def test_fid_is_logged_at_eval_steps_and_the_best_model_is_saved(blobs, classifier, tmp_path):
    trainer = make_eval_trainer(blobs, tmp_path, "--max_train_steps", "5", "--eval_steps", "2",
                                "--eval_classifier", classifier, "--keep_best_by_fid")
    trainer.start()
    trainer.train()
    trainer.finish()
    rows = fid_rows(tmp_path / "losses.csv")
    scored = {step: float(value) for step, value in rows.items() if value}
    assert sorted(scored) == [2, 4, 5]  # every eval_steps, and the last step
    assert all(math.isfinite(fid) and fid > 0 for fid in scored.values())
    # best/ is a loadable pipeline holding the EMA weights that scored lowest: scoring it again gives that value.
    best = DDPMPipeline.from_pretrained(tmp_path / "best")
    again = trainer.fid_check(best.unet, trainer.noise_scheduler)
    assert again == pytest.approx(min(scored.values()), rel=1e-4)
    assert trainer.progress.best_fid == pytest.approx(min(scored.values()))


def test_class_conditional_run_scores_its_samples_without_keeping_a_best(blobs, classifier, tmp_path):
    train_ddpm.main(["--dataset", blobs, "--output_dir", str(tmp_path), *FAST_ARGS, *EVAL_ARGS,
                     "--max_train_steps", "2", "--eval_steps", "1", "--eval_classifier", classifier,
                     "--class_conditional"])
    scored = {step: float(value) for step, value in fid_rows(tmp_path / "losses.csv").items() if value}
    assert sorted(scored) == [1, 2] and all(math.isfinite(fid) for fid in scored.values())
    assert not (tmp_path / "best").exists()
    assert UNet2DModel.from_pretrained(str(tmp_path / "unet")).config.num_class_embeds == 3


@pytest.mark.parametrize("argv, words", [
    (["--eval_steps", "5"], "--eval_steps needs --eval_classifier"),
    (["--keep_best_by_fid"], "--keep_best_by_fid needs --eval_steps"),
    (["--eval_steps", "0", "--eval_classifier", "c"], "--eval_steps must be at least 1"),
    (["--eval_steps", "5", "--eval_classifier", "c", "--eval_num_samples", "1"], "--eval_num_samples"),
])
def test_inconsistent_eval_flags_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


def test_classifier_that_is_not_one_or_of_other_classes_is_refused(blobs, tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text("{}", encoding="utf-8")
    other = save_classifier(tmp_path / "other", class_names=("a", "b", "c"))
    for folder, words in ((junk, "not a classifier saved by"), (other, "was trained on other classes")):
        with pytest.raises(ConfigError, match=words):
            make_eval_trainer(blobs, tmp_path / "out", "--eval_steps", "1", "--eval_classifier", str(folder))
        reset_accelerate_state()


def test_missing_classifier_is_one_line_and_exit_2(blobs, tmp_path):
    result = subprocess.run(
        [sys.executable, "train_ddpm.py", "--dataset", blobs, *FAST_ARGS, "--output_dir", str(tmp_path / "out"),
         "--eval_steps", "10", "--eval_classifier", str(tmp_path / "nowhere")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "--eval_classifier" in lines[0] and "no such folder" in lines[0]
    assert "python -m evaluation.train_classifier" in lines[0]
