"""The `Made on` line every figure of the docs carries: the machine, the threads, the commit and the command.

tests/docs_provenance.py checks that each docs section with a picture or a table of measurements has one;
the benchmarks print theirs with their tables, so that a table is pasted together with where it came from.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cpu_description() -> str:
    """The CPU model (with family and model: a VM guest often shows only "AMD EPYC"), the cores this process
    may use, and whether the CPU computes bf16 natively (timings mean little without them)."""
    from pipelines.fast_inference import cpu_has_native_bf16

    fields = {}
    try:  # the first processor's fields
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").split("\n\n")[0].splitlines():
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
    except OSError:
        pass
    model = fields.get("model name", "unknown CPU")
    if "cpu family" in fields and "model" in fields:
        model += f" (family {fields['cpu family']}, model {fields['model']})"
    bf16 = {True: "native bf16", False: "no native bf16", None: "bf16 support unknown"}[cpu_has_native_bf16()]
    return f"{model}, {len(os.sched_getaffinity(0))} cores, {bf16}"


def commit() -> str:
    """The checkout's short commit, marked when files differ from it ("unknown" outside a git checkout)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} with uncommitted changes" if dirty else head


def made_on_line(threads: str | int, command: list[str] | None = None) -> str:
    """`Made on <CPU, cores, bf16>, <threads> thread(s), at commit <hash>, by `<command>`.` (this process's
    command line by default)."""
    words = command if command is not None else ["python", "-m", Path(sys.argv[0]).with_suffix("").name, *sys.argv[1:]]
    if command is None and Path(sys.argv[0]).resolve().parent.name == "benchmarks":
        words[2] = f"benchmarks.{words[2]}"
    return (f"Made on {cpu_description()}, {threads} thread{'' if str(threads) == '1' else 's'} per process, "
            f"at commit {commit()}, by `{shlex.join(words)}`.")
