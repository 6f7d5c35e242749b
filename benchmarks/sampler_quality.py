"""Samplers by quality per second: every sampler at several step counts, scored with the metrics.

    python -m benchmarks.sampler_quality MODEL --dataset data/mnist --classifier classifiers/mnist

Each (sampler, steps) pair draws the same `--num_samples` seeded images (`python -m evaluation`'s sampling:
image i from seed i, the saved noise schedule) and is scored in the domain classifier's feature space against
the test split: Fréchet distance and recognisable share next to the real-data floor, precision, recall, and
the seconds the sampling took. `--float32_too` also scores the saved sampler without bf16 autocast, which
shows what the fast inference path costs in quality. Writes `OUTPUT_DIR/results.md` and `results.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from evaluation.evaluate_model import EvaluationConfig, evaluate_model
from pipelines.samplers import SAMPLERS

# Every sampler of a trained model (the student sampler takes only distilled students).
TEACHER_SAMPLERS = [name for name, sampler in SAMPLERS.items() if not sampler.for_students]


@dataclass
class SamplerQualityArguments:
    """The options of `python -m benchmarks.sampler_quality MODEL`."""

    dataset: str = field(metadata={"help": "the model's dataset (python -m evaluation --dataset)"})
    classifier: str = field(metadata={"help": "domain classifier folder"})
    samplers: list[str] = field(default_factory=lambda: TEACHER_SAMPLERS, metadata={
        "choices": list(SAMPLERS), "help": "samplers to score (keys of pipelines.samplers.SAMPLERS)"})
    num_inference_steps: list[int] = field(default_factory=lambda: [5, 10, 15, 20, 25], metadata={
        "aliases": ["--steps"], "help": "step counts to score each sampler at"})
    num_samples: int = field(default=1000, metadata={"help": "images per setting"})
    batch_size: int = field(default=100, metadata={"help": "images per pipeline call"})
    guidance_scale: float = field(default=1.0, metadata={"help": "classifier-free guidance (class-conditional)"})
    float32_too: bool = field(default=False, metadata={"help": "also score DPM-Solver++ 20 in float32"})
    output_dir: Path = field(default=Path("runs/sampler_quality"), metadata={"help": "where the settings go"})
    report_all: bool = field(default=False, metadata={
        "help": "report every setting scored so far under --output_dir, not only this call's"})


def parse_args(argv: list[str] | None = None) -> tuple[SamplerQualityArguments, str]:
    """The options and the model."""
    parser = HfArgumentParser(SamplerQualityArguments, description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a saved pipeline folder")
    args, positional = parser.parse_args_into_dataclasses(args=argv)
    return args, positional.model


def setting_name(sampler: str, steps: int, autocast: bool) -> str:
    """The folder of one setting under --output_dir."""
    return f"{sampler}_{steps}" + ("" if autocast else "_fp32")


def score(args: SamplerQualityArguments, model: str, sampler: str, steps: int, autocast: bool = True) -> dict:
    """Sample and score one setting (kept when already scored)."""
    out = args.output_dir / setting_name(sampler, steps, autocast)
    if not (out / "metrics.json").is_file():
        config = EvaluationConfig(dataset=args.dataset, output_dir=str(out), classifier=args.classifier,
                                  num_samples=args.num_samples, batch_size=args.batch_size, sampler=sampler,
                                  num_inference_steps=steps, guidance_scale=args.guidance_scale, autocast=autocast,
                                  overwrite=True)
        evaluate_model(model, config)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {"sampler": sampler, "steps": steps, "autocast": autocast, "seconds": metrics["sampling_time_s"],
            "samples": metrics["samples"], "floor": metrics["real_data_floor"]}


def table(rows: list[dict], num_samples: int) -> str:
    lines = [f"| sampler | steps | bf16 autocast | seconds for {num_samples:,} | Fréchet distance | recognisable | "
             "precision | recall |", "|---|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (r["sampler"], r["steps"], not r["autocast"])):
        samples, floor = row["samples"], row["floor"]
        lines.append(f"| {row['sampler']} | {row['steps']} | {'yes' if row['autocast'] else 'no'} | "
                     f"{row['seconds']:.1f} | {samples['frechet_distance']:.2f} ({floor['frechet_distance']:.2f}) | "
                     f"{100 * samples['recognisable']:.1f}% ({100 * floor['recognisable']:.1f}%) | "
                     f"{samples['precision']:.3f} | {samples['recall']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args, model = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    rows = [score(args, model, sampler, steps) for sampler in args.samplers for steps in args.num_inference_steps]
    if args.float32_too:
        rows.append(score(args, model, "dpm++", 20, autocast=False))
    if args.report_all:
        done = [folder.name for folder in args.output_dir.iterdir() if (folder / "metrics.json").is_file()]
        settings = [(sampler, int(steps), autocast) for sampler in SAMPLERS for steps in range(1, 1001)
                    for autocast in (True, False) if setting_name(sampler, steps, autocast) in done]
        rows = [score(args, model, *setting) for setting in settings]
    text = table(rows, args.num_samples)
    (args.output_dir / "results.md").write_text(text + "\n", encoding="utf-8")
    (args.output_dir / "results.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
