"""`accelerate launch train_ddpm.py` end to end, as users run it: saved files, resume after kill -9,
two processes, the offline glyphs acceptance run and MNIST from ../shared/data."""

import csv
import os
import signal
import time

import pytest
import torch
from diffusers import DDPMPipeline
from safetensors.torch import load_file

from tests.train_helpers import FAST_ARGS, launch


def csv_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_launch_saves_a_stock_ddpm_pipeline(blobs, tmp_path):
    out = tmp_path / "run"
    launch("--dataset", blobs, "--output_dir", out, *FAST_ARGS, "--logger", "tensorboard", "--max_train_steps", "4",
           "--validation_steps", "2", "--save_images_steps", "2", "--checkpointing_steps", "2")
    for name in ("model_index.json", "scheduler/scheduler_config.json", "unet/config.json", "training_config.json",
                 "losses.csv", "loss_curve.png", "README.md", "samples/step-000002.png", "samples/step-000004.png",
                 "checkpoint-4/model.safetensors"):
        assert (out / name).is_file(), name
    assert list((out / "unet").glob("diffusion_pytorch_model.safetensors"))
    assert list((out / "logs").rglob("events.out.tfevents.*"))
    rows = csv_rows(out / "losses.csv")
    assert [row["step"] for row in rows if row["val_loss"]] == ["2", "4"]
    pipe = DDPMPipeline.from_pretrained(str(out))
    images = pipe(batch_size=2, num_inference_steps=3, generator=torch.Generator().manual_seed(0)).images
    assert len(images) == 2 and images[0].mode == "L" and images[0].size == (16, 16)


def test_push_to_hub_uploads_the_pipeline_only(blobs, hub, tmp_path):
    """--push_to_hub against the suite's loopback Hub server: the pipeline goes up; checkpoints, logs and
    the sample history stay local."""
    out = tmp_path / "run"
    launch("--dataset", blobs, "--output_dir", out, *FAST_ARGS, "--max_train_steps", "2",
           "--checkpointing_steps", "2", "--save_images_steps", "1", "--push_to_hub", "--hub_model_id",
           "tester/train-run", env=hub.client_env(tmp_path / "hf_home"))
    pushed = hub.files("tester/train-run")
    assert (out / "checkpoint-2").is_dir() and (out / "samples/step-000001.png").is_file()
    assert {"model_index.json", "unet/config.json", "scheduler/scheduler_config.json", "README.md",
            "losses.csv", "loss_curve.png"} <= set(pushed)
    assert not [p for p in pushed if p.startswith(("checkpoint-", "logs/", "samples/"))]


@pytest.mark.slow
def test_kill_9_after_first_checkpoint_then_resume_latest(blobs, tmp_path):
    """The resumed run ends at the same step with the weights of an uninterrupted run (atol 1e-6: same
    float32 arithmetic in the same order on the same CPU; the tolerance only covers summation order)."""
    args = ["--dataset", blobs, *FAST_ARGS, "--max_train_steps", "40", "--checkpointing_steps", "10",
            "--validation_steps", "10", "--save_images_steps", "20"]
    launch(*args, "--output_dir", tmp_path / "full")
    killed = tmp_path / "killed"
    process = launch(*args, "--output_dir", killed, wait=False)
    deadline = time.time() + 600
    while not (killed / "checkpoint-10").is_dir():
        assert process.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "model_index.json").exists()
    launch(*args, "--output_dir", killed, "--resume_from_checkpoint", "latest")
    assert csv_rows(killed / "losses.csv")[-1]["step"] == "40"
    full = load_file(str(tmp_path / "full/unet/diffusion_pytorch_model.safetensors"))
    resumed = load_file(str(killed / "unet/diffusion_pytorch_model.safetensors"))
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], atol=1e-6, rtol=0)


@pytest.mark.slow
def test_two_cpu_processes_train_and_save(blobs, tmp_path):
    out = tmp_path / "ddp"
    result = launch("--dataset", blobs, "--output_dir", out, *FAST_ARGS, "--max_train_steps", "6",
                    "--checkpointing_steps", "3", launcher_args=["--multi_gpu", "--num_processes", "2"])
    assert (out / "model_index.json").is_file()
    assert (out / "checkpoint-6/random_states_1.pkl").is_file()  # each process saved its RNG
    assert result.stdout.count("64 training images") == 1  # printed by the main process only
    DDPMPipeline.from_pretrained(str(out))


@pytest.mark.slow
def test_glyphs_acceptance_command_on_a_fresh_directory(tmp_path):
    """The issue's acceptance command, in a fresh working directory (glyphs rendered on first use)."""
    out = tmp_path / "run"
    launch("--dataset", "glyphs", "--output_dir", out, "--max_train_steps", "50", cwd=tmp_path, timeout=1800)
    assert (tmp_path / "data/glyphs/dataset_dict.json").is_file()
    assert (out / "model_index.json").is_file() and (out / "loss_curve.png").is_file()


@pytest.mark.slow
def test_mnist_300_steps_lowers_validation_loss(shared_data, tmp_path):
    from data_prep import prepare

    prepare("mnist", output_dir=str(tmp_path / "data/mnist"), source=str(shared_data / "mnist"))
    out = tmp_path / "run"
    launch("--dataset", "mnist", "--data_dir", tmp_path / "data", "--output_dir", out, "--max_train_steps", "300",
           "--validation_steps", "100", "--save_images_steps", "100", timeout=3600)
    val = [float(row["val_loss"]) for row in csv_rows(out / "losses.csv") if row["val_loss"]]
    assert len(val) == 3 and val[-1] < val[0]
    assert len(list((out / "samples").glob("*.png"))) >= 3
    images = DDPMPipeline.from_pretrained(str(out))(batch_size=4, num_inference_steps=10).images
    assert len(images) == 4 and all(im.size == (28, 28) and im.mode == "L" for im in images)
