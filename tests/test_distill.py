"""Few-step students (`python -m pipelines.distill`): they learn the teacher's ODE, load like every model here,
and resume and stop like training."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler, DiffusionPipeline
from pipeline_helpers import CLASS_NAMES, tiny_unet

from pipelines import CharacterDDPMPipeline, save_pipeline
from pipelines.distill import main as distill_main
from pipelines.samplers import use_sampler
from pipelines.sampling import draw, load_pipeline
from training.teacher_targets import SHARD_SIZE, TargetSettings, build_targets, compute_shard

REPO_ROOT = Path(__file__).resolve().parent.parent
# Seeds far from the training trajectories' (0 .. num_pairs - 1).
FRESH_SEED = 50_000


def noise_schedule() -> DDPMScheduler:
    """The training schedule of the project's recipes: cosine betas, v targets."""
    return DDPMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> dict[str, Path]:
    """A seeded tiny unconditional teacher and a class-conditional one, saved as training saves them."""
    folder = tmp_path_factory.mktemp("teachers")
    save_pipeline(folder / "unconditional", tiny_unet(), noise_schedule())
    save_pipeline(folder / "conditional", tiny_unet(len(CLASS_NAMES) + 1), noise_schedule(), class_names=CLASS_NAMES)
    return {"unconditional": folder / "unconditional", "conditional": folder / "conditional"}


def distil(teacher: Path, output_dir: Path, *extra: str) -> None:
    distill_main([str(teacher), "--output_dir", str(output_dir), "--num_pairs", "256", "--max_train_steps", "300",
                  "--learning_rate", "1e-3", *extra])


@pytest.fixture(scope="module")
def students(teachers, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("students")
    distil(teachers["unconditional"], folder / "unconditional")
    distil(teachers["conditional"], folder / "conditional", "--max_train_steps", "60", "--guidance_interval", "0.28",
          "5.42")
    return {"unconditional": folder / "unconditional", "conditional": folder / "conditional"}


def mean_squared(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b) ** 2).mean().item()


def test_the_students_one_step_lands_near_the_teachers_ode_solution(teachers, students):
    """From fresh noise (seeds it never trained on), the student's single step lands much nearer the end of the
    teacher's ODE (solved as its targets were) than the teacher's own single step does."""
    teacher, student = load_pipeline(teachers["unconditional"]), load_pipeline(students["unconditional"])
    noise = torch.randn(128, 1, 8, 8, generator=torch.Generator().manual_seed(FRESH_SEED))  # x_T, (N, C, H, W)
    solved = draw(teacher, 128, sampler="dpm++", num_inference_steps=10, latents=noise).images
    teacher_one = draw(teacher, 128, sampler="dpm++", num_inference_steps=1, latents=noise).images
    student_one = draw(student, 128, num_inference_steps=1, latents=noise).images
    assert mean_squared(student_one, solved) < 0.5 * mean_squared(teacher_one, solved)


def test_unconditional_student_loads_as_a_stock_ddpm_pipeline(students):
    folder = students["unconditional"]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "DDPMPipeline" and index["scheduler"] == ["diffusers", "LCMScheduler"]
    assert not (folder / "teacher_targets").exists()  # removed once the student was saved
    stock = DDPMPipeline.from_pretrained(folder)
    stock.set_progress_bar_config(disable=True)
    images = stock(batch_size=3, num_inference_steps=2, generator=torch.manual_seed(0), output_type="np").images
    assert images.shape == (3, 8, 8, 1) and 0 <= images.min() and images.max() <= 1
    with pytest.raises(ValueError):  # stock DDPMPipeline asks for 1000 steps unless told: the card says so
        stock(batch_size=1)
    card = (folder / "README.md").read_text()
    assert "num_inference_steps=2" in card and "teacher" in card and "trajectory distillation" in card

    ours = CharacterDDPMPipeline.from_pretrained(folder)
    ours.set_progress_bar_config(disable=True)
    ours(batch_size=2, output_type="pt")  # no step argument: the student's own two
    assert ours.scheduler.timesteps.tolist() == [999, 499]
    assert draw(ours, 4).num_inference_steps == 2
    with pytest.raises(ValueError, match="distilled student"):
        draw(ours, 4, sampler="ddpm")
    with pytest.raises(ValueError, match="between 1 and 2"):
        draw(ours, 4, num_inference_steps=4)


def test_conditional_student_folds_guidance_in_and_loads_with_remote_code(students, teachers):
    folder = students["conditional"]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["distillation"]["guidance_scale"] == 2.0 and index["distillation"]["num_inference_steps"] == 2
    assert index["distillation"]["guidance_interval"] == [0.28, 5.42]
    assert "| guided where sigma_t is in | (0.28, 5.42] |" in (folder / "README.md").read_text()
    student = load_pipeline(folder)
    assert student.class_names == CLASS_NAMES and student.folded_guidance_scale == 2.0
    drawing = draw(student, 6, class_labels="ب")
    assert drawing.images.shape == (6, 1, 8, 8) and drawing.labels.tolist() == [2] * 6
    folded = draw(student, 2, guidance_scale=2.0, seed=5).images  # its own scale: what it does anyway
    assert torch.equal(folded, draw(student, 2, seed=5).images)
    with pytest.raises(ValueError, match="guidance 2 distilled into it"):
        draw(student, 2, guidance_scale=3.0)
    remote = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
    remote.set_progress_bar_config(disable=True)
    assert len(remote(batch_size=2, class_labels="۷", output_type="pt").images) == 2
    with pytest.raises(ValueError, match="only distilled students"):
        draw(load_pipeline(teachers["conditional"]), 2, sampler="consistency")


