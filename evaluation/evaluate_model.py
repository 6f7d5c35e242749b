"""Score a trained diffusion model: sample, extract classifier features, compare with real data."""

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from data_prep.arguments import DataArguments
from evaluation.classifier import load_feature_extractor
from evaluation.data import resolve_labelled
from evaluation.errors import EvaluationError
from evaluation.memorisation import memorisation_check
from evaluation.metrics import load_metric
from evaluation.output import write_folder
from evaluation.reader import READER_MIN_TRAIN_STEPS, independent_scores, load_reader, readable
from evaluation.report import write_report
from evaluation.scores import distribution_scores, split_features
from pipelines import CharacterDDPMPipeline, image_grid
from pipelines.sampling import ModelLoadError, SamplingArguments, draw, is_class_conditional, load_pipeline


@dataclass(kw_only=True)
class EvaluationConfig(DataArguments, SamplingArguments):
    """Settings of `python -m evaluation MODEL` (the CLI is generated from it): the data set (`DataArguments`),
    how to sample (`SamplingArguments`: `--sampler`, `--num_inference_steps`, `--guidance_scale`, `--seed`,
    `--autocast`) and how to score."""

    dataset: str = field(
        metadata={"help": "The model's dataset, any train_ddpm.py --dataset: mnist, persian or glyphs (under "
                          "--data_dir), a save_to_disk folder, an image folder (one sub-folder per class) or a Hub id."}
    )
    output_dir: str | None = field(default=None, metadata={"help": (
        "Where metrics.json, the per-class table and a sample grid go; default eval/<the model folder's name>.")})
    classifier: str | None = field(
        default=None,
        metadata={"help": "Domain classifier folder (python -m evaluation.train_classifier); default "
                          "classifiers/<dataset>, trained there with that command's defaults on first use."},
    )
    reader: str | None = field(default=None, metadata={"help": (
        "The independent reader (python -m evaluation.train_classifier --independent): it learned from half of the "
        "test split, and reads the samples and the other half, real images neither it nor the generator saw; "
        "default classifiers/<dataset>_reader, trained there on first use.")})
    independent_reader: bool = field(default=True, metadata={"help": (
        "Score with the independent reader too; --no_independent_reader skips it.")})
    num_samples: int = field(default=1000, metadata={"help": "Images to sample (equal numbers per class)."})
    batch_size: int = field(default=100, metadata={"help": "Images per pipeline call."})
    seed: int = field(
        default=0,
        metadata={"help": "Image i is drawn with seed + i; also seeds the real subset and the test split held out "
                          "of data without one (as train_ddpm.py --seed does)."},
    )
    kid_subset_size: int = field(default=1000, metadata={"help": "Subset size of the kernel distance."})
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu", metadata={"help": "Torch device."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing --output_dir."})


def check_config(config: EvaluationConfig) -> str | None:
    """The first impossible setting, as a sentence, or None."""
    # The distribution metrics need at least 2 vectors per set (and KID subsets of at least 2).
    minimums = {"num_samples": 2, "batch_size": 1, "kid_subset_size": 2}
    for name, minimum in minimums.items():
        value = getattr(config, name)
        if value < minimum:
            return f"--{name} {value}: must be at least {minimum}"
    return config.sampling_problem()


def recognisable_share(logits: torch.Tensor) -> float:
    """Share of images whose most likely class has softmax probability >= `evaluation.reader.READABLE_CONFIDENCE` (0.9).

    "How many samples are digits at all", which the distribution distances blur together with style: a
    plain count, so written here rather than as an `evaluate` module.
    """
    return readable(logits).float().mean().item()


def load_model(model: str, config: EvaluationConfig) -> CharacterDDPMPipeline:
    """The model as a `CharacterDDPMPipeline` on `config.device` (`pipelines.sampling.load_pipeline`)."""
    try:
        return load_pipeline(model, config.device)
    except ModelLoadError as error:
        raise EvaluationError(str(error)) from None


def default_output_dir(model: str) -> str:
    """eval/<name>: the last component of the model's folder or Hub id."""
    return str(Path("eval", Path(model.rstrip("/")).name or "model"))


