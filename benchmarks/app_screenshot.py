"""Screenshot the web demo drawing a character: the README's `docs/app.png`.

    python -m benchmarks.app_screenshot MODEL [--character ب] [--guidance_scale 2] [--output docs/app.png]

Starts `python app.py --model MODEL` on a free loopback port, opens it in headless Chromium (Debian's
`chromium` package, driven by Playwright; no browser is downloaded), picks the character, presses Generate,
waits for the images and saves the page. `tests/test_app_browser.py` drives the page with the same helpers.
"""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_app(model: str, log_path: Path, *app_args: str, timeout_s: float = 90) -> Iterator[str]:
    """Run `python app.py --model MODEL` on a free loopback port until the block ends; yields the page's URL.

    Raises:
        RuntimeError: when the app exits or does not answer within `timeout_s`, with its log.
    """
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    for name in ("GRADIO_SERVER_NAME", "GRADIO_ANALYTICS_ENABLED"):  # the app's own defaults
        env.pop(name, None)
    command = [sys.executable, "app.py", "--model", model, "--port", str(port), *app_args]
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"app.py exited with {server.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not serve {url} within {timeout_s:.0f} s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def generate_in_page(page, character: str | None, num_images: int | None = None, guidance_scale: float | None = None):
    """Pick the settings in the page, press Generate and wait (up to 5 minutes) for the status line."""
    if character is not None:
        page.get_by_label("Character").click()
        page.get_by_role("option", name=character, exact=True).click()
    for label, value in (("Number of images", num_images), ("Guidance scale", guidance_scale)):
        if value is not None:
            box = page.get_by_label(f"number input for {label}")
            box.fill(str(value))
            box.press("Enter")
    page.get_by_role("button", name="Generate").click()
    page.locator("#status").get_by_text("Drew").wait_for(timeout=300_000)


@dataclass
class ScreenshotArguments:
    """The options of `python -m benchmarks.app_screenshot MODEL`."""

    character: str = field(default="ب", metadata={"help": 'character to draw ("any" for an unconditional model)'})
    guidance_scale: float = field(default=2.0, metadata={"help": "guidance scale (class-conditional models)"})
    output: str = field(default="docs/app.png", metadata={"help": "the PNG to write"})


def main(argv: list[str] | None = None) -> None:
    parser = HfArgumentParser(ScreenshotArguments, prog="python -m benchmarks.app_screenshot",
                              description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a folder saved by train_ddpm.py, or a Hub model id")
    args, positional = parser.parse_args_into_dataclasses(args=argv)
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} not found; install Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright  # the test extra; imported here so --help works without it

    conditional = args.character != "any"
    with tempfile.TemporaryDirectory() as scratch, serve_app(positional.model, Path(scratch) / "app.log") as url:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(url)
            generate_in_page(
                page, args.character if conditional else None, 16, args.guidance_scale if conditional else None
            )
            page.wait_for_timeout(3000)  # let the GIF play to its last frame
            partial = Path(args.output).with_name(f".{Path(args.output).name}.partial.png")
            page.screenshot(path=partial, full_page=True)
            browser.close()
    os.replace(partial, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
