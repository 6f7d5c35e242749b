"""The model card (README.md) and results file of a trained domain classifier."""

import json
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData


def most_confused_pairs(confusion: list[list[int]], class_names: list[str], top: int = 10) -> list[dict]:
    """The `top` largest off-diagonal entries of a confusion matrix, largest first.

    Args:
        confusion (`list[list[int]]`): entry [t][p] counts images of true class t predicted as p.
        class_names (`list[str]`): names by class index.
        top (`int`): how many pairs to return.

    Returns:
        `list[dict]`: `{"true": name, "predicted": name, "count": n, "share": n / images of the true class}`.
    """
    pairs = [
        (count, true, predicted)
        for true, row in enumerate(confusion)
        for predicted, count in enumerate(row)
        if predicted != true and count > 0
    ]
    pairs.sort(key=lambda pair: (-pair[0], pair[1], pair[2]))
    return [
        {
            "true": class_names[true],
            "predicted": class_names[predicted],
            "count": count,
            "share": count / sum(confusion[true]),
        }
        for count, true, predicted in pairs[:top]
    ]


def write_classifier_card(output_dir: Path, results: dict) -> None:
    """Writes `README.md` (the model card) and `classifier_results.json` into `output_dir`.

    Args:
        output_dir (`Path`): the classifier's folder.
        results (`dict`): from `train_classifier`: "dataset", "class_names", "test_accuracy",
            "per_class_accuracy", "per_class_count", "most_confused", "num_train", "num_test",
            "training_time_s", "num_parameters" and "config".
    """
    (output_dir / "classifier_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=["image-classification", "resnet", "persian-ddpm", "fid-feature-extractor"],
        metrics=["accuracy"],
    )
    per_class = "\n".join(
        f"| {index} | {name} | {count} | {accuracy:.2%} |"
        for index, (name, count, accuracy) in enumerate(
            zip(results["class_names"], results["per_class_count"], results["per_class_accuracy"])
        )
        if accuracy is not None
    )
    confused = "\n".join(
        f"| {pair['true']} | {pair['predicted']} | {pair['count']} | {pair['share']:.1%} |"
        for pair in results["most_confused"]
    ) or "| - | - | 0 | - |"
    config = "\n".join(f"| `{key}` | `{value}` |" for key, value in results["config"].items())
    if results.get("independent"):
        source = "one half of the test split of"
        role = ("It is the independent reader of `python -m evaluation`: it never saw the images a generator "
                "trained on the train split learns from, and the other half of the test split, which it never saw "
                "either, is the real reference it reads samples against.")
    else:
        source = "the train split of"
        role = ("Its pooled features are the feature space of the project's Fréchet distance, KID and "
                "precision/recall; its predictions give the class-conditional accuracy of generated samples.")
    content = f"""---
{card_data.to_yaml()}
---

# Domain classifier for `{results["dataset"]}`

A small ResNet ({results["num_parameters"]:,} parameters, 1-channel input of {results["config"]["image_size"]} px)
trained from scratch by persian-ddpm's `python -m evaluation.train_classifier` on {source}
`{results["dataset"]}` ({results["num_train"]:,} images, {len(results["class_names"])} classes). {role}

**Test accuracy: {results["test_accuracy"]:.2%}** on {results["num_test"]:,} held-out test images
(training took {results["training_time_s"]:.0f} s on the CPU).

## Usage

```py
from evaluation import load_feature_extractor

extractor = load_feature_extractor("path/to/this/folder")
features, logits = extractor(images)  # images: (B, 1, H, W) in [0, 1]
```

or, as a plain classifier: `transformers.ResNetForImageClassification.from_pretrained("path/to/this/folder")`
(inputs in [-1, 1], {results["config"]["image_size"]} x {results["config"]["image_size"]}, white ink on black).

## Most confused pairs (test split)

| true | predicted as | images | share of the true class |
|---|---|---|---|
{confused}

## Accuracy per class (test split)

| index | class | test images | accuracy |
|---|---|---|---|
{per_class}

## Training configuration

| setting | value |
|---|---|
{config}
"""
    ModelCard(content).save(output_dir / "README.md")
