"""Beyond one machine, on loopback: two `accelerate launch`es as two machines (one CPU process each, gloo), against
two processes on one machine and one process, with the same seed and global batch; and resuming the two
machines' checkpoint on two machines and on one process."""

import shutil
import socket
import subprocess

import pytest
import torch

from tests.train_helpers import FAST_ARGS, LAUNCH_ENV, launch, launch_command, weights_of

STEPS = ["--max_train_steps", "12", "--checkpointing_steps", "6", "--validation_steps", "6", "--save_images_steps",
         "1000"]
TWO_PROCESSES = ["--multi_gpu", "--num_processes", "2"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def two_machines(train_args, tmp_path, name):
    """Launch machine 0 and machine 1 of a 2-machine run at once, as on two hosts (here both on loopback,
    with the output folder on a file system both see); returns both outputs."""
    port, launchers = free_port(), []
    for rank in (0, 1):
        machine = ["--multi_gpu", "--num_machines", "2", "--num_processes", "2", "--machine_rank", str(rank),
                   "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)]
        log = open(tmp_path / f"{name}-machine{rank}.log", "w+", encoding="utf-8")
        launchers.append((subprocess.Popen(launch_command(*train_args, launcher_args=machine), env=LAUNCH_ENV,
                                           stdout=log, stderr=subprocess.STDOUT), log))
    outputs = []
    for process, log in launchers:
        process.wait(timeout=600)
        log.seek(0)
        outputs.append(log.read())
        log.close()
        assert process.returncode == 0, outputs[-1][-3000:]
    return outputs


def assert_same_weights(a, b, atol):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=atol, msg=name)


@pytest.mark.slow
def test_two_machines_end_with_the_weights_of_one_machine_and_resume_on_either(blobs, tmp_path):
    common = ["--dataset", blobs, *FAST_ARGS, *STEPS]
    common[common.index("--train_batch_size") + 1] = "4"  # per process: a global batch of 8 with two
    machines_out = two_machines([*common, "--output_dir", tmp_path / "machines"], tmp_path, "straight")
    launch(*common, "--output_dir", tmp_path / "one_machine", launcher_args=TWO_PROCESSES)
    one_process = [*common, "--output_dir", tmp_path / "one_process"]
    one_process[one_process.index("--train_batch_size") + 1] = "8"
    launch(*one_process)

    # Once per machine, by its local main process (accelerate's print), not once per process.
    assert [out.count("64 training images") for out in machines_out] == [1, 1]
    checkpoint = tmp_path / "machines" / "checkpoint-6"
    assert {p.name for p in checkpoint.glob("random_states_*.pkl")} == {"random_states_0.pkl", "random_states_1.pkl"}
    machines = weights_of(tmp_path / "machines")
    # The same arithmetic in the same order: two machines and two local processes agree to the bit.
    assert_same_weights(machines, weights_of(tmp_path / "one_machine"), atol=1e-6)
    # One process sums the global batch's gradients in another order than the all-reduce does (measured: 1.5e-5).
    assert_same_weights(machines, weights_of(tmp_path / "one_process"), atol=1e-4)

    # Resume the two machines' step-6 checkpoint on two machines, and on one process with the same global batch.
    for name in ("resumed_machines", "resumed_one_process"):
        (tmp_path / name).mkdir()
        shutil.copytree(checkpoint, tmp_path / name / "checkpoint-6")
    two_machines([*common, "--output_dir", tmp_path / "resumed_machines", "--resume_from_checkpoint", "latest"],
                 tmp_path, "resumed")
    launch(*one_process[:-1], tmp_path / "resumed_one_process", "--resume_from_checkpoint", "latest")
    assert_same_weights(machines, weights_of(tmp_path / "resumed_machines"), atol=1e-6)
    assert_same_weights(machines, weights_of(tmp_path / "resumed_one_process"), atol=1e-4)

    # A different global batch would lose the run's place in the data: refused in one line.
    (tmp_path / "refused").mkdir()
    shutil.copytree(checkpoint, tmp_path / "refused" / "checkpoint-6")
    refused = subprocess.run(launch_command(*common, "--output_dir", tmp_path / "refused", "--resume_from_checkpoint",
                                            "latest", launcher_args=["--quiet"]),
                             env=LAUNCH_ENV, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0
    assert ("train_ddpm.py: error: --resume_from_checkpoint " in refused.stderr
            and "was written by 2 processes x --train_batch_size 4 x --gradient_accumulation_steps 1, this run has "
                "1 process x --train_batch_size 4" in refused.stderr
            and "resume with a global batch of 8" in refused.stderr), refused.stderr[-2000:]