def test_targets_under_a_guidance_interval_are_guided_only_inside_it(teachers, tmp_path):
    """The interval reaches the teacher's ODE: an interval holding every step gives the targets of guidance at
    every step, one holding some steps gives other targets, and shards kept from one are not reused by the other."""
    teacher = load_pipeline(teachers["conditional"])
    use_sampler(teacher, "dpm++")

    def targets(interval):
        settings = TargetSettings("t", (999, 499), "dpm++", 4, 3.0, 4, 0, interval)
        return compute_shard(teacher, settings, 0, 4)["targets"]

    everywhere = targets(None)
    assert torch.equal(targets((0.0, 1e9)), everywhere)
    assert mean_squared(targets((0.0, 0.5)), everywhere) > 1e-6
    kept = tmp_path / "targets"
    plain = build_targets(teacher, TargetSettings("t", (999, 499), "dpm++", 4, 3.0, 4, 0), kept, progress=False)
    narrow = build_targets(teacher, TargetSettings("t", (999, 499), "dpm++", 4, 3.0, 4, 0, (0.0, 0.5)), kept,
                           progress=False)
    assert torch.equal(plain.targets, everywhere) and mean_squared(narrow.targets, everywhere) > 1e-6


def test_resume_reuses_targets_and_goes_on_from_the_checkpoint(teachers, tmp_path, capsys):
    out = tmp_path / "student"
    distil(teachers["unconditional"], out, "--max_train_steps", "40", "--checkpointing_steps", "20", "--keep_targets")
    shard = out / "teacher_targets" / "shard-00000.pt"
    written = shard.stat().st_mtime_ns
    distil(teachers["unconditional"], out, "--max_train_steps", "60", "--checkpointing_steps", "20",
           "--resume_from_checkpoint", "latest", "--keep_targets")
    assert "at step 40" in capsys.readouterr().out
    assert shard.stat().st_mtime_ns == written  # the targets were read, not computed again
    assert json.loads((out / "model_index.json").read_text())["scheduler"][1] == "LCMScheduler"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-40", "checkpoint-60"]


def test_sigterm_stops_with_a_checkpoint_and_the_run_resumes(teachers, tmp_path):
    out = tmp_path / "student"
    command = [sys.executable, "-m", "pipelines.distill", str(teachers["unconditional"]), "--output_dir", str(out),
               "--num_pairs", str(SHARD_SIZE), "--max_train_steps", "100000", "--checkpointing_steps", "100000"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out / "teacher_targets" / "shard-00000.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # into the student's steps
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "stopped by SIGTERM" in stderr and "--resume_from_checkpoint latest" in stderr
    checkpoints = list(out.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and not (out / "model_index.json").exists()  # nothing that looks finished
    step = int(checkpoints[0].name.split("-")[1])
    done = subprocess.run(command[:-4] + ["--max_train_steps", str(step + 10), "--resume_from_checkpoint", "latest"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "model_index.json").is_file()


@pytest.mark.parametrize("flags, message", [
    (["--num_inference_steps", "9"], "a student takes 1 to 8 steps"),
    (["--guidance_scale", "3"], "the teacher is unconditional"),
    (["--num_pairs", "10"], "must be at least --train_batch_size"),
    (["--guidance_interval", "0", "1"], "the teacher is unconditional and has no guidance"),
    (["--guidance_interval", "3", "1"], "--guidance_interval 3.0 1.0: must be LOW HIGH"),
])
def test_bad_settings_are_one_line_errors(teachers, tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stop:
        distill_main([str(teachers["unconditional"]), "--output_dir", str(tmp_path / "s"), *flags])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_a_student_is_not_a_teacher(students, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        distill_main([str(students["unconditional"]), "--output_dir", str(tmp_path / "s")])
    assert stop.value.code == 2 and "itself a distilled student" in capsys.readouterr().err


def test_the_demo_takes_a_student_with_its_own_sampler_and_steps(students):
    import app

    folder = str(students["conditional"])
    model, _, guidance, sampler, steps, info = app.switch_model(folder, "previous")
    assert sampler["choices"] == ["Consistency (distilled student)"] and steps["value"] == 2
    assert guidance["visible"] is False and "distilled 2-step student" in info
    grid, _, status = app.generate(folder, "ب", 16, "Consistency (distilled student)", 2, 1.0, 0)
    assert grid.size == (4 * 8, 4 * 8) and "2 steps" in status


def test_a_missing_teacher_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        distill_main([str(tmp_path / "not-trained-yet"), "--output_dir", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "not-trained-yet: cannot load it" in err and len(err.splitlines()) == 1