def default_classifier(dataset: str, data_dir: str, seed: int, independent: bool = False) -> str:
    """classifiers/<dataset> (or, `independent`, the reader classifiers/<dataset>_reader), trained there first with
    `python -m evaluation.train_classifier` when it is not there yet, so that `python -m evaluation MODEL --dataset D`
    needs no other step.

    Raises:
        `EvaluationError`: the dataset cannot be used to train one (no labels, not found).
    """
    name = Path(dataset.rstrip("/")).name
    folder = Path("classifiers", f"{name}_reader" if independent else name)
    if (folder / "config.json").is_file():
        return str(folder)
    from evaluation.train_classifier import ClassifierTrainingConfig, train_classifier  # only when needed

    what, flags = ("independent reader", f" --independent --min_train_steps {READER_MIN_TRAIN_STEPS}") if independent \
        else ("classifier", "")
    source = f"half of the test split of --dataset {dataset}" if independent else f"--dataset {dataset}"
    print(f"no {what} at {folder}: training one on {source} (as `python -m evaluation.train_classifier --dataset "
          f"{dataset}{flags} --output_dir {folder}`; minutes on a CPU)", file=sys.stderr)
    options = {"independent": True, "min_train_steps": READER_MIN_TRAIN_STEPS} if independent else {}
    results = train_classifier(ClassifierTrainingConfig(dataset=dataset, output_dir=str(folder), data_dir=data_dir,
                                                        seed=seed, overwrite=folder.exists(), **options))
    print(f"{what} saved to {folder}: test accuracy {results['test_accuracy']:.2%}", file=sys.stderr)
    return str(folder)


def per_class_rows(names, test_labels, test_predictions, sample_predictions, class_scores) -> list[dict]:
    """One row per class: real vs sample shares, and for class-conditional models the recognition rate."""
    num_classes = len(names)
    real_share = torch.bincount(test_labels, minlength=num_classes) / len(test_labels)
    sample_share = torch.bincount(sample_predictions, minlength=num_classes) / len(sample_predictions)
    rows = []
    for index, name in enumerate(names):
        in_class = test_labels == index
        row = {
            "index": index,
            "class": name,
            "real_share": real_share[index].item(),
            "sample_share": sample_share[index].item(),
            "classifier_test_accuracy": (test_predictions[in_class] == index).float().mean().item()
            if in_class.any()
            else None,
        }
        if class_scores is not None:
            confused = class_scores["most_confused_with"][index]
            row.update(
                requested=class_scores["per_class_count"][index],
                recognised=class_scores["per_class_accuracy"][index],
                most_confused_with=None if confused is None else names[confused],
            )
        rows.append(row)
    return rows


def add_class_accuracy(samples: dict, floor: dict, sample_logits, requested, test_logits, test_labels,
                       num_classes: int) -> dict:
    """The share of samples recognised as the class requested (and of real test images as their own class);
    returns the samples' full `class_accuracy` scores."""
    accuracy = load_metric("class_accuracy")
    class_scores = accuracy.compute(predictions=sample_logits.argmax(1), references=requested, num_classes=num_classes)
    samples["class_accuracy"] = class_scores["accuracy"]
    floor["class_accuracy"] = accuracy.compute(
        predictions=test_logits.argmax(1), references=test_labels, num_classes=num_classes)["accuracy"]
    return class_scores


def load_inputs(model: str, config: EvaluationConfig):
    """The dataset, the classifier (its folder and feature extractor) and the pipeline, checked to agree.

    Returns:
        `tuple`: `(ResolvedDataset, str, DomainFeatureExtractor, CharacterDDPMPipeline)`.

    Raises:
        `EvaluationError`: one of them is missing, or they were made for different classes.
    """
    data = resolve_labelled(config.dataset, config.data_dir, config.seed)
    classifier_dir = config.classifier or default_classifier(config.dataset, config.data_dir, config.seed)
    extractor = load_feature_extractor(classifier_dir, device=config.device)
    if extractor.class_names != data.class_names:
        raise EvaluationError(
            f"--classifier {classifier_dir} was trained on other classes than --dataset {config.dataset}"
        )
    pipeline = load_model(model, config)
    if is_class_conditional(pipeline) and pipeline.class_names not in (None, data.class_names):
        raise EvaluationError(f"MODEL {model} was trained on other classes than --dataset {config.dataset}")
    return data, classifier_dir, extractor, pipeline


def load_independent_reader(config: EvaluationConfig, class_names: list[str]):
    """The independent reader's folder, extractor and cut of the test split, or None with --no_independent_reader."""
    if not config.independent_reader:
        return None
    folder = config.reader or default_classifier(config.dataset, config.data_dir, config.seed, independent=True)
    return (folder, *load_reader(folder, class_names, config.device))


