"""Do the generated characters teach a recogniser? Train on generated, test on real, and a memorisation check.

    python -m evaluation.usefulness runs/persian --dataset persian --per_class 200 --output_dir eval/usefulness

1. **Classification Accuracy Score** (Ravuri & Vinyals 2019, arXiv:1905.10887): the domain-classifier recipe
   (`evaluation.train_classifier`) is trained on `--per_class` generated images of each class alone, and its
   accuracy on the real test split is set beside the same recipe trained on as many real training images per
   class, and on all of them.
2. **Augmentation curve**: for small seeded per-class shares of the real training split (`--fractions`), the
   recipe on those alone against the same plus the generated images.
3. **Memorisation** (`evaluation.memorisation`): each sample's nearest training image, in pixels and in the
   features of the classifier trained on all real images, against the same for real test images.

Writes `usefulness.json`, `usefulness.md`, `usefulness.png` and `closest.png` to `--output_dir`, with the
`python -m pipelines.synthesize --kind characters` command that writes the generated set measured here as a
`datasets` dataset (the one way to make and share synthetic data).
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser

from data_prep.arguments import DataArguments
from evaluation.classifier import DomainFeatureExtractor
from evaluation.data import resolve_labelled, split_to_tensors
from evaluation.errors import EvaluationError
from evaluation.evaluate_model import load_model
from evaluation.memorisation import memorisation_check
from evaluation.output import write_folder
from evaluation.train_classifier import ClassifierTrainingConfig, fit_classifier, score_classifier
from evaluation.usefulness_report import write_report
from pipelines.sampling import SamplingArguments, draw, is_class_conditional


@dataclass(kw_only=True)
class UsefulnessConfig(DataArguments, SamplingArguments):
    """Settings of `python -m evaluation.usefulness MODEL`: the data set (`DataArguments`), how to sample
    (`SamplingArguments`, with guidance 2 by default) and the classifiers trained on the samples."""

    dataset: str = field(metadata={"help": "The model's labelled dataset, any train_ddpm.py --dataset; the "
                                           "classifiers are tested on its real test split."})
    output_dir: str | None = field(default=None, metadata={"help": (
        "Where usefulness.json, usefulness.md and the plots go; default eval/usefulness_<the model folder's name>.")})
    per_class: int = field(default=200, metadata={"help": "Generated images per class."})
    fractions: list[float] = field(default_factory=lambda: [0.02, 0.05, 0.1, 0.25], metadata={
        "help": "Per-class shares of the real training split for the augmentation curve (`--fractions 0`: skip it)."})
    guidance_scale: float = field(default=2.0, metadata={"help": "Classifier-free guidance of the samples."})
    batch_size: int = field(default=100, metadata={"help": "Images per pipeline call."})
    num_epochs: int = field(default=8, metadata={"help": "Epochs of each classifier (the recipe's default)."})
    seed: int = field(default=0, metadata={"help": "Seeds the samples (image i: seed + i), subsets and classifiers."})
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu", metadata={"help": "Torch device."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing --output_dir."})


def per_class_subset(labels: torch.Tensor, num_classes: int, seed: int, *, count: int | None = None,
                     fraction: float | None = None) -> torch.Tensor:
    """Indices of a seeded subset with `count` (or `fraction` of the) images of each class, at least one."""
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for label in range(num_classes):
        members = torch.nonzero(labels == label).flatten()
        take = count if count is not None else max(1, round(fraction * len(members)))
        picked.append(members[torch.randperm(len(members), generator=generator)[:take]])
    return torch.cat(picked).sort().values


def recipe(config: UsefulnessConfig, image_size: int) -> ClassifierTrainingConfig:
    """The domain-classifier recipe at its defaults, with this run's epochs and seed."""
    return ClassifierTrainingConfig(dataset=config.dataset, output_dir="-", image_size=image_size,
                                    num_epochs=config.num_epochs, seed=config.seed)


def fit_and_score(names, images, labels, test, classifier_recipe) -> dict:
    """Train the recipe on (images, labels) and score it on the real test split."""
    model, seconds = fit_classifier(names, images, labels, classifier_recipe, progress=False)
    scores = score_classifier(model, *test, len(names))
    return {"accuracy": scores["accuracy"], "per_class_accuracy": scores["per_class_accuracy"],
            "num_train": len(images), "training_time_s": seconds, "model": model}


def generate(model: str, names: list[str], image_size: int, config: UsefulnessConfig) -> tuple:
    """`per_class` seeded samples of each class, resized to the data's size: images (N, 1, S, S), labels (N,)."""
    pipeline = load_model(model, config)
    if not is_class_conditional(pipeline):
        raise EvaluationError(f"MODEL {model}: unconditional; training a recogniser needs a class-conditional model "
                              "(train_ddpm.py --class_conditional)")
    if pipeline.class_names not in (None, names):
        raise EvaluationError(f"MODEL {model} was trained on other classes than --dataset {config.dataset}")
    drawing = draw(pipeline, config.per_class * len(names), **config.draw_options(), batch_size=config.batch_size,
                   progress=True)
    images, labels = drawing.grayscale, drawing.labels
    return torch.nn.functional.interpolate(images, size=(image_size, image_size), mode="bilinear",
                                           antialias=True, align_corners=False).clamp(0, 1), labels


