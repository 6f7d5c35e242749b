"""Time to quality: train recipes under one wall-clock budget and score each at several points.

    python -m benchmarks.time_to_quality                           # MNIST, 20 minutes, 4 recipes
    python -m benchmarks.time_to_quality --minutes 1 --num_samples 200   # a quick check (a few minutes)
    python -m benchmarks.time_to_quality --recipes default --variant "lr2e-3:--learning_rate 2e-3"

Each recipe trains on the same data for `--minutes` and saves its model at `--points` (minutes of
training time, from one run each: train_ddpm.py's `--snapshot_minutes`). Every saved model is then
scored by `python -m evaluation` with the domain classifier (Fréchet distance, recognisable share,
precision and recall, each next to the real-data floor), and a table (markdown), `results.json` and a
plot of quality against minutes are written. Fair by construction, said in the output:

- `--mode pinned` (default on 2+ cores): one recipe per core, each pinned to it (`os.sched_setaffinity`)
  with one thread, as many at once as there are cores;
- `--mode sequential`: one recipe at a time on all cores.

Recipes: `default` (`configs/<dataset>.yaml`, this project's recipe), `previous` (the recipe before
the time-to-quality work: `benchmarks/recipes/previous.yaml`), `diffusers_example` (the settings of
diffusers' `train_unconditional.py` on the same UNet: `benchmarks/recipes/diffusers_example.yaml`)
and `bare_loop` (`benchmarks/bare_loop.py`). A `--variant NAME:FLAGS` is `default` plus train_ddpm.py
flags, for measuring one lever.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from transformers import HfArgumentParser

from benchmarks.provenance import cpu_description, made_on_line
from data_prep.arguments import DataArguments

REPO = Path(__file__).resolve().parent.parent
RECIPE_FILES = {"previous": "benchmarks/recipes/previous.yaml",
                "diffusers_example": "benchmarks/recipes/diffusers_example.yaml"}
RECIPES = ("default", "previous", "diffusers_example", "bare_loop")


@dataclass(kw_only=True)
class TimeToQualityArguments(DataArguments):
    """The options of `python -m benchmarks.time_to_quality`."""

    dataset: str = field(default="mnist", metadata={"help": "a train_ddpm.py --dataset name under --data_dir"})
    classifier: Optional[str] = field(default=None, metadata={
        "help": "domain classifier folder (default classifiers/DATASET, trained by python -m evaluation)"})
    reader: Optional[str] = field(default=None, metadata={
        "help": "independent reader folder (default classifiers/DATASET_reader, trained by python -m evaluation)"})
    minutes: float = field(default=20.0, metadata={"help": "wall-clock training budget of every recipe"})
    points: list[float] = field(default_factory=lambda: [2, 5, 10, 20], metadata={"help": (
        "minutes at which each recipe is scored (those past --minutes are dropped; --minutes itself is always one)")})
    recipes: list[str] = field(default_factory=lambda: list(RECIPES), metadata={
        "choices": RECIPES, "help": "recipes to train (none: only the --variant ones)"})
    variant: list[str] = field(default_factory=list, metadata={
        "action": "append", "metavar": "NAME:FLAGS", "help": "also train `default` with these train_ddpm.py flags, "
                                                            "under NAME (repeat for more)"})
    mode: Optional[str] = field(default=None, metadata={"choices": ("pinned", "sequential"), "help": (
        "one recipe per core, or one at a time on all cores (default: pinned on 2+ cores)")})
    num_samples: int = field(default=1000, metadata={"help": "samples scored per point"})
    guidance_scale: float = field(default=1.0, metadata={"help": "for class-conditional recipes"})
    output_dir: Path = field(default=Path("runs/time_to_quality"), metadata={"help": "where the runs and report go"})
    plot: Optional[Path] = field(default=None, metadata={"help": "where the plot goes (default OUTPUT_DIR/plot.png)"})
    skip_training: bool = field(default=False, metadata={"help": "score and report recipes trained before"})


def parse_args(argv: list[str] | None = None) -> TimeToQualityArguments:
    parser = HfArgumentParser(TimeToQualityArguments, description=__doc__.split("\n\n")[0],
                              conflict_handler="resolve")
    # HfArgumentParser gives every list nargs="+"; a bare --recipes (only the variants) needs "*"
    parser.add_argument("--recipes", nargs="*", choices=RECIPES, default=list(RECIPES),
                        help="recipes to train (none: only the --variant ones)")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    args.variant = [flags for group in args.variant for flags in group]  # append of nargs="+": one list per flag
    if not args.recipes and not args.variant:
        parser.error("nothing to train: name --recipes or a --variant")
    args.points = sorted({p for p in args.points if p < args.minutes} | {args.minutes})
    args.mode = args.mode or ("pinned" if len(os.sched_getaffinity(0)) > 1 else "sequential")
    return args


def recipe_commands(args) -> dict[str, list[str]]:
    """The training command of each recipe, without the core/thread settings."""
    points = [f"{p:g}" for p in args.points]
    commands = {}
    for name in args.recipes:
        out = str(args.output_dir / name)
        if name == "bare_loop":
            commands[name] = [sys.executable, "-m", "benchmarks.bare_loop", "--dataset", args.dataset, "--data_dir",
                              args.data_dir, "--minutes", f"{args.minutes:g}", "--snapshot_minutes", *points,
                              "--output_dir", out]
            continue
        config = RECIPE_FILES.get(name, f"configs/{args.dataset}.yaml")
        commands[name] = train_command(args, config, out, points)
    for variant in args.variant:
        name, _, flags = variant.partition(":")
        out = str(args.output_dir / name)
        commands[name] = train_command(args, f"configs/{args.dataset}.yaml", out, points) + shlex.split(flags)
    return commands


def train_command(args, config: str, output_dir: str, points: list[str]) -> list[str]:
    """train_ddpm.py with a config file, this benchmark's data, budget and snapshots."""
    command = [sys.executable, "train_ddpm.py"]
    if (REPO / config).is_file():
        command += ["--config", config]
    return command + ["--dataset", args.dataset, "--data_dir", args.data_dir, "--max_train_minutes",
                      f"{args.minutes:g}", "--max_train_steps", "1000000", "--snapshot_minutes", *points,
                      "--checkpointing_steps", "1000000", "--logger", "none", "--output_dir", output_dir]


