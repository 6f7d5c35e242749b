"""Faults met while training: a diverged run stops with one line and leaves nothing non-finite behind."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO_ROOT
from tests.train_helpers import FAST_ARGS, LAUNCH_ENV, launch_command
from training import faults
from training.faults import StopSignals, TrainingDiverged, check_step, check_weights


def train(blobs, output_dir, *extra):
    command = [sys.executable, str(REPO_ROOT / "train_ddpm.py"), "--dataset", blobs, "--output_dir", str(output_dir),
               *FAST_ARGS, *extra]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_a_diverging_learning_rate_stops_at_once_with_one_line(blobs, tmp_path):
    result = train(blobs, tmp_path / "run", "--learning_rate", "1e4", "--max_train_steps", "200",
                   "--checkpointing_steps", "1")

    assert result.returncode == 1, result.stderr[-2000:]
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and "Traceback" not in result.stderr
    assert "training diverged at step" in error_lines[0] and "--learning_rate (this run: 10000)" in error_lines[0]
    step = int(error_lines[0].split("training diverged at step ")[1].split(":")[0])
    assert step < 200  # stopped long before the end
    assert not (tmp_path / "run" / "model_index.json").exists()  # no pipeline saved
    for checkpoint in (tmp_path / "run").glob("checkpoint-*"):  # what was saved before the fault is finite
        assert int(checkpoint.name.split("-")[1]) < step
        weights = load_file(str(checkpoint / "model.safetensors"))
        assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def test_a_stable_run_is_not_stopped(blobs, tmp_path):
    result = train(blobs, tmp_path / "run", "--max_train_steps", "3")

    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "model_index.json").is_file()


def test_checks_name_what_went_wrong_and_spare_fp16_overflow():
    context = {"step": 7, "learning_rate": 1e-3, "mixed_precision": "bf16"}
    with pytest.raises(TrainingDiverged, match=r"step 7: the loss is nan.*--learning_rate \(this run: 0.001\) or "
                                               r"--mixed_precision no"):
        check_step(torch.tensor(float("nan")), torch.tensor(1.0), **context)
    with pytest.raises(TrainingDiverged, match="the gradient norm is inf"):
        check_step(torch.tensor(0.5), torch.tensor(float("inf")), **context)
    # fp16's loss scaler skips overflowing steps itself: an infinite gradient norm is not a divergence there
    check_step(torch.tensor(0.5), torch.tensor(float("inf")), **{**context, "mixed_precision": "fp16"})
    with pytest.raises(TrainingDiverged, match="1 weight tensor"):
        check_weights([torch.ones(3), torch.tensor([1.0, float("inf")])], **context)
    check_weights([torch.ones(3)], **context)


def truncate(path, keep=100):
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_latest_falls_back_past_a_damaged_newest_checkpoint(blobs, tmp_path):
    run = tmp_path / "run"
    first = train(blobs, run, "--max_train_steps", "4", "--checkpointing_steps", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    truncate(run / "checkpoint-4" / "model.safetensors")

    resumed = train(blobs, run, "--max_train_steps", "6", "--checkpointing_steps", "2",
                    "--resume_from_checkpoint", "latest")

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "checkpoint-4 does not load (" in resumed.stdout and "trying checkpoint-2." in resumed.stdout
    assert "Resumed from " in resumed.stdout and "checkpoint-2 at step 2." in resumed.stdout
    assert "Traceback" not in resumed.stderr
    assert (run / "model_index.json").is_file()


def resume_from_one_damaged_checkpoint(blobs, run, resume_from):
    """Train 2 steps with a checkpoint at step 2, truncate its weights, and resume from `resume_from`."""
    assert train(blobs, run, "--max_train_steps", "2", "--checkpointing_steps", "2").returncode == 0
    truncate(run / "checkpoint-2" / "model.safetensors")
    return train(blobs, run, "--max_train_steps", "4", "--resume_from_checkpoint", resume_from)


def test_a_named_damaged_checkpoint_is_one_line_and_exit_2(blobs, tmp_path):
    result = resume_from_one_damaged_checkpoint(blobs, tmp_path / "run", "checkpoint-2")

    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "checkpoint-2: it does not load: it is damaged" in errors[0]
    assert "Traceback" not in result.stderr


def test_latest_with_no_checkpoint_that_loads_says_so(blobs, tmp_path):
    result = resume_from_one_damaged_checkpoint(blobs, tmp_path / "run", "latest")

    assert result.returncode == 2
    assert "none of the 1 checkpoints in" in result.stderr and "Traceback" not in result.stderr


# train_ddpm.py with the disk "full" from the second checkpoint on: the write starts, then fails with ENOSPC.
DISK_FULL = """
import errno, os, sys
import accelerate
import train_ddpm

