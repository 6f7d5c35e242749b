"""Time the web demo's Generate (16 images, the sampler the page offers first) under torch's CPU thread settings.

    python -m benchmarks.app_speed MODEL [--num_images 16] [--repeats 3]

Each setting runs in its own Python process, since OpenMP reads `OMP_WAIT_POLICY` once, when torch starts it:
idle threads that sleep (`PASSIVE`, what `app.py` sets) or spin (`ACTIVE`), with torch's default thread count
or one thread. Run it while the machine is idle and again while it is busy: spinning threads lose most when
other programs want the cores. Prints a Markdown table with each setting's median time and its ratio to
app.py's setting.
"""

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

REPO_ROOT = Path(__file__).resolve().parents[1]
# (label, OMP_WAIT_POLICY, torch threads or None for torch's default)
SETTINGS = [
    ("app.py: sleeping threads, default count", "PASSIVE", None),
    ("sleeping threads, 1 thread", "PASSIVE", 1),
    ("spinning threads, default count", "ACTIVE", None),
]
# Runs in the child process: load app.py, warm up, then time Generate; prints one JSON line.
CHILD = """
import importlib.util, json, sys, time, torch
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
model, num_images, repeats, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
if threads != "default":
    torch.set_num_threads(int(threads))
pipe = app.load_model(model)
character = (pipe.class_names or [app.ANY_CHARACTER])[0]
_, sampler, steps = app.sampler_menu(pipe)  # what the page offers first: a student's own sampler and steps
args = (model, character, num_images, sampler, steps, 1.0, 0)
app.generate(*args)
seconds = []
for _ in range(repeats):
    start = time.perf_counter()
    app.generate(*args)
    seconds.append(time.perf_counter() - start)
print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads()}))
"""


def time_setting(model: str, num_images: int, repeats: int, policy: str, threads: int | None) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    command = [sys.executable, "-c", CHILD, str(REPO_ROOT / "app.py"), model, str(num_images), str(repeats)]
    command.append("default" if threads is None else str(threads))
    result = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"benchmark child failed ({policy}, threads={threads}):\n{result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


@dataclass
class AppSpeedArguments:
    """The options of `python -m benchmarks.app_speed MODEL`."""

    num_images: int = field(default=16, metadata={"help": "images per Generate"})
    repeats: int = field(default=3, metadata={"help": "timed Generates per setting (after one warm-up)"})


def main(argv: list[str] | None = None) -> None:
    parser = HfArgumentParser(AppSpeedArguments, prog="python -m benchmarks.app_speed",
                              description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a folder saved by train_ddpm.py, or a Hub model id")
    args, positional = parser.parse_args_into_dataclasses(args=argv)
    if args.num_images < 1 or args.repeats < 1:
        parser.error("--num_images and --repeats must be at least 1")

    rows = []
    for label, policy, threads in SETTINGS:
        measured = time_setting(positional.model, args.num_images, args.repeats, policy, threads)
        rows.append((label, measured["threads"], statistics.median(measured["seconds"])))
    baseline = rows[0][2]
    print(f"| setting ({args.num_images} images, Generate's defaults) | torch threads | median s | × app.py's |")
    print("| --- | ---: | ---: | ---: |")
    for label, threads, seconds in rows:
        print(f"| {label} | {threads} | {seconds:.2f} | {seconds / baseline:.2f} |")


if __name__ == "__main__":
    main()
