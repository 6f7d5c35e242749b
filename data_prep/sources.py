"""The one shape every data source shares.

A source knows its class names and its size up front and yields `{"image": PIL.Image, "label": int}`
examples, already normalised to the output format (mode "L", `image_size` square, white ink on black).
`read(select)` yields only the examples whose position is in `select` (all when `None`), so that
`--max_samples` can skip the decoding of everything else.
"""

import hashlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

Example = dict  # {"image": PIL.Image.Image, "label": int}


@dataclass
class Source:
    """One input file, folder or generator, read lazily.

    Args:
        name (`str`): the path (or Hub id) shown in messages and in the dataset card.
        kind (`str`): what it is, e.g. "Hoda digits .cdb".
        class_names (`list[str]`): label `i` of the examples is `class_names[i]`.
        num_examples (`int`): how many examples `read(None)` yields at most.
        read (`Callable`): `read(select) -> Iterator[Example]`, see the module docstring.
        split (`str`, *optional*): "train" or "test" when the source comes split, else `None`.
        license (`str`): a Hub licence id ("cc-by-sa-3.0", "other", "unknown", ...).
        provenance (`dict[str, str]`): facts for the card (size, sha256, layout, ...).
    """

    name: str
    kind: str
    class_names: list[str]
    num_examples: int
    read: Callable[[Collection[int] | None], Iterator[Example]]
    split: str | None = None
    license: str = "unknown"
    provenance: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # unreadable files skipped by --skip_bad_images


def file_provenance(path: Path) -> dict[str, str]:
    """Size and sha256 of a source file, for the dataset card."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"file": path.name, "bytes": f"{path.stat().st_size:,}", "sha256": digest.hexdigest()}
