"""The docs a user reads: a one-screen README, links and pictures that resolve, and no path of ours."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# [text](target) and <img src="target">; a target may carry a #fragment
LINK = re.compile(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file (code blocks skipped)."""
    found, in_code = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(github_slug(line.lstrip("#")))
    return found


def local_links(path: Path) -> list[str]:
    """The relative link and image targets of a markdown file, outside code blocks."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    targets = [a or b for a, b in LINK.findall(text)]
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


def test_readme_fits_on_one_screen():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to docs/"


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_and_pictures_resolve(doc: Path):
    broken = []
    for target in local_links(doc):
        file_part, _, fragment = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {dest.name}")
    assert not broken, f"{doc.name}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme_or_another_page():
    linked = set()
    for doc in DOC_FILES:
        for target in local_links(doc):
            linked.add((doc.parent / target.partition("#")[0]).resolve())
    orphans = [p.name for p in DOC_FILES[1:] if p.resolve() not in linked]
    assert not orphans, f"docs pages no page links to: {orphans}"


def test_the_package_and_docs_never_name_this_projects_data_folder():
    """Users have no ../shared; only tests, benchmarks and CI may use it."""
    try:
        files = subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list the tracked files")
    allowed = ("tests/", "benchmarks/", ".ci/")
    offenders = []
    for name in files:
        path = REPO / name
        if name.startswith(allowed) or path.suffix not in {".py", ".md", ".yaml", ".txt", ".cfg", ".toml"}:
            continue
        if "../shared" in path.read_text(encoding="utf-8", errors="replace"):
            offenders.append(name)
    assert not offenders, f"files that mention ../shared: {offenders}"


def test_every_figure_names_its_machine_and_the_commit_or_command_that_made_it():
    """Each section of a results page with a picture or a table of measurements has a `Made on` line naming the
    CPU or GPU, cores, threads and an existing commit or the command (tests/docs_provenance.py)."""
    from tests.docs_provenance import RESULT_PAGES, problems, sections

    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True,
                             text=True).stdout.strip() == "true"

    def commit_exists(commit: str) -> bool:
        if shallow:  # a shallow clone lacks the older commits: only their form is checked
            return True
        found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO, capture_output=True)
        return found.returncode == 0

    try:
        subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the commits named in the docs cannot be checked")
    found = [section for page in RESULT_PAGES for section in sections(page)]
    assert len(found) >= 15, "the figure finder stopped finding the docs' figures"
    lacking = [f"{s.page}:{s.line} ({s.heading}): {', '.join(p)}" for s in found if (p := problems(s, commit_exists))]
    assert not lacking, "figures without their machine and origin:\n" + "\n".join(lacking)


def test_the_code_map_names_only_files_that_exist():
    text = (REPO / "docs" / "code.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:[\w.]+/)*[\w.]+\.py)`", text)) - {"benchmarks/NAME.py"}
    assert len(paths) >= 20, "the map names fewer files than it should"
    assert not sorted(path for path in paths if not (REPO / path).is_file())