def with_threads(command: list[str], threads: int) -> list[str]:
    """The command with its CPU thread count set (both train_ddpm.py and bare_loop take --num_threads)."""
    return command + ["--num_threads", str(threads)]


def train_all(args, commands: dict[str, list[str]]) -> dict[str, dict]:
    """Train the recipes, pinned one per core or one at a time on all cores; returns per-recipe run facts."""
    cores = sorted(os.sched_getaffinity(0))
    group_size = len(cores) if args.mode == "pinned" else 1
    threads = 1 if args.mode == "pinned" else len(cores)
    names, facts = list(commands), {}
    for first in range(0, len(names), group_size):
        group = names[first: first + group_size]
        running = []
        for core, name in zip(cores, group):
            log = open(args.output_dir / f"train_{name}.log", "w")
            pin = (lambda c=core: os.sched_setaffinity(0, {c})) if args.mode == "pinned" else None
            command = with_threads(commands[name], threads)
            print("$", shlex.join(command), f"(core {core})" if pin else "", flush=True)
            running.append((name, subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                                   preexec_fn=pin), log, time.monotonic()))
        for name, process, log, started in running:
            code = process.wait()
            log.close()
            if code:
                sys.exit(f"{name}: training failed with exit code {code}; see {log.name}")
            facts[name] = {"threads": threads, "wall_clock_s": round(time.monotonic() - started, 1)}
    return facts


def score_all(args, names: list[str]) -> dict[str, list[dict]]:
    """Score every snapshot of every recipe with python -m evaluation (one at a time, all cores)."""
    rows = {}
    for name in names:
        rows[name] = []
        for minutes in args.points:
            snapshot = args.output_dir / name / "snapshots" / f"{minutes:g}min"
            out = args.output_dir / name / "eval" / f"{minutes:g}min"
            if not (out / "metrics.json").is_file():
                command = [sys.executable, "-m", "evaluation", str(snapshot), "--dataset", args.dataset,
                           "--data_dir", args.data_dir,
                           "--num_samples", str(args.num_samples), "--guidance_scale", str(args.guidance_scale),
                           "--output_dir", str(out), "--overwrite"]
                # without them, evaluation uses classifiers/DATASET(_reader), trained there on first use
                command += ["--classifier", args.classifier] if args.classifier else []
                command += ["--reader", args.reader] if args.reader else []
                print("$", shlex.join(command), flush=True)
                with open(args.output_dir / f"eval_{name}.log", "a") as log:
                    if subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode:
                        sys.exit(f"{name}: scoring {snapshot} failed; see {log.name}")
            metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
            progress = json.loads((snapshot / "progress.json").read_text(encoding="utf-8"))
            rows[name].append({"minutes": minutes, **progress, "samples": metrics["samples"],
                               "floor": metrics["real_data_floor"], "sampling_time_s": metrics["sampling_time_s"],
                               "reader": metrics.get("independent_reader")})
    return rows