def augmentation_curve(names, real, generated, test, config, classifier_recipe) -> list[dict]:
    """Accuracy of real-only against real + generated, for each per-class share of the real training split."""
    rows = []
    for fraction in config.fractions:
        pick = per_class_subset(real[1], len(names), config.seed, fraction=fraction)
        alone = fit_and_score(names, real[0][pick], real[1][pick], test, classifier_recipe)
        mixed = fit_and_score(names, torch.cat([real[0][pick], generated[0]]), torch.cat([real[1][pick], generated[1]]),
                              test, classifier_recipe)
        rows.append({"fraction": fraction, "num_real": len(pick), "real_only": alone["accuracy"],
                     "real_plus_generated": mixed["accuracy"]})
    return rows


def synthesize_command(model: str, config: UsefulnessConfig, num_classes: int) -> str:
    """The `python -m pipelines.synthesize` command that writes the generated set measured here: character i of
    class i mod K from seed + i, as `generate` draws them."""
    words = ["python", "-m", "pipelines.synthesize", model, "--kind", "characters", "--count",
             str(config.per_class * num_classes), *config.as_flags(), "--output_dir", "DIR"]
    return shlex.join(words)


def usefulness(model: str, config: UsefulnessConfig) -> dict:
    """Runs the three measures and writes the report; returns what `usefulness.json` holds.

    Raises:
        `EvaluationError`: a bad model, dataset or output folder.
    """
    output_dir = Path(config.output_dir or f"eval/usefulness_{Path(model.rstrip('/')).name}")
    if output_dir.exists() and not config.overwrite:
        raise EvaluationError(f"--output_dir {output_dir} already exists; pass --overwrite to replace it")
    data = resolve_labelled(config.dataset, config.data_dir, config.seed)
    names, columns = data.class_names, (data.image_column, data.label_column)
    image_size = max(data.splits["train"][0][data.image_column].size)
    real = split_to_tensors(data.splits["train"], *columns, image_size)
    test = split_to_tensors(data.splits["test"], *columns, image_size)  # every accuracy is on this real split
    generated = generate(model, names, image_size, config)
    classifier_recipe = recipe(config, image_size)

    same = per_class_subset(real[1], len(names), config.seed, count=config.per_class)
    runs = {"generated only": fit_and_score(names, *generated, test, classifier_recipe),
            "real, same count": fit_and_score(names, real[0][same], real[1][same], test, classifier_recipe),
            "real, all": fit_and_score(names, *real, test, classifier_recipe)}
    features = DomainFeatureExtractor(runs["real, all"].pop("model"))
    memorisation = {
        "pixels": memorisation_check(generated[0].flatten(1), real[0].flatten(1), test[0].flatten(1)),
        "features": memorisation_check(features(generated[0])[0], features(real[0])[0], features(test[0])[0]),
    }
    results = {
        "model": str(model), "output_dir": str(output_dir), "class_names": names, "num_test": len(test[0]),
        "settings": {k: v for k, v in asdict(config).items() if k not in ("output_dir", "overwrite")},
        "train_on_generated": {name: {k: v for k, v in run.items() if k != "model"} for name, run in runs.items()},
        "augmentation": augmentation_curve(names, real, generated, test, config, classifier_recipe),
        "memorisation": memorisation,
        "synthesize_command": synthesize_command(model, config, len(names)),
    }
    write_folder(output_dir, lambda folder: write_report(folder, results, generated[0], real[0]))
    return results


def parse_args(argv: list[str] | None = None) -> tuple[UsefulnessConfig, str]:
    """Parse and check the command line; exits with one line on a bad argument.

    Returns:
        The config (with `--fractions 0` dropped, so an empty list skips the augmentation curve) and the model.
    """
    parser = HfArgumentParser(UsefulnessConfig, prog="python -m evaluation.usefulness",
                              description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="A class-conditional pipeline folder (train_ddpm.py --output_dir) or Hub id.")
    config, extra = parser.parse_args_into_dataclasses(args=argv)
    model = extra.model
    if config.per_class < 1 or config.num_epochs < 1 or config.batch_size < 1:
        parser.error("--per_class, --num_epochs and --batch_size must be at least 1")
    if any(not 0 <= f <= 1 for f in config.fractions):
        parser.error("--fractions must lie in (0, 1], or be 0 to skip the augmentation curve")
    config.fractions = [f for f in config.fractions if f > 0]
    if (problem := config.sampling_problem()) is not None:
        parser.error(problem)
    return config, model


def main(argv: list[str] | None = None) -> int:
    config, model = parse_args(argv)
    try:
        results = usefulness(model, config)
    except EvaluationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cas = results["train_on_generated"]
    print(json.dumps({name: round(run["accuracy"], 4) for name, run in cas.items()}))
    print(f"wrote {results['output_dir']}/usefulness.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
