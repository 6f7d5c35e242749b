"""A seeded three-shape dataset and a seconds-long classifier run, shared by the evaluation tests."""

import datasets
import numpy as np
from PIL import Image

from evaluation.train_classifier import main as train_classifier_main

SHAPES = ("bar", "column", "box")
TINY_MODEL = ["--embedding_size", "8", "--hidden_sizes", "8", "16", "--depths", "1", "1"]


def shape_image(kind: str, rng: np.random.Generator, size: int = 16) -> Image.Image:
    """A white horizontal bar, vertical bar or box outline on black, at a random place."""
    pixels = np.zeros((size, size), dtype=np.uint8)
    a, b = rng.integers(3, size - 9, 2)
    if kind == "bar":
        pixels[a + 3 : a + 5, b : b + 9] = 255
    elif kind == "column":
        pixels[a : a + 9, b + 3 : b + 5] = 255
    else:
        pixels[a : a + 7, b : b + 7] = 255
        pixels[a + 2 : a + 5, b + 2 : b + 5] = 0
    return Image.fromarray(pixels, mode="L")


def make_shapes_dataset(path, per_class_train: int = 40, per_class_test: int = 10, seed: int = 0):
    """A DatasetDict in data_prep's format: three shape classes, 16 x 16 px."""
    rng = np.random.default_rng(seed)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(SHAPES))})

    def split(per_class):
        labels = [label for label in range(len(SHAPES)) for _ in range(per_class)]
        images = [shape_image(SHAPES[label], rng) for label in labels]
        return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)

    datasets.DatasetDict({"train": split(per_class_train), "test": split(per_class_test)}).save_to_disk(str(path))
    return path


def make_shapes_folder(path, per_class: int = 40, seed: int = 0):
    """An image folder of the three shapes, one sub-folder per class (its classes sort as bar, box, column)."""
    rng = np.random.default_rng(seed)
    for kind in SHAPES:
        (path / kind).mkdir(parents=True)
        for index in range(per_class):
            shape_image(kind, rng).save(path / kind / f"{index}.png")
    return path


def train_quickly(dataset, output_dir, *extra: str) -> int:
    """`python -m evaluation.train_classifier` with a tiny model and two epochs: seconds, not minutes."""
    argv = ["--dataset", str(dataset), "--output_dir", str(output_dir), "--num_epochs", "2", "--batch_size", "16"]
    return train_classifier_main([*argv, *TINY_MODEL, *extra])
