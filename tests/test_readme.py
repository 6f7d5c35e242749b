"""The README's own commands, run as written, in order, in a copy of the checkout: what `train` saves is what
`generate`, `evaluate` and `share` read.

Only a budget is added, in one way: `README_BUDGET` flags appended to the commands it names (training
steps instead of minutes, fewer evaluation samples). The Hub is the loopback server of tests/hub_server.py,
holding `ylecun/mnist` made from the real MNIST test file (the README's `data_prep mnist` loads it from
there) and receiving the `push`. `python app.py` starts a server and is left to tests/test_app_browser.py;
`python -m pytest` is this very run; a `python -m benchmarks...` line says how a figure was made.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_commands import REPO, doc_commands
from tests.hub_client import run_client

# What is appended to a README command, by the word that marks it: nothing else of a command is changed.
README_BUDGET = {
    "train_ddpm.py": ["--max_train_steps", "30"],
    "evaluation": ["--num_samples", "200"],
    "pipelines.distill": ["--num_pairs", "128", "--max_train_steps", "20"],
}
NOT_RUN = ("app.py",)

# `ylecun/mnist` on the loopback Hub: 1,000 train and 300 test images of the real MNIST test file.
SEED_MNIST = """
import sys
import datasets
from data_prep.idx import read_idx
from pathlib import Path
folder = Path(sys.argv[1])
images = read_idx(folder / "t10k-images-idx3-ubyte.gz", 3)
labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz", 1)
features = datasets.Features({"image": datasets.Image(),
                              "label": datasets.ClassLabel(names=[str(d) for d in range(10)])})
def split(start, stop):
    return datasets.Dataset.from_dict({"image": list(images[start:stop]), "label": labels[start:stop].tolist()},
                                      features=features)
datasets.DatasetDict({"train": split(0, 1000), "test": split(1000, 1300)}).push_to_hub("ylecun/mnist")
print("{}")
"""


def readme_commands() -> list[list[str]]:
    """The README's commands in order, with `README_BUDGET` appended; the ones in `NOT_RUN` left out."""
    commands = []
    for command in doc_commands(REPO / "README.md"):
        argv = list(command.argv)
        if any(word in NOT_RUN for word in argv) or (argv[1] == "-m" and argv[2].startswith("benchmarks.")):
            continue  # a server, or how a figure was made (an hour of runs)
        marks = {argv[2] if argv[1] == "-m" else None} | set(argv)
        for mark, extra in README_BUDGET.items():
            if mark in marks:
                argv += extra
        commands.append(argv)
    return commands


def copy_checkout(destination: Path) -> Path:
    """The tracked files of this checkout (as a fresh clone has them) copied to `destination`."""
    try:
        names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell which files a fresh clone has")
    for name in names.splitlines():
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    return destination


def test_the_readme_commands_run_as_written_and_chain(hub, shared_data, tmp_path):
    commands = readme_commands()
    words = [" ".join(argv) for argv in commands]
    assert len(commands) == 8, words  # the quick start's two and the commands' table
    assert "data_prep mnist" in words[2] and "pipelines.push runs/mnist" in words[-1]
    seeded = run_client(hub, SEED_MNIST, str(shared_data / "mnist"), home=tmp_path)
    assert seeded.returncode == 0, seeded.stderr[-3000:]

    clone = copy_checkout(tmp_path / "clone")
    env = hub.client_env(tmp_path / "hf_home")
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # `python` and `accelerate` of this environment
    for argv in commands:
        result = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{' '.join(argv)}\n{result.stderr[-3000:]}"

    assert (clone / "runs" / "glyphs" / "model_index.json").is_file() and (clone / "be.png").is_file()
    assert (clone / "data" / "mnist" / "dataset_dict.json").is_file()
    assert (clone / "runs" / "mnist" / "model_index.json").is_file()
    assert (clone / "grid.png").is_file() and (clone / "denoising.gif").is_file()
    assert (clone / "eval" / "mnist" / "metrics.json").is_file() and (clone / "classifiers" / "mnist").is_dir()
    student = clone / "runs" / "mnist-2step"
    assert (student / "model_index.json").is_file() and "LCMScheduler" in (student / "scheduler/scheduler_config.json"
                                                                            ).read_text()
    pushed = hub.files("YOU/mnist-ddpm")
    assert "model_index.json" in pushed and "unet/diffusion_pytorch_model.safetensors" in pushed
    assert pushed["model_index.json"].decode() == (clone / "runs/mnist/model_index.json").read_text()
