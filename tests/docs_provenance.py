"""Which sections of the docs show measured figures, and whether each names where they came from.

A *figure* is a picture (`<img>` or `![...](...)`) or a table of measurements (a markdown table with a cell that
is a measured number: `81.0%`, `3.47 (0.73)`, `6.1x`, `14 s`) on a page of results. Each section (heading to heading)
that shows one needs a provenance line, a line starting with `Made on`, that names the machine (its CPU or
GPU model, cores and threads) and the commit (which must exist) or the command that made them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULT_PAGES = ["README.md", "docs/results.md", "docs/time_to_quality.md", "docs/benchmarks.md",
                "docs/usefulness.md", "docs/scaling.md", "docs/evaluation.md", "docs/demo.md"]
PICTURE = re.compile(r"<img\s|!\[[^\]]*\]\(")
# A table cell that is a measured number: 81.0%, 3.47 (0.73), 6.1x, 14 s, 1,870, 0.752 (0.893)
MEASURED_CELL = re.compile(r"\**[~≈<>≤≥]?[−-]?\d[\d.,]*\s*(%|x|×|s|ms|min|MB|GB)?\**(\s*\([^)]*\))?")
PROVENANCE = re.compile(r"^\W*Made on\b")
MACHINE = re.compile(r"Intel|AMD|EPYC|Xeon|NVIDIA|H100|H200|Apple")
COMMIT = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")


@dataclass
class Section:
    page: str
    heading: str
    line: int
    figures: list[int]
    provenance: list[str]


def sections(page: str) -> list[Section]:
    """The sections of `page` with their figure lines and provenance lines (code blocks skipped)."""
    found, in_code = [], False
    current = Section(page, "(top)", 1, [], [])
    lines = (REPO / page).read_text(encoding="utf-8").splitlines()
    table_start = None
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if line.startswith("#"):
            found.append(current)
            current = Section(page, line.lstrip("# "), number, [], [])
        if PICTURE.search(line):
            current.figures.append(number)
        if line.startswith("|"):
            table_start = number if table_start is None else table_start
            is_body = not re.fullmatch(r"[|\s:-]+", line) and number > table_start + 1
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            measured = any(MEASURED_CELL.fullmatch(cell) for cell in cells if cell)
            if is_body and measured and table_start not in current.figures:
                current.figures.append(table_start)
        else:
            table_start = None
        if PROVENANCE.match(line):
            # a provenance line may run on over the following lines of its paragraph
            paragraph = [line]
            for following in lines[number:]:
                if not following.strip() or following.startswith(("#", "|", "<", "```")):
                    break
                paragraph.append(following)
            current.provenance.append(" ".join(paragraph))
    found.append(current)
    return [section for section in found if section.figures]


def problems(section: Section, commit_exists) -> list[str]:
    """What the provenance of `section` lacks (empty if it names machine, cores, threads and a commit/command)."""
    if not section.provenance:
        return ["no `Made on` line"]
    text = " ".join(section.provenance)
    missing = []
    if not MACHINE.search(text):
        missing.append("the CPU or GPU model")
    if "core" not in text:
        missing.append("the cores")
    if "thread" not in text:
        missing.append("the threads")
    commits = COMMIT.findall(text)
    if not commits and "`" not in text:
        missing.append("a commit or a command")
    missing += [f"commit {commit} does not exist" for commit in commits if not commit_exists(commit)]
    return missing
