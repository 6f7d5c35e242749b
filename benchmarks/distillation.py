"""Teacher against its few-step students, side by side: quality and seconds per 1,000 samples.

    python -m benchmarks.distillation TEACHER --students runs/student-2 runs/student-4 --dataset mnist

The teacher samples with ancestral DDPM (1,000 steps), its saved sampler, and DPM-Solver++ in 2 and 4 steps;
each student in 1, 2 and 4 steps (up to its own). Every setting draws the same `--num_samples` seeded images
(`python -m evaluation`, image i from seed i) and is scored against the test split: the independent reader's
readable share, the domain classifier's recognisable share, Fréchet distance and recall (and, for
class-conditional models, the share read as the class asked for), with the seconds the sampling took
(`--batch_size` images per call, bf16 autocast where the CPU has it). Writes `OUTPUT_DIR/results.md` and
`results.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from transformers import HfArgumentParser

from benchmarks.provenance import cpu_description
from data_prep.arguments import DataArguments
from evaluation.evaluate_model import EvaluationConfig, evaluate_model
from pipelines.sampling import load_pipeline

# (sampler, steps) of the teacher; None is its saved sampler with its usual steps.
TEACHER_SETTINGS = (("ddpm", 1000), (None, None), ("dpm++", 2), ("dpm++", 4))
STUDENT_STEPS = (1, 2, 4)


@dataclass(kw_only=True)
class DistillationBenchmarkArguments(DataArguments):
    """The options of `python -m benchmarks.distillation TEACHER`."""

    students: list[str] = field(default_factory=list, metadata={"help": (
        "student folders (python -m pipelines.distill)")})
    num_samples: int = field(default=1000, metadata={"help": "images per setting"})
    batch_size: int = field(default=500, metadata={"help": (
        "images per pipeline call (the speed depends on it: on 2 cores of an Intel Xeon, 500 drew 1,000 images "
        "in two student steps in 1.3 s, 100 in 1.55 s and 1,000 in 1.6 s)")})
    guidance_scale: float = field(default=1.0, metadata={"help": (
        "the teacher's classifier-free guidance (class-conditional; students have theirs folded in)")})
    skip_ddpm: bool = field(default=False, metadata={"help": "leave out the teacher's 1,000-step DDPM (minutes)"})
    output_dir: Path = field(default=Path("runs/distillation"), metadata={"help": "where the settings go"})
    classifier: Optional[str] = field(default=None, metadata={"help": "domain classifier (default: evaluation's)"})


def score(args, name: str, model: str, sampler: str | None, steps: int | None, guidance: float) -> dict:
    """Sample and score one setting (kept when already scored under --output_dir)."""
    out = args.output_dir / name
    if not (out / "metrics.json").is_file():
        config = EvaluationConfig(dataset=args.dataset, data_dir=args.data_dir, output_dir=str(out),
                                  classifier=args.classifier, num_samples=args.num_samples, batch_size=args.batch_size,
                                  sampler=sampler, num_inference_steps=steps, guidance_scale=guidance, overwrite=True)
        evaluate_model(model, config)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {"name": name, "model": model, "sampler": metrics["sampler_used"],
            "steps": metrics["num_inference_steps_used"], "seconds": metrics["sampling_time_s"],
            "samples": metrics["samples"], "floor": metrics["real_data_floor"],
            "reader": metrics.get("independent_reader")}


def settings(args, teacher: str) -> list[tuple[str, str, str | None, int | None, float]]:
    """(name, model, sampler, steps, guidance) of every row, the teacher's first."""
    rows = [(f"teacher_{sampler or 'saved'}{steps or ''}", teacher, sampler, steps, args.guidance_scale)
            for sampler, steps in TEACHER_SETTINGS if not (args.skip_ddpm and sampler == "ddpm")]
    for student in args.students:
        own = load_pipeline(student, "cpu").scheduler.config.original_inference_steps
        rows += [(f"{Path(student).name}_{steps}", student, None, steps, 1.0)
                 for steps in STUDENT_STEPS if steps <= own]
    return rows


def table(rows: list[dict], num_samples: int) -> str:
    conditional = "class_accuracy" in rows[0]["samples"]
    head = (f"| model | sampler | steps | seconds per {num_samples:,} | readable (reader) | recognisable | "
            "Fréchet distance | recall |" + (" requested class |" if conditional else ""))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        samples, floor, reader = row["samples"], row["floor"], row["reader"] or {}
        readable = f"{100 * reader['samples_readable']:.1f}%" if reader else "-"
        line = (f"| {row['name']} | {row['sampler']} | {row['steps']} | {row['seconds']:.2f} | {readable} | "
                f"{100 * samples['recognisable']:.1f}% | {samples['frechet_distance']:.2f} | {samples['recall']:.3f} |")
        if conditional:
            line += f" {100 * samples['class_accuracy']:.1f}% |"
        lines.append(line)
    floor, reader = rows[0]["floor"], rows[0]["reader"] or {}
    lines.append(f"| real images (floor) | | | | {100 * reader.get('real_readable', float('nan')):.1f}% | "
                 f"{100 * floor['recognisable']:.1f}% | {floor['frechet_distance']:.2f} | {floor['recall']:.3f} |"
                 + (" |" if conditional else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = HfArgumentParser(DistillationBenchmarkArguments, description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher", help="the teacher's folder")
    args, positional = parser.parse_args_into_dataclasses(args=argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    rows = [score(args, *setting) for setting in settings(args, positional.teacher)]
    text = f"{args.dataset}, {args.num_samples:,} samples per setting, on {cpu_description()}\n\n" + table(
        rows, args.num_samples)
    (args.output_dir / "results.md").write_text(text + "\n", encoding="utf-8")
    (args.output_dir / "results.json").write_text(json.dumps({"cpu": cpu_description(), "rows": rows}, indent=2)
                                                  + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