calls, save_state = [], accelerate.Accelerator.save_state


def full_disk(self, output_dir=None, **kwargs):
    calls.append(output_dir)
    if len(calls) == 1:
        return save_state(self, output_dir, **kwargs)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "model.safetensors"), "wb") as handle:
        handle.write(b"half")
    raise OSError(errno.ENOSPC, "No space left on device", os.path.join(output_dir, "model.safetensors"))


accelerate.Accelerator.save_state = full_disk
sys.argv = ["train_ddpm.py", *sys.argv[1:]]
train_ddpm.cli()
"""


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_previous_checkpoint(blobs, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-c", DISK_FULL, "--dataset", blobs, "--output_dir", str(run), *FAST_ARGS,
               "--max_train_steps", "6", "--checkpointing_steps", "2"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)

    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert f"could not write checkpoint {run / 'checkpoint-4'} (OSError: [Errno 28] No space left" in errors[0]
    assert sorted(p.name for p in run.iterdir() if "checkpoint" in p.name) == ["checkpoint-2"]  # no partial left
    assert not (run / "model_index.json").exists()

    resumed = train(blobs, run, "--max_train_steps", "4", "--resume_from_checkpoint", "latest")
    assert resumed.returncode == 0 and "checkpoint-2 at step 2." in resumed.stdout, resumed.stderr[-2000:]


def start(command, log_path, *, new_session=True):
    """Start `command` with its output in `log_path`; returns the process."""
    log = open(log_path, "w", encoding="utf-8")
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
                            start_new_session=new_session)


def wait_for_training(log_path, process, timeout=120):
    """Block until the run's progress bar shows optimizer steps (its signal handlers are in place by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if "train:" in text and "it/s" in text:
            return
        assert process.poll() is None, text[-2000:]
        time.sleep(0.2)
    raise AssertionError(f"no training steps within {timeout} s")


LONG_RUN = ["--max_train_steps", "20000", "--checkpointing_steps", "100000"]


