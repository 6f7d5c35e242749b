"""The commands the docs show a user, read out of README.md and docs/*.md, and a parse-only run of them.

`doc_commands(path)` finds every command of this project in a markdown file: the lines of its code blocks
(joined across `\\` line ends, comments dropped, split at `&&`, `;` and `|`, `bash -c "..."` opened) and its
inline code spans, wherever they start with `python -m <module>`, `python <script>.py` or `accelerate launch`.
A bare `python -m <module>` with no arguments names a tool rather than showing a command, and pytest's own
lines are not ours to check; both are left out. Synopsis brackets (`[--private]`) are dropped so that the
optional flags inside them are parsed too, `...` (arguments left out) is dropped, and a shell variable reads
as 0 (and so does `$((...))`).

Run as a script (`python -m tests.docs_commands`) with a JSON list of argv lists on stdin, it parses each
with the command's own parser and stops right after parsing: nothing is loaded, trained or written. It prints
one JSON object per command: `{"argv": [...], "ok": bool, "error": "..."}`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import runpy
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+(?:\n[^`\n]+)*)`")
SHELL_VARIABLE = re.compile(r"\$\{?\w+\}?")
ARITHMETIC = re.compile(r"\$\(\([^)]*\)\)")


@dataclass(frozen=True)
class DocCommand:
    """One command shown in a doc: where it stands and its words."""

    doc: str  # the file, relative to the repository
    line: int  # the line it starts on
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {shlex.join(self.argv)}"


def _words(text: str) -> list[list[str]]:
    """Shell words of `text`, split into simple commands at `&&`, `||`, `;` and `|`; `bash -c "..."` opened."""
    text = ARITHMETIC.sub("0", text.replace("\\\n", " "))
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split, lexer.commenters = True, "#"
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: prose, not a command
        return []
    commands, current = [], []
    for token in tokens:
        if token and set(token) <= set(";&|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    opened = []
    for words in commands:  # `srun bash -c "..."`: the command is the string
        shell = next((i for i, word in enumerate(words[:-2]) if word in ("bash", "sh") and words[i + 1] == "-c"), None)
        opened.extend(_words(words[shell + 2]) if shell is not None else [words])
    return opened


def _ours(words: list[str]) -> tuple[str, ...] | None:
    """The command of this project in `words` (after any VAR=value prefix), cleaned for parsing, or None."""
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        words = words[1:]
    if len(words) < 2:
        return None
    if words[0] == "python" and words[1] == "-m":
        if len(words) < 4 or words[2] == "pytest":  # `python -m evaluation` names the tool; pytest is not ours
            return None
    elif words[0] == "python" and words[1].endswith(".py"):
        pass
    elif words[:2] != ["accelerate", "launch"] or not any(word.endswith(".py") for word in words):
        return None  # `accelerate launch` alone names the launcher
    cleaned = []
    for word in words:
        word = SHELL_VARIABLE.sub("0", word)
        if word in ("...", "[", "]") or word.endswith("..."):
            continue
        cleaned.append(word.removeprefix("[").removesuffix("]") if word.startswith(("[", "-")) or
                       word.endswith("]") else word)
    return tuple(cleaned)


def doc_commands(path: Path) -> list[DocCommand]:
    """Every command of this project shown in the markdown file `path`, in the order they appear."""
    text = path.read_text(encoding="utf-8")
    found: list[tuple[int, tuple[str, ...]]] = []
    blocks = list(CODE_BLOCK.finditer(text))
    for block in blocks:
        start_line = text.count("\n", 0, block.start(1)) + 1
        lines = block.group(1).split("\n")
        joined, first = "", None
        for number, line in enumerate(lines, start_line):
            first = number if first is None else first
            if line.rstrip().endswith("\\"):
                joined += line.rstrip()[:-1] + " "
                continue
            for words in _words(joined + line):
                if (argv := _ours(words)) is not None:
                    found.append((first, argv))
            joined, first = "", None
    prose = CODE_BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for span in INLINE.finditer(prose):
        for words in _words(span.group(1).replace("\n", " ")):
            if (argv := _ours(words)) is not None:
                found.append((prose.count("\n", 0, span.start()) + 1, argv))
    relative = str(path.relative_to(REPO))
    return [DocCommand(relative, line, argv) for line, argv in sorted(found, key=lambda item: item[0])]


class Parsed(BaseException):
    """Raised right after a command's parser has read its arguments (a BaseException: no `except Exception`
    of the command catches it)."""


@contextlib.contextmanager
def _stop_after_parsing():
    """Within it, every argparse and HfArgumentParser parse ends the program with `Parsed` once it succeeds."""
    from transformers import HfArgumentParser

    parse_args = argparse.ArgumentParser.parse_args
    into_dataclasses = HfArgumentParser.parse_args_into_dataclasses

    def parse_then_stop(self, *args, **kwargs):
        parse_args(self, *args, **kwargs)
        raise Parsed

    def into_dataclasses_then_stop(self, *args, **kwargs):
        into_dataclasses(self, *args, **kwargs)
        raise Parsed

    argparse.ArgumentParser.parse_args = parse_then_stop
    HfArgumentParser.parse_args_into_dataclasses = into_dataclasses_then_stop
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args = parse_args
        HfArgumentParser.parse_args_into_dataclasses = into_dataclasses


def _parse_script(script: str, args: list[str]) -> None:
    """Parse `args` with the parser of `script` (train_ddpm.py: its config file read and checked too)."""
    if Path(script).name == "train_ddpm.py":
        from training.config import parse_config

        parse_config(args)  # parses twice (the file, then the flags over it); exits 2 on an error
        raise Parsed
    sys.argv = [script, *args]
    with _stop_after_parsing():
        runpy.run_path(str(REPO / script), run_name="__main__")


def parse_one(argv: list[str]) -> str | None:
    """Parse one doc command with its own parser(s); None if it parses, else what its parser said."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            if argv[0] == "accelerate":
                from accelerate.commands.launch import launch_command_parser

                launch = launch_command_parser().parse_args(argv[2:])
                _parse_script(launch.training_script, list(launch.training_script_args))
            elif argv[1] == "-m":
                sys.argv = [argv[2], *argv[3:]]
                with _stop_after_parsing():
                    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
            else:
                _parse_script(argv[1], list(argv[2:]))
    except Parsed:
        return None
    except SystemExit as end:
        if end.code in (0, None):
            return None
        return stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else f"exit {end.code}"
    except Exception as error:  # noqa: BLE001 - any failure to parse is reported, with its type
        return f"{type(error).__name__}: {error}"
    return "the command ran to its end without parsing arguments"


def main() -> None:
    sys.path.insert(0, str(REPO))
    for argv in json.load(sys.stdin):
        print(json.dumps({"argv": argv, "ok": (error := parse_one(argv)) is None, "error": error}), flush=True)


if __name__ == "__main__":
    main()
