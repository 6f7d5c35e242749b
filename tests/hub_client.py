"""Running Hub clients in a fresh interpreter pointed at the loopback Hub server (tests/hub_server.py).

The clients (huggingface_hub, datasets, diffusers) read `HF_ENDPOINT` when they are imported, and the rest
of the suite runs offline, so every client runs in a subprocess whose environment points at the server
(`HubServer.client_env`).
"""

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.hub_server import HubServer


def run_client(hub: HubServer, script: str, *args: str, home: Path, token: str | None = None, cwd: Path = REPO_ROOT):
    """Run `script` in a fresh interpreter talking to `hub`; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=cwd, env=hub.client_env(home / "hf_home", token=token), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def last_json(result: subprocess.CompletedProcess) -> dict:
    """The last line a client printed, read as JSON, after checking that it succeeded."""
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def folder_state(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file's (size, mtime, sha256) and every folder, to prove a push left the folder untouched."""
    state = {}
    for path in sorted(folder.rglob("*")):
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        state[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns, digest)
    return state