def evaluate_model(model: str, config: EvaluationConfig) -> dict:
    """Samples from `model`, scores the samples against the test split, and writes the report.

    The real-data floor scores `num_samples` train images (seeded) in place of samples, against the same
    test split: the score a perfect generator would get at this sample size.

    Args:
        model (`str`): a saved pipeline folder (or Hub id) from `train_ddpm.py`.
        config (`EvaluationConfig`): the settings.

    Returns:
        `dict`: the contents of metrics.json ("samples", "real_data_floor", "per_class", settings, timings).

    Raises:
        `EvaluationError`: bad model, dataset, classifier or output folder.
    """
    output_dir = Path(config.output_dir or default_output_dir(model))
    if output_dir.exists() and not config.overwrite:
        raise EvaluationError(f"--output_dir {output_dir} already exists; pass --overwrite to replace it")
    data, classifier_dir, extractor, pipeline = load_inputs(model, config)
    reader = load_independent_reader(config, data.class_names)  # before sampling: a bad reader fails fast
    names, columns = data.class_names, (data.image_column, data.label_column)
    conditional = is_class_conditional(pipeline)

    test_features, test_logits, test_labels = split_features(extractor, data.splits["test"], *columns)
    train = data.splits["train"].shuffle(seed=config.seed)
    floor_split = train.select(range(min(config.num_samples, len(train))))
    floor_features, floor_logits, _ = split_features(extractor, floor_split, *columns)

    drawing = draw(pipeline, config.num_samples, **config.draw_options(), batch_size=config.batch_size,
                   progress=True)
    images, requested, sampling_time = drawing.grayscale, drawing.labels, drawing.seconds
    sample_features, sample_logits = extractor(images)  # (N, D), (N, K)

    options = {"kid_subset_size": config.kid_subset_size, "seed": config.seed}
    samples = distribution_scores(test_features, sample_features, **options)
    floor = distribution_scores(test_features, floor_features, **options)
    samples["recognisable"], floor["recognisable"] = recognisable_share(sample_logits), recognisable_share(floor_logits)
    class_scores = None
    if conditional:  # the requested class recognised, and for real test images their own class
        class_scores = add_class_accuracy(
            samples, floor, sample_logits, requested, test_logits, test_labels, len(names)
        )
    independent = None
    if reader is not None:
        independent = {"reader": reader[0], **independent_scores(reader[1], reader[2], data.splits["test"], *columns,
                                                                 images, requested, len(names))}
    train_features = split_features(extractor, data.splits["train"], *columns)[0]
    per_class = per_class_rows(names, test_labels, test_logits.argmax(1), sample_logits.argmax(1), class_scores)
    if independent is not None and "per_class_requested" in independent:
        pairs = zip(independent["per_class_requested"], independent["per_class_real"])
        for row, (by_reader, on_real) in zip(per_class, pairs):
            row.update(reader_recognised=by_reader, reader_on_real=on_real)
    metrics = {
        **{key: value for key, value in asdict(config).items() if key not in ("output_dir", "overwrite")},
        "model": str(model),
        "output_dir": str(output_dir),
        "class_conditional": conditional,
        "classifier": str(classifier_dir),
        "scheduler": type(pipeline.scheduler).__name__,  # the saved scheduler's class
        "sampler_used": drawing.sampler,  # the sampler's title, saved or chosen
        "num_inference_steps_used": drawing.num_inference_steps,
        "num_test_images": len(test_features),
        "num_floor_images": len(floor_features),
        "sampling_time_s": sampling_time,
        "images_per_s": config.num_samples / sampling_time,
        "samples": samples,
        "real_data_floor": floor,
        # read by a classifier that never saw the generator's training images (evaluation/reader.py)
        "independent_reader": independent,
        "per_class": per_class,
        # near-copies of training images, in the classifier's features (evaluation/memorisation.py)
        "memorisation": memorisation_check(sample_features, train_features, test_features),
    }
    # The first images; for a class-conditional model one column per class (requests cycle through them).
    columns = len(names) if conditional else 10
    grid = image_grid(images[: 10 * columns], cols=columns)
    write_folder(output_dir, lambda folder: write_report(folder, metrics, per_class, grid))
    return metrics