def test_sigterm_writes_a_checkpoint_and_says_how_to_resume(blobs, tmp_path):
    run, log = tmp_path / "run", tmp_path / "log.txt"
    process = start([sys.executable, str(REPO_ROOT / "train_ddpm.py"), "--dataset", blobs, "--output_dir", str(run),
                     *FAST_ARGS, *LONG_RUN], log)
    wait_for_training(log, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 128 + signal.SIGTERM
    text = log.read_text(encoding="utf-8")
    checkpoints = list(run.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and "Traceback" not in text
    assert (
        f"stopped by SIGTERM at step {checkpoints[0].name.split('-')[1]}; the state is saved in {checkpoints[0]}"
        in text
    )
    assert "--resume_from_checkpoint latest" in text and not (run / "model_index.json").exists()


def test_a_second_signal_exits_at_once_and_the_launchers_death_never_counts_as_one(monkeypatch):
    exits = []
    monkeypatch.setattr(faults.os, "_exit", lambda code: exits.append(code))
    stop = StopSignals()
    stop._handle(signal.SIGUSR2, None)  # the one-process launcher died (PR_SET_PDEATHSIG)
    assert stop.requested == "SIGTERM (to the launcher)" and stop.signal_number == signal.SIGTERM and not exits
    stop._handle(signal.SIGINT, None)  # then Ctrl-C: the first signal from a user, still a request to stop
    assert not exits
    stop._handle(signal.SIGUSR2, None)
    assert not exits
    stop._handle(signal.SIGTERM, None)  # a second one from a user: out at once
    assert exits == [128 + signal.SIGTERM]


def blobs_command(blobs, output_dir, *extra, launcher_args=()):
    return launch_command("--dataset", blobs, "--output_dir", output_dir, *FAST_ARGS, *extra,
                          launcher_args=launcher_args)


@pytest.mark.slow
def test_sigterm_to_accelerate_launch_then_resume_ends_with_the_uninterrupted_weights(blobs, tmp_path):
    steps = ["--max_train_steps", "400", "--checkpointing_steps", "100000", "--save_images_steps", "100000"]
    straight = subprocess.run(blobs_command(blobs, tmp_path / "straight", *steps), cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-2000:]

    run, log = tmp_path / "run", tmp_path / "log.txt"
    launcher = start(blobs_command(blobs, run, *steps), log)
    wait_for_training(log, launcher)
    launcher.send_signal(signal.SIGTERM)  # to the launcher only, as `kill -TERM PID` does
    launcher.wait(timeout=120)
    deadline = time.monotonic() + 120  # the training process, told by Linux that its parent died, checkpoints
    while "stopped by SIGTERM" not in log.read_text(encoding="utf-8") and time.monotonic() < deadline:
        time.sleep(0.2)
    text = log.read_text(encoding="utf-8")
    # accelerate >= 1.16 passes the SIGTERM on; earlier launchers die and the process learns it (PR_SET_PDEATHSIG).
    stopped = re.search(r"stopped by SIGTERM(?: \(to the launcher\))? at step (\d+);", text)
    assert stopped, text[-2000:]
    stopped_at = int(stopped.group(1))
    assert 0 < stopped_at < 400 and (run / f"checkpoint-{stopped_at}").is_dir()

    resumed = subprocess.run(blobs_command(blobs, run, *steps, "--resume_from_checkpoint", "latest"),
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = load_file(str(next((run / "unet").glob("*.safetensors"))))
    expected = load_file(str(next((tmp_path / "straight" / "unet").glob("*.safetensors"))))
    assert final.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=1e-6, msg=name)


@pytest.mark.slow
def test_sigterm_to_a_two_process_launch_stops_both_at_one_step_with_a_checkpoint(blobs, tmp_path):
    run, log = tmp_path / "run", tmp_path / "log.txt"
    command = blobs_command(blobs, run, *LONG_RUN, launcher_args=["--multi_gpu", "--num_processes", "2"])
    launcher = start(command, log)
    wait_for_training(log, launcher)
    launcher.send_signal(signal.SIGTERM)  # torchrun passes it on to both training processes
    launcher.wait(timeout=120)
    text = log.read_text(encoding="utf-8")
    assert text.count("train_ddpm.py: stopped by SIGTERM at step") == 1, text[-3000:]  # one line, not one per process
    stopped_at = int(text.split("stopped by SIGTERM at step ")[1].split(";")[0])
    assert [p.name for p in run.glob("checkpoint-*")] == [f"checkpoint-{stopped_at}"]
    assert sorted(p.name for p in (run / f"checkpoint-{stopped_at}").glob("random_states_*.pkl")) == [
        "random_states_0.pkl", "random_states_1.pkl"]  # both processes wrote their part


def test_stop_signals_outside_the_main_thread_leave_the_handlers_alone():
    import threading

    before, errors = signal.getsignal(signal.SIGTERM), []

    def install():
        try:
            StopSignals().install()
        except Exception as error:  # signal.signal outside the main thread raises ValueError
            errors.append(error)

    worker = threading.Thread(target=install)  # as in a notebook's worker thread
    worker.start()
    worker.join()
    assert not errors and signal.getsignal(signal.SIGTERM) is before


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 3 MB file system (tmpfs) that a run fills: root only, as in CI; skipped with the reason elsewhere."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root on Linux (CI runs as root)")
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_really_full_disk_is_one_line_naming_the_folder_free_space_and_last_good_checkpoint(blobs, small_tmpfs):
    run = small_tmpfs / "run"
    # each checkpoint of the test UNet (weights, EMA, AdamW moments, RNG states) takes about 0.9 MB of the 3 MB
    result = train(blobs, run, "--max_train_steps", "200",
                   "--checkpointing_steps", "5", "--checkpoints_total_limit", "none")

    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    checkpoints = sorted((p for p in run.iterdir() if p.name.startswith("checkpoint-")),
                         key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints, f"no checkpoint fitted: {errors[0]}"
    assert errors[0].startswith("train_ddpm.py: error: could not write checkpoint")  # on a line of its own
    assert re.search(rf"could not write checkpoint {run}/checkpoint-\d+ \(.*; [\d.]+ (bytes|KB|MB) free\)", errors[0])
    assert f"the last good checkpoint is {checkpoints[-1]}" in errors[0]
    assert not list(run.glob(".checkpoint-*")), "the partial checkpoint was left behind"
    assert not (run / "model_index.json").exists()
    weights = load_file(str(checkpoints[-1] / "model.safetensors"))  # the last good one still loads
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def test_the_documented_accelerate_launch_ends_on_our_one_line(tmp_path):
    """README's `accelerate launch --config_file accelerate_config.yaml --quiet`: no launcher traceback after the
    line; without --quiet accelerate adds its CalledProcessError (docs/faults.md says so)."""
    mistyped = ["--dataset", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "run")]
    quiet = subprocess.run(launch_command(*mistyped, launcher_args=["--quiet"]), cwd=REPO_ROOT, env=LAUNCH_ENV,
                           capture_output=True, text=True, timeout=300)
    loud = subprocess.run(launch_command(*mistyped), cwd=REPO_ROOT, env=LAUNCH_ENV, capture_output=True, text=True,
                          timeout=300)

    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr, quiet.stderr[-2000:]
    assert quiet.stderr.strip().splitlines()[-1] == (f"train_ddpm.py: error: --dataset {tmp_path / 'nope'}: no such "
                                                     f"folder: {tmp_path / 'nope'}.")
    assert loud.returncode == 1 and "CalledProcessError" in loud.stderr
