"""Reproduce docs/results.md: data, domain classifiers, time-boxed training, scores, pictures, samplers.

    python -m benchmarks.results                                   # everything: over an hour on 2 cores
    python -m benchmarks.results --classifiers "classifiers/{dataset}"   # reuse trained classifiers
    python -m benchmarks.results --stages evaluate docs sampling   # re-score and redraw finished runs

Stages, in order (`--stages` picks some; each reads what the earlier ones wrote):

1. `data`: `data_prep.prepare` for MNIST (the IDX files under `--shared_data/mnist`), Persian digits and
   letters (the two Hoda `.cdb` files) and the rendered `glyphs`, under `--data_dir` (kept if present).
2. `classifiers`: `python -m evaluation.train_classifier` per dataset, unless `--classifiers` names
   existing folders.
3. `train`: `train_ddpm.py --config configs/<dataset>.yaml --max_train_minutes M` per dataset, one after
   another on all cores: each run stops at its wall-clock budget and saves its EMA model as the pipeline.
   `configs/original_notebooks.yaml` is the original project's setup, trained the same way with
   `--datasets original_notebooks`.
4. `evaluate`: `python -m evaluation` on each model (scores next to the real-data floor).
5. `docs`: `docs/<dataset>/` gets the loss curve, a sample grid (class-conditional: one row per class)
   and a small denoising GIF.
6. `sampling`: `python -m benchmarks.sampling` on the MNIST model, and its scores with the samplers of
   `METRIC_SAMPLERS` (DPM-Solver++ 20, DDPM 50).
7. `report`: `--runs_dir/results.md`, the tables of docs/results.md (scores next to the real-data floor in brackets).

Every run prints its command; `--runs_dir/summary.json` collects the times, steps and scores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from transformers import HfArgumentParser

from benchmarks.provenance import made_on_line

REPO = Path(__file__).resolve().parent.parent
STAGES = ("data", "classifiers", "train", "evaluate", "docs", "sampling", "report")


@dataclass(frozen=True)
class Run:
    """One trained model of the results: its data, config and budget."""

    dataset: str  # data_prep kind, also the folder under --data_dir
    config: str  # training config under configs/
    minutes: float  # wall-clock training budget
    guidance_scale: float = 1.0  # for sampling and scoring class-conditional models
    num_samples: int = 1000  # images scored by python -m evaluation


RUNS = {
    "mnist": Run("mnist", "mnist", 20),
    "persian": Run("persian", "persian", 30, guidance_scale=2.0, num_samples=920),
    "glyphs": Run("glyphs", "glyphs", 4, guidance_scale=2.0, num_samples=420),
    "original_notebooks": Run("persian", "original_notebooks", 15, num_samples=920),
}


def python(*args: str) -> list[str]:
    """A command running this interpreter."""
    return [sys.executable, *args]


def run_command(command: list[str], log: Path | None = None) -> None:
    """Run `command` from the repository root, printing it; stop the script if it fails."""
    print("$", " ".join(command), flush=True)
    with open(log, "w") if log else open(os.devnull, "w") as sink:
        result = subprocess.run(command, cwd=REPO,
                                stdout=sink if log else None, stderr=subprocess.STDOUT if log else None)
    if result.returncode:
        sys.exit(f"command failed with exit code {result.returncode}" + (f"; see {log}" if log else ""))


# ----- 1. data -----
def prepare_data(names: list[str], data_dir: Path, shared_data: Path) -> None:
    """Write each dataset with data_prep unless it is already there."""
    from data_prep import prepare

    sources = {
        "mnist": {"source": str(shared_data / "mnist")},
        "persian": {"source": [str(shared_data / "hoda" / "Test 20000.cdb"),
                               str(shared_data / "hoda_letters" / "Persian-Character-DB-Test.cdb")]},
        "glyphs": {"per_class": 200},
    }
    for name in names:
        if (data_dir / name / "dataset_dict.json").is_file():
            print(f"data: {data_dir / name} exists, kept")
            continue
        print(f"data: preparing {name} -> {data_dir / name}", flush=True)
        prepare(name, output_dir=data_dir / name, seed=0, **sources[name])


# ----- 2. classifiers -----
def classifier_dir(args, dataset: str) -> Path:
    """The domain classifier folder of `dataset` (given by --classifiers, or trained under --runs_dir)."""
    if args.classifiers:
        return Path(args.classifiers.format(dataset=dataset))
    return args.runs_dir / "classifiers" / dataset


def train_classifiers(args, datasets: list[str]) -> None:
    """Train the missing domain classifiers."""
    for dataset in datasets:
        target = classifier_dir(args, dataset)
        if (target / "config.json").is_file():
            print(f"classifier: {target} exists, kept")
            continue
        run_command(python("-m", "evaluation.train_classifier", "--dataset", str(args.data_dir / dataset),
                           "--output_dir", str(target)), args.runs_dir / f"classifier_{dataset}.log")


# ----- 3. train -----
def train_command(args, name: str) -> list[str]:
    """The train_ddpm.py command of run `name`: its config, its wall-clock budget, all of this machine's cores."""
    return python("train_ddpm.py", "--config", f"configs/{RUNS[name].config}.yaml", "--data_dir", str(args.data_dir),
                  "--max_train_minutes", f"{RUNS[name].minutes * args.budget_scale:g}",
                  # Set, not left to train_ddpm.py's load-based default: the run before this one has just
                  # loaded every core, and the 1-minute load average would still count them as busy.
                  "--num_threads", str(os.cpu_count() or 1), "--output_dir", str(args.runs_dir / name))


