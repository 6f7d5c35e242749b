"""End to end: `python app.py` on loopback with a tiny model, driven in headless Chromium through Playwright.

Needs Debian's `chromium` package (/usr/bin/chromium) and the `playwright` Python package (no downloaded
browser); skips with a reason otherwise.
"""

import importlib.util
import io
import math
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import PIL.Image
import pytest
from diffusers import DDPMScheduler

from pipelines import save_pipeline
from pipelines.character_pipeline import DEFAULT_NUM_INFERENCE_STEPS
from tests.pipeline_helpers import tiny_unet

# The screenshot script's helpers start the app and drive the page (benchmarks/ is not an installed package).
_spec = importlib.util.spec_from_file_location(
    "app_screenshot", Path(__file__).resolve().parents[1] / "benchmarks" / "app_screenshot.py"
)
app_screenshot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(app_screenshot)
CHROMIUM, CHROMIUM_ARGS = app_screenshot.CHROMIUM, app_screenshot.CHROMIUM_ARGS
generate_in_page, serve_app = app_screenshot.generate_in_page, app_screenshot.serve_app

SAMPLE_SIZE = 8
CLASS_NAMES = ["ب", "۷"]

playwright_sync = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[app]')")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (Debian: apt-get install chromium)"),
    pytest.mark.timeout(180),
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny seeded class-conditional model saved as the training would save it (it draws noise, not letters)."""
    unet = tiny_unet(num_class_embeds=len(CLASS_NAMES) + 1)
    assert unet.config.sample_size == SAMPLE_SIZE
    model_dir = tmp_path_factory.mktemp("tiny_model")
    save_pipeline(model_dir, unet, DDPMScheduler(num_train_timesteps=100), class_names=CLASS_NAMES)
    return model_dir


@pytest.fixture(scope="module")
def app_url(tiny_model, tmp_path_factory):
    """`python app.py --model TINY` on a free loopback port (one thread: the browser shares the CPU)."""
    log_path = tmp_path_factory.mktemp("app_log") / "app.log"
    with serve_app(str(tiny_model), log_path, "--num_threads", "1") as url:
        yield url


@pytest.fixture
def browser():
    with playwright_sync.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _count_drawn_tiles(grid: PIL.Image.Image, tile: int) -> int:
    """Tiles of a grid that hold a drawing; `pipelines.image_grid` leaves the unused ones black."""
    pixels = np.asarray(grid.convert("L"))  # (rows * tile, cols * tile)
    rows, cols = pixels.shape[0] // tile, pixels.shape[1] // tile
    tiles = pixels.reshape(rows, tile, cols, tile).swapaxes(1, 2)  # (rows, cols, tile, tile)
    return int((tiles.max(axis=(2, 3)) > 0).sum())


def test_generate_in_the_browser(app_url, browser, tmp_path):
    num_images = 5  # a 3 x 2 grid with one empty tile
    requests = []
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.on("request", lambda request: requests.append(request.url))
    page.goto(app_url)

    generate_in_page(page, "۷", num_images)
    status = page.locator("#status").inner_text()
    assert f"Drew {num_images} × ۷" in status
    assert f"s (SDE-DPM-Solver++, {DEFAULT_NUM_INFERENCE_STEPS} steps)" in status  # the time taken, the default sampler
    grid_src = page.locator("#grid img").get_attribute("src")
    assert page.locator("#trajectory img").get_attribute("src").split("?")[0].endswith(".gif")
    page.screenshot(path=tmp_path / "app.png", full_page=True)

    with urllib.request.urlopen(grid_src, timeout=10) as response:
        grid = PIL.Image.open(io.BytesIO(response.read()))
    cols = math.ceil(math.sqrt(num_images))
    rows = math.ceil(num_images / cols)
    assert grid.size == (cols * SAMPLE_SIZE, rows * SAMPLE_SIZE)
    assert _count_drawn_tiles(grid, SAMPLE_SIZE) == num_images

    # Offline page: every request went to the app itself (or stayed inside the browser).
    outside = {
        url for url in requests if urlsplit(url).scheme in ("http", "https", "ws", "wss")
        and urlsplit(url).hostname not in ("127.0.0.1", "localhost")
    }
    assert not outside, f"the page fetched from the internet: {sorted(outside)}"
    assert (tmp_path / "app.png").stat().st_size > 0


def test_bad_setting_and_bad_model_show_a_message(app_url, browser):
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.goto(app_url)

    steps_box = page.get_by_label("number input for Steps")
    steps_box.fill("500")  # more than the tiny model's 100-step noise schedule
    steps_box.press("Enter")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("Steps must be at most 100").first.wait_for(timeout=60_000)

    page.get_by_label("Model (folder or Hub id)").fill("no/such-model")
    page.get_by_role("button", name="Load model").click()
    page.get_by_text("model no/such-model: cannot load it").first.wait_for(timeout=30_000)
    assert "Traceback" not in page.content()
