"""Every command's `--help` works from an installed (not editable) copy of the project.

The help texts live in the dataclass fields' metadata, which `HfArgumentParser` turns into flags, so they must not
need the source files of a checkout. The project is built into a fresh virtual environment under `tmp_path`
(`pip install --no-deps --no-build-isolation`, not editable) that sees this environment's packages (torch,
diffusers, ...) but not its editable install, and each command runs from there, outside the checkout.
"""

import json
import os
import shutil
import site
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# The command (module and arguments before --help) -> a flag it must list and words of that flag's help.
COMMANDS = {
    ("data_prep",): ("persian", "Hoda .cdb files, image folders or zips"),
    ("data_prep", "mnist"): ("--source", "a folder of IDX files, or a Hub dataset id"),
    ("data_prep", "persian"): ("--numeric_labels", "what a number in a folder or file name means"),
    ("data_prep", "glyphs"): ("--per_class", "images per class"),
    ("pipelines.generate",): (
        "--guidance_scale",
        "classifier-free guidance scale of class-conditional models; 1 means no guidance",
    ),
    ("pipelines.push",): ("--repo_id", "created if missing"),
    ("pipelines.space",): ("--title", "the Space's title"),
    ("evaluation",): ("--num_samples", "Images to sample (equal numbers per class)."),
    ("evaluation.train_classifier",): ("--learning_rate", "Peak learning rate of the one-cycle schedule."),
    ("train_ddpm",): ("--learning_rate", "Peak learning rate; None takes the preset's"),
    ("app",): ("--num_threads", "CPU threads for torch"),
}
# The top-level files a build of the project reads (besides its packages).
PROJECT_FILES = ("setup.cfg", "pyproject.toml", "README.md", "train_ddpm.py", "app.py")
# The import names the installed copy must provide, each from the fresh environment.
IMPORT_NAMES = ("data_prep", "evaluation", "pipelines", "sharing", "training", "train_ddpm", "app")


def _copy_project(target: Path) -> Path:
    """The files a build reads, copied so that the build writes nothing into the checkout."""
    target.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(REPO_ROOT / name, target / name)
    for folder in REPO_ROOT.iterdir():
        if (folder / "__init__.py").is_file() and folder.name not in ("tests", "benchmarks"):
            shutil.copytree(folder, target / folder.name, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _fresh_environment(root: Path) -> Path:
    """A new virtual environment whose site-packages lead to this one's by a `.pth` path line: that makes
    torch & co. importable without running this environment's own `.pth` files, the editable install's finder
    among them."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    ours = [path for path in site.getsitepackages() if Path(path).is_dir()]
    (Path(purelib) / "outer_environment.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    return python


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(COLUMNS="200", HF_HUB_OFFLINE="1")
    return env


def _origins(python: Path, cwd: Path) -> dict[str, str]:
    """Where the fresh environment finds each of `IMPORT_NAMES` (found, not imported)."""
    script = "import importlib.util, json; print(json.dumps({n: importlib.util.find_spec(n).origin for n in %r}))"
    result = subprocess.run([python, "-c", script % (IMPORT_NAMES,)], cwd=cwd, env=_environment(),
                            check=True, capture_output=True, text=True, timeout=60)
    return json.loads(result.stdout)


def _help(python: Path, cwd: Path, command: tuple[str, ...]) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS --help`, run outside the checkout."""
    module, *args = command
    return subprocess.run([python, "-m", module, *args, "--help"], cwd=cwd, env=_environment(),
                          capture_output=True, text=True, timeout=300)


def test_every_command_helps_from_an_installed_copy(tmp_path):
    python = _fresh_environment(tmp_path / "venv")
    source = _copy_project(tmp_path / "source")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", str(source)], cwd=tmp_path, check=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    venv = (tmp_path / "venv").resolve()
    for name, origin in _origins(python, elsewhere).items():
        assert origin and Path(origin).resolve().is_relative_to(venv), f"{name} is imported from {origin}"

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        runs = dict(zip(COMMANDS, pool.map(lambda command: _help(python, elsewhere, command), COMMANDS)))
    for command, (flag, words) in COMMANDS.items():
        result, name = runs[command], " ".join(command)
        assert result.returncode == 0, f"{name} --help: {result.stderr[-3000:]}"
        text = " ".join(result.stdout.split())  # argparse wraps lines at any width
        assert flag in text and words in text, f"{name} --help lacks {flag} / {words!r}:\n{result.stdout}"


def test_the_console_scripts_of_the_packaging_answer_help():
    """setup.cfg's console_scripts (installed by `pip install -e .`) run the same commands as `python -m`."""
    import configparser
    from pathlib import Path

    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    scripts = [line.split("=")[0].strip() for line in config["options.entry_points"]["console_scripts"].splitlines()
               if line.strip()]
    assert "persian-ddpm-train" in scripts and len(scripts) == 5
    bin_dir = Path(sys.executable).parent
    missing = [name for name in scripts if not (bin_dir / name).exists() and shutil.which(name) is None]
    if missing:
        pytest.skip(f"console scripts not installed here ({', '.join(missing)}); pip install -e . installs them")
    for name in scripts:
        path = bin_dir / name if (bin_dir / name).exists() else shutil.which(name)
        result = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "usage:" in result.stdout, f"{name}: {result.stderr[-500:]}"