def train_runs(args, names: list[str]) -> None:
    """Train the runs one after another, each stopped by train_ddpm.py at its wall-clock budget and saved."""
    for name in names:
        started = time.monotonic()
        run_command(train_command(args, name), args.runs_dir / f"train_{name}.log")
        output_dir = args.runs_dir / name
        config = json.loads((output_dir / "training_config.json").read_text(encoding="utf-8"))
        step = latest_step_in_losses(output_dir)
        record = {"wall_clock_s": round(time.monotonic() - started, 1), "budget_min": RUNS[name].minutes *
                  args.budget_scale, "stopped_at_budget": step is not None and step < config["max_train_steps"],
                  "global_step": step, "num_threads": os.cpu_count()}
        update_summary(args, name, {"training": record})
        print(f"train: {name} done, {record}", flush=True)


def latest_step_in_losses(output_dir: Path) -> int | None:
    """The last step in the run's losses.csv."""
    csv_path = output_dir / "losses.csv"
    if not csv_path.is_file():
        return None
    rows = csv_path.read_text().strip().splitlines()[1:]
    return int(float(rows[-1].split(",")[0])) if rows else None


def update_summary(args, name: str, values: dict) -> None:
    """Merge `values` into `--runs_dir/summary.json` under `name`."""
    path = args.runs_dir / "summary.json"
    summary = json.loads(path.read_text()) if path.is_file() else {}
    summary.setdefault(name, {}).update(values)
    partial = path.with_name(".summary.json.partial")
    partial.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    partial.replace(path)


# ----- 4. evaluate -----
def evaluate_runs(args, names: list[str]) -> None:
    """Score each model with python -m evaluation and keep its headline numbers in the summary."""
    for name in names:
        run = RUNS[name]
        output_dir = args.runs_dir / f"eval_{name}"
        command = python("-m", "evaluation", str(args.runs_dir / name), "--dataset", str(args.data_dir / run.dataset),
                         "--classifier", str(classifier_dir(args, run.dataset)), "--num_samples", str(run.num_samples),
                         "--output_dir", str(output_dir), "--overwrite")
        if is_class_conditional(args.runs_dir / name):
            command += ["--guidance_scale", str(run.guidance_scale)]
        run_command(command, args.runs_dir / f"eval_{name}.log")
        metrics = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
        update_summary(args, name, {"evaluation": {key: metrics.get(key) for key in (
            "num_samples", "scheduler", "guidance_scale", "sampling_time_s", "samples", "real_data_floor")}})


def is_class_conditional(model_dir: Path) -> bool:
    """Whether the saved UNet has a class embedding."""
    config = json.loads((model_dir / "unet" / "config.json").read_text(encoding="utf-8"))
    return config.get("num_class_embeds") is not None


