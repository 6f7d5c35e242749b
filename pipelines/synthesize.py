"""Synthetic handwritten data from a class-conditional model: digit strings as forms carry them, or characters.

    python -m pipelines.synthesize MODEL --kind strings --count 10000 --output_dir data/synthetic-strings
    python -m pipelines.synthesize MODEL --kind characters --count 4600 --output_dir data/synthetic-characters

`--kind strings` writes columns `image` (grayscale, 40 px high), `text` (Persian digits and separators),
`text_ascii` (the same in ASCII digits) and `boxes` (one [x0, y0, x1, y1] pixel box per character of `text`,
left to right); `--kind characters` writes `image` and `label` (the model's class names), equal numbers per
class. Either is a `DatasetDict` with one split, `train`, that `datasets.load_from_disk(DIR)` opens, with a card
that says it is synthetic and how it was made; `--push_to_hub --hub_model_id OWNER/NAME` also uploads it as a
Hub dataset. It is written in shards as it goes: a stopped run goes on where it stopped, and the same settings
give the same set.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from data_prep.push import push_dataset
from pipelines.generate import OneLineErrorParser
from pipelines.sampling import ModelLoadError, SamplingArguments, is_class_conditional, load_pipeline
from sharing import HubArguments
from synthesis.compose import FORMATS, Jitter
from synthesis.generated import character_shard, missing_digits, model_glyphs, string_shard
from synthesis.writer import write_in_shards

KINDS = ("strings", "characters")
# Guidance only where sigma_t is in (0.28, 5.42] (arXiv:2404.07724's interval): on the 30-minute Persian model,
# against guidance at every step, recall 0.702 against 0.652, the independent reader's requested character 91.0%
# against 90.3% (the domain classifier's 91.6% against 93.5%), Fréchet distance 20.4 against 21.4, and fewer UNet
# passes (docs/synthesis.md, "Diversity").
GUIDANCE_INTERVAL = [0.28, 5.42]


@dataclass(kw_only=True)
class SynthesizeArguments(SamplingArguments, HubArguments):
    """The options of `python -m pipelines.synthesize MODEL` (the model is the one positional argument)."""

    output_dir: str = field(metadata={"help": "where the data set goes (a DatasetDict folder)"})
    kind: str = field(default="strings", metadata={"choices": KINDS, "help": (
        "`strings`: handwritten digit strings with per-character boxes; `characters`: isolated characters")})
    count: int = field(default=1000, metadata={"help": "strings or characters to make"})
    formats: list[str] = field(default_factory=lambda: list(FORMATS), metadata={"choices": list(FORMATS), "help": (
        "string formats, drawn at random per string (postal codes 5-5, mobile numbers, national ids, dates, "
        "amounts)")})
    guidance_scale: float = field(default=2.0, metadata={"help": (
        "classifier-free guidance of the characters (a distilled student: its own, folded in)")})
    guidance_interval: Optional[list[float]] = field(default_factory=lambda: list(GUIDANCE_INTERVAL), metadata={
        "help": ("LOW HIGH: guide only the steps whose sigma_t lies in (LOW, HIGH] (default 0.28 5.42: wider "
                 "samples, as correct; a student guides by itself and ignores it)")})
    shard_size: int = field(default=1000, metadata={"help": "examples per shard (what a stop can lose)"})
    batch_size: int = field(default=500, metadata={"help": "images per pipeline call"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing --output_dir"})


def card_text(model: str, args: SynthesizeArguments, count: int) -> str:
    """The data set's card: synthetic, from which model and settings, and what has been measured of it."""
    what = ("handwritten Persian digit strings, composed from generated digits" if args.kind == "strings"
            else "isolated handwritten Persian characters")
    settings = {key: value for key, value in asdict(args).items() if key not in ("push_to_hub", "hub_private_repo")}
    lines = [
        "---", "tags:", "- synthetic", "- handwriting", "- persian", "---", "",
        f"# Synthetic {what}", "",
        f"**Every image here is synthetic**: drawn by the diffusion model `{model}` with the persian-ddpm project "
        f"(`python -m pipelines.synthesize`), {count:,} examples; no image is a person's handwriting.", "",
    ]
    if args.kind == "strings":
        lines += [
            "Columns: `image` (grayscale, white ink on black), `text` (Persian digits and separators), `text_ascii` "
            "(the same with ASCII digits), `boxes` (one `[x0, y0, x1, y1]` pixel box per character of `text`, left "
            "to right, x1 and y1 exclusive). Each digit is one sample of the model; separators are drawn strokes. "
            f"Formats: {', '.join(args.formats)}. Layout jitter: `{Jitter()}`.", ""]
    else:
        lines += ["Columns: `image` (grayscale, white ink on black) and `label` (the requested character).", ""]
    lines += [
        "## Settings", "", "```json", json.dumps(settings, indent=2, ensure_ascii=False), "```", "",
        "## Evidence", "",
        "How well a recogniser trained on this set reads real handwriting has not been measured for this set; "
        "see the project's docs/synthesis.md for the measurements of sets made the same way.", "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = OneLineErrorParser(SynthesizeArguments, prog="python -m pipelines.synthesize",
                                description="Write a synthetic handwritten data set drawn by a class-conditional "
                                            "model.")
    parser.add_argument("model", help="a class-conditional folder saved by train_ddpm.py (or a student), or a Hub id")
    args, positional = parser.parse_args_into_dataclasses(args=argv)
    for problem in (args.sampling_problem(), args.hub_problem()):
        if problem is not None:
            parser.error(problem)
    if args.count < 1 or args.shard_size < 1 or args.batch_size < 1:
        parser.error("--count, --shard_size and --batch_size must be at least 1")
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not args.overwrite:
        parser.error(f"--output_dir {output_dir} already exists; pass --overwrite to replace it")
    try:
        pipeline = load_pipeline(positional.model)
    except ModelLoadError as error:
        parser.error(str(error))
    if getattr(pipeline, "folded_guidance_scale", None) is not None and args.guidance_interval == GUIDANCE_INTERVAL:
        args.guidance_interval = None  # the default interval is a teacher's: a student's guidance is folded in
    if not is_class_conditional(pipeline):
        parser.error(f"model {positional.model}: unconditional; synthetic labelled data needs a class-conditional "
                     "model (train_ddpm.py --class_conditional)")
    if args.kind == "strings" and (missing := missing_digits(pipeline.class_names)):
        parser.error(f"model {positional.model}: cannot draw the Persian digits {' '.join(missing)}; --kind strings "
                     "needs a model of Persian digits (--dataset persian)")
    sampling = {**args.draw_options(), "batch_size": args.batch_size}
    if args.kind == "strings":
        glyphs = model_glyphs(pipeline, sampling)

        def make_shard(index, size):
            return string_shard(glyphs, args.formats, args.seed, index, size)
    else:
        def make_shard(index, size):
            return character_shard(pipeline, sampling, index, size, args.shard_size)
    settings = {"model": positional.model, **{k: v for k, v in asdict(args).items()
                                              if k not in ("output_dir", "overwrite", "push_to_hub", "hub_model_id",
                                                           "hub_private_repo")}}
    try:
        written = write_in_shards(output_dir, args.count, args.shard_size, settings, make_shard,
                                  card_text(positional.model, args, args.count))
    except ValueError as error:  # a sampler or step count the model cannot take
        parser.error(str(error))
    print(f"wrote {output_dir}: {written['train'].num_rows:,} {args.kind}", file=sys.stderr)
    if args.push_to_hub:
        print(push_dataset(output_dir, args.hub_model_id, private=args.hub_private_repo))


if __name__ == "__main__":
    main()