def report(args, rows: dict[str, list[dict]], facts: dict[str, dict]) -> str:
    """The markdown table: one row per recipe and point, each score next to its real-data floor."""
    mode = ("one recipe per core, pinned, 1 thread each" if args.mode == "pinned"
            else "one recipe at a time on all cores")
    threads = "1" if args.mode == "pinned" else str(len(os.sched_getaffinity(0)))
    lines = [f"{args.dataset}, {args.minutes:g}-minute budget, {mode}; {args.num_samples} samples per point, the "
             "model's saved sampler; in brackets the real-data floor. *Readable* is the independent reader's share "
             "(evaluation/reader.py), in brackets that of real held-out test images and the ratio.", "",
             made_on_line(threads), "",
             "| recipe | minutes | steps | images/s | threads | readable (reader) | recognisable | Fréchet distance | "
             "FD / floor | precision | recall |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    # Class-conditional models also get the share of samples read as the class asked for.
    conditional = any("class_accuracy" in row["samples"] for points in rows.values() for row in points)
    if conditional:
        lines[-2:] = [lines[-2] + " requested class recognised |", lines[-1] + "---|"]
    for name, points in rows.items():
        batch = batch_size(args, name)
        for row in points:
            samples, floor = row["samples"], row["floor"]
            speed = row["global_step"] * batch / max(row["training_time_s"], 1e-9)
            lines.append(
                f"| {name} | {row['minutes']:g} | {row['global_step']:,} | {speed:.0f} | "
                f"{facts.get(name, {}).get('threads', '?')} | {read_by_reader(row.get('reader'))} | "
                f"{100 * samples['recognisable']:.1f}% ({100 * floor['recognisable']:.1f}%) | "
                f"{samples['frechet_distance']:.2f} ({floor['frechet_distance']:.2f}) | "
                f"{samples['frechet_distance'] / floor['frechet_distance']:.1f}x | "
                f"{samples['precision']:.3f} ({floor['precision']:.3f}) | "
                f"{samples['recall']:.3f} ({floor['recall']:.3f}) |"
                + (f" {requested_class(samples, floor)} |" if conditional else "")
            )
    return "\n".join(lines)


def read_by_reader(reader: dict | None) -> str:
    """The independent reader's readable share of samples, of real held-out images, and their ratio ("–": none)."""
    if not reader:
        return "–"
    return (f"{100 * reader['samples_readable']:.1f}% ({100 * reader['real_readable']:.1f}%, "
            f"{reader['readable_ratio']:.2f}×)")


def requested_class(samples: dict, floor: dict) -> str:
    """The requested class recognised next to the classifier's accuracy on real test images ("–": unconditional)."""
    if "class_accuracy" not in samples:
        return "–"
    return f"{100 * samples['class_accuracy']:.1f}% ({100 * floor['class_accuracy']:.1f}%)"


def batch_size(args, name: str) -> int:
    """Images per step of a recipe (from its saved training_config.json; the bare loop's is fixed)."""
    config = args.output_dir / name / "training_config.json"
    if not config.is_file():
        from benchmarks.bare_loop import BATCH

        return BATCH
    return json.loads(config.read_text(encoding="utf-8"))["train_batch_size"]


def plot(rows: dict[str, list[dict]], path: Path, title: str) -> None:
    """Recognisable share and Fréchet distance / floor against minutes, a curve per recipe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    # the independent reader's readable share where every point has it, else the domain classifier's
    by_reader = all(row.get("reader") for points in rows.values() for row in points)
    for name, points in rows.items():
        minutes = [row["minutes"] for row in points]
        shares = [row["reader"]["samples_readable"] if by_reader else row["samples"]["recognisable"] for row in points]
        left.plot(minutes, [100 * share for share in shares], marker="o", label=name)
        right.plot(minutes, [row["samples"]["frechet_distance"] / row["floor"]["frechet_distance"] for row in points],
                   marker="o", label=name)
    last = next(iter(rows.values()))[-1]
    floor = last["reader"]["real_readable"] if by_reader else last["floor"]["recognisable"]
    real = "real held-out images" if by_reader else "real images"
    left.axhline(100 * floor, color="grey", linestyle="--", label=real)
    left.set(xlabel="training minutes", ylim=(0, 100),
             ylabel="readable samples, independent reader (%)" if by_reader else "recognisable samples (%)")
    right.set(xlabel="training minutes", ylabel="Fréchet distance / real-data floor", yscale="log")
    left.legend(fontsize=8)
    for axis in (left, right):
        axis.grid(alpha=0.3)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    commands = recipe_commands(args)
    facts_path = args.output_dir / "runs.json"
    if args.skip_training:
        facts = json.loads(facts_path.read_text(encoding="utf-8")) if facts_path.is_file() else {}
    else:
        facts = train_all(args, commands)
        facts_path.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    rows = score_all(args, list(commands))
    table = report(args, rows, facts)
    (args.output_dir / "results.md").write_text(table + "\n", encoding="utf-8")
    (args.output_dir / "results.json").write_text(json.dumps({"mode": args.mode, "cpu": cpu_description(),
                                                             "runs": facts, "points": rows}, indent=2) + "\n")
    mode = "one recipe per core, 1 thread each" if args.mode == "pinned" else "one recipe at a time, all cores"
    plot(
        rows,
        args.plot or args.output_dir / "plot.png",
        f"{args.dataset}, {args.minutes:g}-minute budget, {mode}, {args.num_samples} samples per point\n"
        f"{cpu_description()}",
    )
    print(table)


if __name__ == "__main__":
    main()