# ----- 5. docs -----
def draw_docs(args, names: list[str]) -> None:
    """Loss curve, sample grid and denoising GIF of each model under --docs_dir/<name>/."""
    import torch

    from pipelines import CharacterDDPMPipeline, image_grid, save_trajectory_gif

    for name in names:
        run, model_dir, target = RUNS[name], args.runs_dir / name, args.docs_dir / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_dir / "loss_curve.png", target / "loss_curve.png")
        pipe = CharacterDDPMPipeline.from_pretrained(model_dir)
        pipe.set_progress_bar_config(disable=True)
        options = {"output_type": "pt"}  # the pipeline's default steps of the saved sampler
        if pipe.is_class_conditional:
            # One row per class, `per_row` samples each: labels (K * per_row,) = 0,0,...,1,1,...
            per_row, count = 8, len(pipe.class_names)
            labels = [index for index in range(count) for _ in range(per_row)]
            options["guidance_scale"] = run.guidance_scale
        else:
            per_row, labels = 10, None
        images = []
        for start in range(0, len(labels) if labels else 100, 64):  # batches of at most 64 images
            batch = labels[start:start + 64] if labels else None
            size = len(batch) if batch else min(64, 100 - start)
            extra = {"class_labels": batch} if batch else {}
            generator = [torch.Generator().manual_seed(start + i) for i in range(size)]
            images.append(pipe(batch_size=size, generator=generator, **extra, **options).images)
        grid = image_grid(torch.cat(images), cols=per_row)  # (rows * H, per_row * W)
        if pipe.is_class_conditional:
            grid = with_row_labels(grid, pipe.class_names)
        grid.resize((grid.width * 2, grid.height * 2), resample=0).save(target / "samples.png")  # 2x, nearest
        # A small GIF: 8 images, up to 16 frames from noise to the final samples (one per sampler step).
        extra = {"class_labels": list(range(0, len(pipe.class_names), max(1, len(pipe.class_names) // 8)))[:8]} \
            if pipe.is_class_conditional else {}
        out = pipe(batch_size=8, generator=[torch.Generator().manual_seed(i) for i in range(8)], trajectory_every=1,
                   **extra, **options)
        save_trajectory_gif(out.trajectory, target / "denoising.gif", num_frames=min(16, len(out.trajectory)), cols=8)
        print(f"docs: wrote {target}/loss_curve.png, samples.png, denoising.gif", flush=True)


def with_row_labels(grid, names: list[str]):
    """`grid` with the requested character printed in grey left of each row (one row per class)."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    tile = grid.height // len(names)
    # BASIC layout (no shaping) draws each character in its isolated form, the same on every machine.
    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"),
                              int(tile * 0.7), layout_engine=ImageFont.Layout.BASIC)
    sheet = Image.new("L", (grid.width + tile + 4, grid.height), 0)
    draw = ImageDraw.Draw(sheet)
    for row, name in enumerate(names):
        draw.text((tile / 2, row * tile + tile / 2), name, font=font, fill=150, anchor="mm")
    sheet.paste(grid, (tile + 4, 0))
    return sheet


# ----- 6. sampling -----
# Samplers scored by the metrics on the MNIST model, besides its saved default (SDE-DPM-Solver++, 10 steps): the
# deterministic DPM-Solver++ at its usual 20, and DDPM at 50 (`benchmarks/sampler_quality.py` scores them all).
METRIC_SAMPLERS = (("dpm++", 20), ("ddpm", 50))


def compare_samplers(args) -> None:
    """benchmarks.sampling on the MNIST model (table in --runs_dir/sampling_mnist.md), and its scores with
    the samplers of METRIC_SAMPLERS (python -m evaluation --sampler ..., same seeds and sample count)."""
    table = args.runs_dir / "sampling_mnist.md"
    run_command(python("-m", "benchmarks.sampling", str(args.runs_dir / "mnist"), "--num_images", "8",
                       "--image", str(args.docs_dir / "mnist" / "samplers.png")), table)
    print(table.read_text(encoding="utf-8"))
    for sampler, steps in METRIC_SAMPLERS:
        name = f"mnist_{sampler}{steps}"
        run_command(python("-m", "evaluation", str(args.runs_dir / "mnist"), "--dataset", str(args.data_dir / "mnist"),
                           "--classifier", str(classifier_dir(args, "mnist")), "--num_samples",
                           str(RUNS["mnist"].num_samples), "--sampler", sampler, "--num_inference_steps",
                           str(steps), "--output_dir", str(args.runs_dir / f"eval_{name}"), "--overwrite"),
                    args.runs_dir / f"eval_{name}.log")


# ----- report -----
def write_report(args, names: list[str]) -> None:
    """`--runs_dir/results.md`: the tables of docs/results.md, under their `Made on` line, filled from
    summary.json and each metrics.json."""
    summary = json.loads((args.runs_dir / "summary.json").read_text(encoding="utf-8"))
    lines = ["| run | training (wall clock) | steps | images seen | Fréchet distance | KID x 1000 | precision | "
             "recall | recognisable | requested class recognised | sampling time |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []  # per-class recognition, below the table
    rows = [(name, name) for name in names]
    if "mnist" in names:
        rows += [(f"mnist_{sampler}{steps}", "mnist") for sampler, steps in METRIC_SAMPLERS]
    for label, name in rows:
        metrics_path = args.runs_dir / f"eval_{label}" / "metrics.json"
        if name not in summary or not metrics_path.is_file():
            continue
        training = summary[name].get("training", {})
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        config = json.loads((args.runs_dir / name / "training_config.json").read_text(encoding="utf-8"))
        samples, floor = metrics["samples"], metrics["real_data_floor"]
        step = training.get("global_step")
        cells = [f"{label} ({metrics['scheduler']}, {metrics['num_inference_steps'] or 'default'} steps)",
                 f"{training.get('wall_clock_s', 0) / 60:.1f} min", str(step),
                 f"{step * config['train_batch_size']:,}" if step else "?"]
        for key, scale, digits in (("frechet_distance", 1, 2), ("kernel_distance", 1000, 1), ("precision", 1, 3),
                                   ("recall", 1, 3), ("recognisable", 100, 1), ("class_accuracy", 100, 1)):
            if key in samples:
                unit = "%" if scale == 100 else ""
                cells.append(f"{samples[key] * scale:.{digits}f}{unit} ({floor[key] * scale:.{digits}f}{unit})")
            else:
                cells.append("–")
        cells.append(f"{metrics['sampling_time_s']:.0f} s for {metrics['num_samples']:,}")
        lines.append("| " + " | ".join(cells) + " |")
        per_class = [row for row in metrics["per_class"] if row.get("recognised") is not None]
        if per_class:
            ranked = sorted(per_class, key=lambda row: row["recognised"])
            notes.append(f"{label}: recognised per class, lowest first (below 80%: most often taken for): " + ", ".join(
                f"{row['class']} {row['recognised'] * 100:.0f}%"
                + (f" (→{row['most_confused_with']})" if row["recognised"] < 0.8 and row["most_confused_with"] else "")
                for row in ranked))
    report = args.runs_dir / "results.md"
    made_on = made_on_line(os.cpu_count() or 1)  # train_command gives each run every core
    report.write_text("\n".join([made_on, ""] + lines + [""] + notes) + "\n", encoding="utf-8")
    print(report.read_text(encoding="utf-8"))


@dataclass
class ResultsArguments:
    """The command line (see the module docstring)."""

    stages: list[str] = field(default_factory=lambda: list(STAGES), metadata={
        "choices": STAGES, "help": "stages to run, in order"})
    datasets: list[str] = field(default_factory=lambda: ["mnist", "persian", "glyphs"], metadata={
        "choices": sorted(RUNS), "help": "runs to train, score and draw (original_notebooks: the original setup)"})
    data_dir: Path = field(default=Path("data"), metadata={"help": "where data_prep writes the datasets"})
    shared_data: Path = field(default=Path("../shared/data"), metadata={
        "help": "the raw MNIST IDX files and Hoda .cdb files"})
    runs_dir: Path = field(default=Path("runs/results"), metadata={"help": "models, logs, scores"})
    classifiers: Optional[str] = field(default=None, metadata={"help": (
        'existing classifier folders, "{dataset}" standing for the name, e.g. "classifiers/{dataset}"; default: '
        "train them under RUNS_DIR/classifiers/")})
    budget_scale: float = field(default=1.0, metadata={
        "help": "multiply every training budget (e.g. 0.1 for a quick check of the pipeline)"})
    docs_dir: Path = field(default=Path("docs"), metadata={"help": "where the pictures go"})


def parse_args(argv: list[str] | None = None) -> ResultsArguments:
    """The command line (see the module docstring)."""
    parser = HfArgumentParser(
        ResultsArguments, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def main() -> None:
    """Run the chosen stages in order for the chosen runs."""
    args = parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    runs = args.datasets
    datasets = sorted({RUNS[name].dataset for name in runs})
    if "data" in args.stages:
        prepare_data(datasets, args.data_dir, args.shared_data)
    if "classifiers" in args.stages:
        train_classifiers(args, datasets)
    if "train" in args.stages:
        train_runs(args, runs)
    if "evaluate" in args.stages:
        evaluate_runs(args, runs)
    if "docs" in args.stages:
        draw_docs(args, runs)
    if "sampling" in args.stages and "mnist" in runs:
        compare_samplers(args)
    if {"evaluate", "report"} & set(args.stages):
        write_report(args, runs)


if __name__ == "__main__":
    main()
