"""Does a synthetic set of handwritten strings teach a recogniser to read real handwriting?

    python -m benchmarks.synthetic_strings MODEL --dataset persian --num_train 5000 --num_test 1000

The same recogniser (`evaluation.string_recogniser`, a seeded CRNN + CTC) is trained on strings composed from
the model's digits (`synthesis`, as `python -m pipelines.synthesize --kind strings` makes them) and on the
same texts composed the same way from the real training split's digits, and both read strings composed from the
**real test split's** digits, which the generator never saw: string accuracy and character error rate. Then,
with real digits scarce (`--fractions` of each digit's training images), real strings alone against the same
plus the synthetic ones. Writes `OUTPUT_DIR/results.md`, `results.json` and `reads.png` (test strings and what
each recogniser read).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch
from transformers import HfArgumentParser

from benchmarks.provenance import cpu_description
from data_prep.arguments import DataArguments
from evaluation.data import resolve_labelled, split_to_tensors
from evaluation.string_recogniser import RecogniserConfig, read, string_scores, train_recogniser
from evaluation.usefulness import per_class_subset
from pipelines.sampling import SamplingArguments, load_pipeline
from synthesis.compose import FORMATS, PERSIAN_DIGITS
from synthesis.generated import model_glyphs, real_glyphs, string_shard

SHARD = 1000


@dataclass(kw_only=True)
class SyntheticStringsArguments(DataArguments, SamplingArguments):
    """The options of `python -m benchmarks.synthetic_strings MODEL`: the data (`DataArguments`), how the model's
    digits are drawn (`SamplingArguments`, guidance 2 by default) and the recognisers."""

    num_train: int = field(default=5000, metadata={"help": "training strings of each kind"})
    num_test: int = field(default=1000, metadata={"help": "test strings, from the real test split's digits"})
    fractions: list[float] = field(default_factory=lambda: [0.05, 0.1], metadata={"help": (
        "shares of each digit's real training images for the scarce-data comparison (`--fractions 0`: skip it)")})
    guidance_scale: float = field(default=2.0, metadata={"help": "guidance of the model's digits"})
    epochs: int = field(default=10, metadata={"help": "recogniser epochs"})
    seed: int = field(default=0, metadata={"help": "seeds the texts, the digits and the recognisers"})
    output_dir: Path = field(default=Path("runs/synthetic_strings"), metadata={"help": "where the results go"})


def strings(glyphs, count: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """`count` composed strings: images (40, W) uint8 and their ASCII texts."""
    images, texts = [], []
    for shard in range(0, count, SHARD):
        part = string_shard(glyphs, list(FORMATS), seed, shard // SHARD, min(SHARD, count - shard))
        images += [np.asarray(image) for image in part["image"]]
        texts += list(part["text_ascii"])
    return images, texts


def digits_of(split, columns, names) -> tuple[np.ndarray, np.ndarray]:
    """The digit images (N, 28, 28) uint8 and class indices of a split (its letters left out)."""
    images, labels = split_to_tensors(split, *columns, 28)
    keep = np.isin(labels.numpy(), [names.index(d) for d in PERSIAN_DIGITS])
    return (images[keep, 0] * 255).round().byte().numpy(), labels.numpy()[keep]


def picture(images, truth, reads: dict[str, list[str]], path: Path, count: int = 12) -> None:
    """Test strings, each with what every recogniser read (ASCII, a mark where it is wrong)."""
    rows = []
    for i in range(count):
        image = PIL.Image.fromarray(images[i]).convert("RGB")
        lines = [f"truth {truth[i]}"] + [f"{name}: {texts[i]}{'' if texts[i] == truth[i] else '  x'}"
                                         for name, texts in reads.items()]
        panel = PIL.Image.new("RGB", (max(image.width, 260), image.height + 12 * len(lines)), "white")
        panel.paste(image, (0, 0))
        draw = PIL.ImageDraw.Draw(panel)
        for j, line in enumerate(lines):
            draw.text((2, image.height + 12 * j), line, fill="black")
        rows.append(panel)
    sheet = PIL.Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height
    sheet.save(path)


def main(argv: list[str] | None = None) -> None:
    parser = HfArgumentParser(SyntheticStringsArguments, description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a class-conditional model of Persian digits (a student is fastest)")
    args, positional = parser.parse_args_into_dataclasses(args=argv)
    if (problem := args.sampling_problem()) is not None:
        parser.error(problem)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    data = resolve_labelled(args.dataset, args.data_dir, args.seed)
    columns, names = (data.image_column, data.label_column), data.class_names
    train_digits, test_digits = digits_of(data.splits["train"], columns, names), digits_of(data.splits["test"],
                                                                                           columns, names)
    pipeline = load_pipeline(positional.model)
    sampling = {**args.draw_options(), "batch_size": 500}
    start = time.perf_counter()
    synthetic = strings(model_glyphs(pipeline, sampling), args.num_train, args.seed)
    per_minute = args.num_train / (time.perf_counter() - start) * 60
    real = strings(real_glyphs(*train_digits, names, args.seed), args.num_train, args.seed)  # the same texts
    test = strings(real_glyphs(*test_digits, names, args.seed), args.num_test, args.seed + 1)
    config = RecogniserConfig(epochs=args.epochs, seed=args.seed)

    def score(images, texts) -> tuple[dict, list[str]]:
        model, seconds = train_recogniser(images, texts, config)
        reads = read(model, test[0])
        return {**string_scores(reads, test[1]), "num_train": len(images), "training_time_s": round(seconds, 1)}, reads

    rows, reads = {}, {}
    rows["synthetic"], reads["synthetic"] = score(*synthetic)
    rows["real"], reads["real"] = score(*real)
    for fraction in [f for f in args.fractions if f > 0]:
        pick = per_class_subset(torch.as_tensor(train_digits[1]), len(names), args.seed, fraction=fraction).numpy()
        scarce = strings(real_glyphs(train_digits[0][pick], train_digits[1][pick], names, args.seed),
                         args.num_train, args.seed)
        rows[f"real {fraction:.0%}"], _ = score(*scarce)
        rows[f"real {fraction:.0%} + synthetic"], _ = score(scarce[0] + synthetic[0], scarce[1] + synthetic[1])
    picture(test[0], test[1], reads, args.output_dir / "reads.png")
    lines = [f"{args.dataset}: {args.num_train:,} training strings of each kind, {args.num_test:,} test strings from "
             f"the real test split's digits; synthetic strings made at {per_minute:,.0f} per minute; on "
             f"{cpu_description()}", "", "| trained on | strings | string accuracy | character error rate | "
             "training s |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {row['num_train']:,} | {100 * row['string_accuracy']:.1f}% | "
              f"{100 * row['character_error_rate']:.2f}% | {row['training_time_s']} |" for name, row in rows.items()]
    text = "\n".join(lines)
    (args.output_dir / "results.md").write_text(text + "\n", encoding="utf-8")
    (args.output_dir / "results.json").write_text(json.dumps({"cpu": cpu_description(), "strings_per_minute":
                                                              per_minute, "rows": rows}, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
