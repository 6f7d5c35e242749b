"""Train the domain classifier that the sample-quality metrics use as their feature space.

    python -m evaluation.train_classifier --dataset mnist --output_dir classifiers/mnist

The whole train split is decoded into one tensor; each step draws a batch, applies a light random
affine jitter (no flips: a mirrored character is another character or none), and takes an AdamW step
under a one-cycle learning-rate schedule. The test split is scored at the end, and the model is saved
with `save_pretrained` together with a model card holding the test accuracy and the most confused
pairs.
"""

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import HfArgumentParser

from data_prep.arguments import DataArguments
from evaluation.classifier import DomainFeatureExtractor, build_classifier
from evaluation.classifier_card import most_confused_pairs, write_classifier_card
from evaluation.data import reader_split, resolve_labelled, split_to_tensors
from evaluation.errors import EvaluationError
from evaluation.metrics import load_metric
from evaluation.output import write_folder
from sharing import HubArguments, PushError, push_folder


@dataclass(kw_only=True)
class ClassifierTrainingConfig(DataArguments):
    """Everything that decides how the domain classifier is trained (the CLI is generated from it); `--dataset`
    and `--data_dir` are the shared `DataArguments`."""

    dataset: str = field(
        metadata={"help": "Any train_ddpm.py --dataset with labels: mnist, persian or glyphs (under --data_dir), a "
                          "save_to_disk folder, an image folder (one sub-folder per class) or a Hub dataset id."}
    )
    output_dir: str = field(metadata={"help": "Where the classifier, its card and results are saved."})
    image_size: int | None = field(
        default=None, metadata={"help": "Input size in pixels; defaults to the dataset's image size."}
    )
    embedding_size: int = field(default=32, metadata={"help": "Channels of the ResNet stem."})
    hidden_sizes: list[int] = field(
        default_factory=lambda: [32, 64, 128],
        metadata={"help": "Channels per ResNet stage; the last is the feature dimension of the metrics."},
    )
    depths: list[int] = field(default_factory=lambda: [1, 1, 1], metadata={"help": "Basic blocks per stage."})
    num_epochs: int = field(default=8, metadata={"help": "Passes over the train split."})
    batch_size: int = field(default=128, metadata={"help": "Images per optimizer step."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak learning rate of the one-cycle schedule."})
    weight_decay: float = field(default=0.05, metadata={"help": "AdamW weight decay."})
    max_shift: float = field(default=2.0, metadata={"help": "Largest random shift, in pixels (augmentation)."})
    max_rotation: float = field(default=10.0, metadata={"help": "Largest random rotation, in degrees."})
    max_scale: float = field(default=0.1, metadata={"help": "Largest random relative change of scale."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on the first N train images only (quick runs)."}
    )
    independent: bool = field(default=False, metadata={"help": (
        "Make the independent reader of `python -m evaluation`: train on one half of the TEST split (cut class by "
        "class with --seed; images that a generator, trained on the train split, never saw) and test on the other "
        "half, which evaluation then reads as the real images to compare samples with.")})
    min_train_steps: int = field(default=0, metadata={"help": (
        "At least this many optimizer steps: a small training set (an --independent reader's half of the test "
        "split) gets more epochs.")})
    seed: int = field(
        default=0,
        metadata={"help": "Seed of initialisation, batch order and augmentation, and of the test split held out of "
                          "data without one (as train_ddpm.py --seed does)."},
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing --output_dir."})


def random_affine(images: torch.Tensor, config: ClassifierTrainingConfig, generator: torch.Generator) -> torch.Tensor:
    """Random rotation, scale and shift of each image (B, 1, H, W), filling with black (the background)."""
    batch, _, height, _ = images.shape
    uniform = torch.rand(batch, 4, generator=generator) * 2 - 1  # (B, 4) in [-1, 1]
    angle = uniform[:, 0] * math.radians(config.max_rotation)
    scale = 1 + uniform[:, 1] * config.max_scale
    theta = torch.zeros(batch, 2, 3)  # affine maps of normalised coordinates [-1, 1]
    theta[:, 0, 0], theta[:, 0, 1] = scale * torch.cos(angle), -scale * torch.sin(angle)
    theta[:, 1, 0], theta[:, 1, 1] = scale * torch.sin(angle), scale * torch.cos(angle)
    theta[:, :, 2] = uniform[:, 2:] * (2 * config.max_shift / height)  # pixels -> normalised units
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def load_tensors(config: ClassifierTrainingConfig) -> tuple[list[str], int, tuple, tuple]:
    """Resolves `config.dataset` and decodes the images to train and to test on: the train split (at most
    `max_train_samples`) and the test split, or with `independent` the two halves of the test split
    (`evaluation.data.reader_split`).

    Returns:
        `tuple`: the class names; the image size S (`config.image_size`, or the first image's larger side);
        train images (N, 1, S, S) in [0, 1] and labels (N,); test images and labels.
    """
    data = resolve_labelled(config.dataset, config.data_dir, config.seed)
    columns = (data.image_column, data.label_column)
    train = data.splits["train"]
    if config.max_train_samples is not None and not config.independent:
        train = train.select(range(min(config.max_train_samples, len(train))))
    image_size = config.image_size or max(train[0][data.image_column].size)
    test = split_to_tensors(data.splits["test"], *columns, image_size)
    if not config.independent:
        return data.class_names, image_size, split_to_tensors(train, *columns, image_size), test
    reader, held_out = reader_split(test[1], config.seed)
    reader = reader[: config.max_train_samples]  # None keeps all
    return data.class_names, image_size, (test[0][reader], test[1][reader]), (test[0][held_out], test[1][held_out])


def fit_classifier(names: list[str], images: torch.Tensor, labels: torch.Tensor,
                   config: ClassifierTrainingConfig, progress: bool = True):
    """Trains the domain-classifier recipe on images (N, 1, S, S) in [0, 1] with labels (N,).

    AdamW under a one-cycle schedule, each batch with a light random affine jitter (no flips).

    Returns:
        `tuple`: the `ResNetForImageClassification` (in eval mode) and the training time in seconds.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = build_classifier(names, config.image_size, config.embedding_size, config.hidden_sizes, config.depths)
    steps_per_epoch = max(1, len(images) // config.batch_size)
    num_epochs = max(config.num_epochs, math.ceil(config.min_train_steps / steps_per_epoch))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=num_epochs * steps_per_epoch
    )
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=num_epochs * steps_per_epoch, desc="training classifier", unit="step", disable=not progress)
    for _ in range(num_epochs):
        order = torch.randperm(len(images), generator=generator)
        for step in range(steps_per_epoch):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            pixel_values = random_affine(images[batch], config, generator) * 2 - 1  # [0, 1] -> [-1, 1]
            loss = model(pixel_values=pixel_values, labels=labels[batch]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return model.eval(), time.perf_counter() - start


def score_classifier(model, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """The `class_accuracy` metric of a classifier on labelled images: accuracy, per class, confusion."""
    _, logits = DomainFeatureExtractor(model)(images)  # (N, K)
    return load_metric("class_accuracy").compute(
        predictions=logits.argmax(dim=1), references=labels, num_classes=num_classes
    )


def train_classifier(config: ClassifierTrainingConfig) -> dict:
    """Trains, tests and saves a domain classifier as `config` says.

    Args:
        config (`ClassifierTrainingConfig`): the settings.

    Returns:
        `dict`: the results also written to the card: "test_accuracy", "per_class_accuracy",
        "most_confused", "training_time_s", ...

    Raises:
        `EvaluationError`: bad or unlabelled dataset, or an existing output folder without `overwrite`.
    """
    output_dir = Path(config.output_dir)
    if output_dir.exists() and not config.overwrite:
        raise EvaluationError(f"--output_dir {output_dir} already exists; pass --overwrite to replace it")
    names, image_size, (train_images, train_labels), (test_images, test_labels) = load_tensors(config)
    config = ClassifierTrainingConfig(**{**asdict(config), "image_size": image_size})
    model, training_time = fit_classifier(names, train_images, train_labels, config)
    scores = score_classifier(model, test_images, test_labels, len(names))
    results = {
        "dataset": config.dataset,
        "class_names": names,
        "test_accuracy": scores["accuracy"],
        "per_class_accuracy": scores["per_class_accuracy"],
        "per_class_count": scores["per_class_count"],
        "most_confused": most_confused_pairs(scores["confusion_matrix"], names),
        "confusion_matrix": scores["confusion_matrix"],
        "independent": config.independent,
        "trained_on": "half of the test split (evaluation.data.reader_split)" if config.independent else "train split",
        "num_train": len(train_images),
        "num_test": len(test_images),
        "num_parameters": model.num_parameters(),
        "training_time_s": training_time,
        "config": asdict(config),
    }

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        write_classifier_card(folder, results)

    write_folder(output_dir, write)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser((ClassifierTrainingConfig, HubArguments), description=__doc__.split("\n\n")[0])
    config, hub = parser.parse_args_into_dataclasses(args=argv)
    if len(config.hidden_sizes) != len(config.depths):
        parser.error("--hidden_sizes and --depths need one value per stage (the same number of values)")
    for name in ("num_epochs", "batch_size"):
        if getattr(config, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if (problem := hub.hub_problem()) is not None:
        parser.error(problem)
    try:
        results = train_classifier(config)
    except EvaluationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if hub.push_to_hub:
        try:
            url = push_folder(config.output_dir, hub.hub_model_id, private=hub.hub_private_repo)
        except PushError as error:
            print(
                f"error: the classifier is saved in {config.output_dir} but the push failed: {error}", file=sys.stderr
            )
            return 1
        print(f"pushed to {url}")
    worst = ", ".join(f"{p['true']}->{p['predicted']} ({p['count']})" for p in results["most_confused"][:5])
    print(
        f"test accuracy {results['test_accuracy']:.2%} on {results['num_test']} images "
        f"after {results['training_time_s']:.0f} s of training; most confused: {worst or 'none'}; "
        f"saved to {config.output_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
