"""The dataset card (`README.md` with YAML metadata) saved beside the data and pushed with it."""

from collections import Counter

import datasets
from huggingface_hub import DatasetCard, DatasetCardData

from .sources import Source

_TITLES = {
    "mnist": "MNIST handwritten digits",
    "persian": "Persian handwritten digits and letters",
    "glyphs": "Rendered Persian digits and letters",
}
_LICENSE_NOTES = {
    "cc-by-sa-3.0": "MNIST (LeCun, Cortes, Burges) is distributed for research and commonly cited as CC BY-SA 3.0.",
    "hoda": "The Hoda sets (Khosravi & Kabir, Pattern Recognition Letters 2007; Hoda System Co.) are free for "
    "research and non-commercial use only; cite the producers.",
    "glyphs": "Rendered from the DejaVu fonts (Bitstream Vera licence, free to use and redistribute; "
    "https://dejavu-fonts.github.io/License.html).",
    "unknown": "The licence of user-supplied image folders is not known to this tool; add it before sharing.",
}


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def _license(kind: str, sources: list[Source]) -> tuple[str, list[str]]:
    """The card's licence id and the notes that explain it."""
    notes = []
    for source in sources:
        if source.license == "cc-by-sa-3.0":
            notes.append(_LICENSE_NOTES["cc-by-sa-3.0"])
        elif source.kind.startswith("Hoda"):
            notes.append(_LICENSE_NOTES["hoda"])
        elif kind == "glyphs":
            notes.append(_LICENSE_NOTES["glyphs"])
        else:
            notes.append(_LICENSE_NOTES["unknown"])
    licenses = {source.license for source in sources}
    return (licenses.pop() if len(licenses) == 1 else "other"), list(dict.fromkeys(notes))


def write_card(
    kind: str, dataset_dict: datasets.DatasetDict, sources: list[Source], config, *, command: str, skipped: int
) -> str:
    """Render the card.

    Args:
        kind (`str`): "mnist", "persian" or "glyphs".
        dataset_dict (`datasets.DatasetDict`): the finished splits.
        sources (`list[Source]`): where the images came from.
        config (`PrepareOptions`): the options used.
        command (`str`): the command that produced the dataset.
        skipped (`int`): unreadable images skipped with `--skip_bad_images`.

    Returns:
        `str`: the card text, YAML metadata first.
    """
    class_names = dataset_dict["train"].features["label"].names
    counts = {split: Counter(dataset_dict[split]["label"]) for split in ("train", "test")}
    total = sum(len(dataset_dict[split]) for split in ("train", "test"))
    license_id, license_notes = _license(kind, sources)
    metadata = DatasetCardData(
        license=license_id,
        task_categories=["image-classification", "unconditional-image-generation"],
        size_categories=[_size_category(total)],
        language=["fa"] if kind != "mnist" else None,
        pretty_name=_TITLES[kind],
        tags=["handwriting", "ddpm", "persian-ddpm"],
    )
    pre_split = all(source.split is not None for source in sources) and {s.split for s in sources} >= {"train", "test"}
    split_note = (
        "The splits are those of the source files."
        if pre_split
        else f"The source does not come split: {config.test_fraction:g} of each class went to `test`, "
        f"drawn with seed {config.seed} (stratified by class)."
    )
    lines = [
        f"# {_TITLES[kind]}",
        "",
        f"{total:,} grayscale images ({config.image_size}x{config.image_size}, mode `L`, white ink on black like "
        f"MNIST) in {len(class_names)} classes: `train` {len(dataset_dict['train']):,}, "
        f"`test` {len(dataset_dict['test']):,}. {split_note}",
        "",
        "```python",
        "import datasets",
        'ds = datasets.load_from_disk("PATH")  # or datasets.load_dataset("REPO_ID") once pushed',
        "```",
        "",
        "Features: `image` (`datasets.Image()`), `label` (`datasets.ClassLabel`, named by the characters).",
    ]
    if kind != "mnist":
        lines += [
            "",
            "Normalisation like MNIST: each glyph is cropped to its ink, fitted into a box of 20/28 of the "
            "image with its aspect ratio kept (antialiased), and centred by its centre of mass.",
        ]
    elif config.image_size == 28:
        lines += ["", "The MNIST pixels are unchanged."]
    if config.max_samples:
        lines += [
            "",
            f"Only a seeded random subset of {config.max_samples:,} source images was kept (`--max_samples`).",
        ]
    if skipped:
        lines += ["", f"{skipped} unreadable image(s) were skipped (`--skip_bad_images`)."]
    lines += ["", "## Classes", "", "| label | class | train | test |", "|---|---|---|---|"]
    lines += [
        f"| {i} | {name} | {counts['train'].get(i, 0):,} | {counts['test'].get(i, 0):,} |"
        for i, name in enumerate(class_names)
    ]
    lines += ["", "## Provenance", "", "| source | kind | details |", "|---|---|---|"]
    lines += [
        f"| `{source.name}` | {source.kind} | {', '.join(f'{k}: {v}' for k, v in source.provenance.items())} |"
        for source in sources
    ]
    lines += ["", "## Licence", ""] + [f"- {note}" for note in license_notes]
    lines += ["", "## How it was made", "", "```bash", command, "```", ""]
    return str(DatasetCard(f"---\n{metadata.to_yaml()}\n---\n\n" + "\n".join(lines)))
