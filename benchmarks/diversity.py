"""Wider samples at the same correctness? Sampling settings of a class-conditional model, side by side.

    python -m benchmarks.diversity MODEL --dataset persian --num_samples 920

Each setting is a set of sampling flags (`SamplingArguments`: guidance scale, a per-image range of scales,
guidance only in an interval of noise levels, initial-noise temperature, the sampler and its steps) scored by
`python -m evaluation` on the same seeds: the requested character read by the domain classifier and by the
independent reader, recall and precision against the real test split (the real floor: as many real training
images), Fréchet distance, and seconds per 1,000 images. `--settings "NAME:FLAGS" ...` replaces the default list.
Writes `OUTPUT_DIR/results.md` and `results.json`; each setting's full report is in `OUTPUT_DIR/<n>/`.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from benchmarks.provenance import made_on_line
from evaluation.evaluate_model import EvaluationConfig, check_config, evaluate_model

# The levers of issue 36, each against today's guidance 2 (the first row). The guidance interval
# (Kynkäänniemi et al. 2024, arXiv:2404.07724) is in sigma_t = sqrt((1 - alpha_bar) / alpha_bar), the noise level
# of images in [-1, 1]; (0.28, 5.42] is the paper's interval for EDM2-S on ImageNet-512, the others move its ends.
DEFAULT_SETTINGS = [
    "guidance 2 (today):--guidance_scale 2",
    "guidance 1 (none):--guidance_scale 1",
    "guidance 1.5:--guidance_scale 1.5",
    "guidance 2, interval (0.28, 5.42]:--guidance_scale 2 --guidance_interval 0.28 5.42",
    "guidance 3, interval (0.28, 5.42]:--guidance_scale 3 --guidance_interval 0.28 5.42",
    "guidance 3, interval (0.28, 2]:--guidance_scale 3 --guidance_interval 0.28 2",
    "guidance 1-3 per image:--guidance_scale 1 --guidance_scale_max 3",
    "guidance 2, noise x1.1:--guidance_scale 2 --noise_temperature 1.1",
    "guidance 2, DDPM 100 steps:--guidance_scale 2 --sampler ddpm --num_inference_steps 100",
]


@dataclass(kw_only=True)
class DiversityArguments:
    """The options of `python -m benchmarks.diversity MODEL`."""

    dataset: str = field(metadata={"help": "the model's labelled dataset (any train_ddpm.py --dataset)"})
    data_dir: str = field(default="data", metadata={"help": "where --dataset mnist/persian/glyphs are prepared"})
    num_samples: int = field(default=920, metadata={"help": "images per setting (equal numbers per class)"})
    settings: list[str] = field(default_factory=lambda: list(DEFAULT_SETTINGS), metadata={"help": (
        "NAME:FLAGS, the sampling flags of `python -m evaluation` for each row")})
    seed: int = field(default=0, metadata={"help": "the same seeds for every setting"})
    output_dir: Path = field(default=Path("runs/diversity"), metadata={"help": "where the results go"})


def setting_config(args: DiversityArguments, flags: str, output_dir: Path) -> EvaluationConfig:
    """The evaluation of one setting: the benchmark's data and seeds, the setting's sampling flags."""
    words = ["--dataset", args.dataset, "--data_dir", args.data_dir, "--num_samples", str(args.num_samples),
             "--seed", str(args.seed), "--output_dir", str(output_dir), "--overwrite", *shlex.split(flags)]
    (config,) = HfArgumentParser(EvaluationConfig).parse_args_into_dataclasses(args=words)
    if (problem := check_config(config)) is not None:
        raise SystemExit(f"--settings {flags!r}: {problem}")
    return config


def row(name: str, metrics: dict) -> dict:
    """What the table shows of one setting's metrics.json."""
    samples, reader = metrics["samples"], metrics["independent_reader"] or {}
    gaps = [real - sample for sample, real in zip(reader.get("per_class_requested", []),
                                                   reader.get("per_class_real", [])) if None not in (sample, real)]
    return {"setting": name, "requested_classifier": samples.get("class_accuracy"),
            "requested_reader": reader.get("requested_accuracy"), "recall": samples["recall"],
            "precision": samples["precision"], "frechet_distance": samples["frechet_distance"],
            "worst_class_gap": max(gaps) if gaps else None,
            "seconds_per_1000": 1000 * metrics["sampling_time_s"] / metrics["num_samples"]}


def table(rows: list[dict], floor: dict) -> str:
    """The markdown table, the real floor last."""
    def share(value):
        return "" if value is None else f"{100 * value:.1f}%"

    def points(value):
        return "" if value is None else f"{100 * value:.1f} pts"

    lines = ["| setting | requested (classifier) | requested (reader) | worst class below real (reader) | recall | "
             "precision | Fréchet distance | s / 1,000 |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['setting']} | {share(r['requested_classifier'])} | {share(r['requested_reader'])} | "
                     f"{points(r['worst_class_gap'])} | "
                     f"{r['recall']:.3f} | {r['precision']:.3f} | {r['frechet_distance']:.2f} | "
                     f"{r['seconds_per_1000']:.1f} |")
    lines.append(f"| real training images (floor) | {share(floor.get('class_accuracy'))} | | | {floor['recall']:.3f} "
                 f"| {floor['precision']:.3f} | {floor['frechet_distance']:.2f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = HfArgumentParser(DiversityArguments, description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a class-conditional model folder (train_ddpm.py) or Hub id")
    args, positional = parser.parse_args_into_dataclasses(args=argv)
    settings = [entry.partition(":") for entry in args.settings]
    if bad := [entry for entry, (_, colon, _) in zip(args.settings, settings) if not colon]:
        parser.error(f"--settings {bad[0]!r}: write NAME:FLAGS, e.g. 'interval:--guidance_interval 0.28 5.42'")
    configs = [setting_config(args, flags, args.output_dir / str(index))
               for index, (_, _, flags) in enumerate(settings)]  # every setting checked before the first runs
    rows, floor = [], None
    for (name, _, _), config in zip(settings, configs):
        metrics = evaluate_model(positional.model, config)
        rows.append(row(name, metrics))
        floor = metrics["real_data_floor"]
        print(f"{name}: reader {rows[-1]['requested_reader']}, recall {rows[-1]['recall']:.3f}", flush=True)
    text = "\n".join([table(rows, floor), "", made_on_line(2)])
    (args.output_dir / "results.md").write_text(text + "\n", encoding="utf-8")
    (args.output_dir / "results.json").write_text(json.dumps({"rows": rows, "real_data_floor": floor}, indent=2)
                                                  + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
