"""Hostile and damaged inputs: every `data_prep` format, mutated at random (seeded), ends as a dataset or as
one `DataPrepError` line, with nothing left behind and never a hang; unsafe and oversized zips are refused."""

from __future__ import annotations

import shutil
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data_prep
from data_prep import DataPrepError
from tests.data_writers import (
    glyph_png,
    random_glyphs,
    write_hoda_cdb5,
    write_hoda_digits_cdb,
    write_image_folder,
    write_mnist_pair,
    zip_folder,
)

DEFAULT_CASES, SLOW_CASES = 300, 2000
SECONDS_PER_CASE = 30  # a hang fails the test instead of stalling the suite


def build_valid_inputs(root: Path) -> dict[str, tuple[str, Path]]:
    """One small valid input per format: its `prepare` kind and the file or folder whose bytes get mutated."""
    glyphs = random_glyphs(12, seed=1)
    labels = [i % 3 for i in range(12)]
    inputs = {
        "cdb_digits": ("persian", write_hoda_digits_cdb(root / "digits.cdb", glyphs, labels)),
        "cdb5_letters": ("persian", write_hoda_cdb5(root / "letters.cdb", glyphs, labels)),
    }
    pixels = np.random.default_rng(0).integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    for gz in (True, False):
        folder = root / f"idx_{'gz' if gz else 'raw'}"
        folder.mkdir()
        write_mnist_pair(folder, pixels, np.array(labels, dtype=np.uint8), gz=gz)
        inputs[folder.name] = ("mnist", folder)
    names = ["be", "te", "۳"]
    for layout in ("classes", "csv"):
        items = [(glyph_png(g), names[label]) for g, label in zip(glyphs, labels)]
        folder = write_image_folder(root / f"folder_{layout}", layout, items)
        inputs[f"folder_{layout}"] = ("persian", folder)
        inputs[f"zip_{layout}"] = ("persian", zip_folder(folder, root / f"{layout}.zip"))
    return inputs


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One to three seeded edits of the kinds a damaged download or disk makes."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        op, at = int(rng.integers(0, 5)), int(rng.integers(0, max(len(out), 1)))
        if op == 0:  # flip bytes
            for i in rng.integers(0, max(len(out), 1), size=int(rng.integers(1, 8))):
                if out:
                    out[int(i)] ^= int(rng.integers(1, 256))
        elif op == 1:  # truncate
            del out[at:]
        elif op == 2:  # insert junk
            out[at:at] = rng.integers(0, 256, size=int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        elif op == 3:  # zero a range
            out[at:at + int(rng.integers(1, 128))] = bytes(min(len(out) - at, int(rng.integers(1, 128))))
        else:  # repeat a chunk
            out[at:at] = out[at:at + int(rng.integers(1, 256))]
    return bytes(out)


def mutated_copy(kind_and_path: tuple[str, Path], case_dir: Path, rng: np.random.Generator) -> tuple[str, Path]:
    """A copy of a valid input with one of its files mutated."""
    kind, source = kind_and_path
    target = case_dir / source.name
    if source.is_dir():
        shutil.copytree(source, target)
        files = sorted(p for p in target.rglob("*") if p.is_file())
        victim = files[int(rng.integers(0, len(files)))]
    else:
        shutil.copy(source, target)
        victim = target
    victim.write_bytes(mutate(victim.read_bytes(), rng))
    return kind, target


def run_case(kind: str, source: Path, output_dir: Path) -> str:
    """`prepare` on one input: "dataset" or "refused"; anything else (another exception, a hang) fails."""
    options = {"source": str(source)} if kind == "mnist" else {"source": [str(source)]}

    def hang(signum, frame):
        raise AssertionError(f"data_prep.prepare({kind!r}, source={source}) took over {SECONDS_PER_CASE} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(SECONDS_PER_CASE)
    try:
        data_prep.prepare(kind, output_dir=str(output_dir), **options)
        return "dataset"
    except DataPrepError as error:
        message = str(error)
        assert message and "\n" not in message, f"{source}: not one line: {message!r}"
        assert not output_dir.exists(), f"{source}: refused, but left {output_dir}"
        return "refused"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def fuzz(tmp_path: Path, cases: int) -> dict[str, int]:
    (tmp_path / "valid").mkdir()
    inputs = build_valid_inputs(tmp_path / "valid")
    names = sorted(inputs)
    outcomes = {"dataset": 0, "refused": 0}
    for case in range(cases):
        rng = np.random.default_rng(case)
        case_dir = tmp_path / f"case{case}"
        case_dir.mkdir()
        kind, source = mutated_copy(inputs[names[case % len(names)]], case_dir, rng)
        outcomes[run_case(kind, source, case_dir / "out")] += 1
        leftovers = [p.name for p in case_dir.iterdir() if p.name not in (source.name, "out")]
        assert not leftovers, f"case {case}: left {leftovers} behind"
        shutil.rmtree(case_dir)
    return outcomes


def test_mutated_inputs_of_every_format_end_as_a_dataset_or_one_line(tmp_path):
    outcomes = fuzz(tmp_path, DEFAULT_CASES)
    assert outcomes["refused"] > DEFAULT_CASES // 4 and sum(outcomes.values()) == DEFAULT_CASES


@pytest.mark.slow
def test_thousands_of_mutated_inputs(tmp_path):
    outcomes = fuzz(tmp_path, SLOW_CASES)
    assert sum(outcomes.values()) == SLOW_CASES


def hostile_zip(path: Path, member: str, data: bytes, compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        archive.writestr(member, data)
    return path


def png_bytes(size=(20, 20)) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("L", size, 255).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("member, words", [
    ("../be/0.png", "unsafe name"),
    ("/abs/be/0.png", "unsafe name"),
    ("be\\..\\..\\0.png", "unsafe name"),
])
def test_zip_members_that_leave_the_archive_are_refused(tmp_path, member, words):
    archive = hostile_zip(tmp_path / "evil.zip", member, png_bytes())
    with pytest.raises(DataPrepError, match=words):
        data_prep.prepare("persian", output_dir=str(tmp_path / "out"), source=[str(archive)])
    assert not (tmp_path / "out").exists()


def test_a_zip_bomb_is_refused_before_it_is_expanded(tmp_path):
    archive = hostile_zip(tmp_path / "bomb.zip", "be/0.png", bytes(200 * 2**20), compress=zipfile.ZIP_DEFLATED)
    assert archive.stat().st_size < 2**20  # 200 MiB of zeros in well under a megabyte
    with pytest.raises(DataPrepError, match="declares|expand"):
        data_prep.prepare("persian", output_dir=str(tmp_path / "out"), source=[str(archive)])


def test_an_image_of_huge_dimensions_is_refused_from_its_header(tmp_path):
    for label in ("be", "te"):
        (tmp_path / "folder" / label).mkdir(parents=True)
    Image.new("L", (20, 20), 255).save(tmp_path / "folder" / "te" / "0.png")
    Image.new("1", (5000, 5000), 1).save(tmp_path / "folder" / "be" / "0.png")  # 25M pixels in a small file
    with pytest.raises(DataPrepError, match="5000 x 5000 pixels"):
        data_prep.prepare("persian", output_dir=str(tmp_path / "out"), source=[str(tmp_path / "folder")])
