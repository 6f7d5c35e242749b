"""The demo under load: `python app.py` on loopback answers 16 simultaneous Generate requests, in the order they
came, with its memory bounded; out-of-range settings get the page's one-line message."""

import importlib.util
import json
import threading
import time
import urllib.request

import psutil
import pytest
from diffusers import DDPMScheduler

from pipelines import save_pipeline
from tests.conftest import REPO_ROOT
from tests.pipeline_helpers import tiny_unet

pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[app]')")
pytestmark = pytest.mark.timeout(300)

# The screenshot script's helper starts the app on a free loopback port (benchmarks/ is not an installed package).
_spec = importlib.util.spec_from_file_location("app_screenshot", REPO_ROOT / "benchmarks" / "app_screenshot.py")
app_screenshot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(app_screenshot)

CLASS_NAMES = ["ب", "۷"]
REQUESTS = 16


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app's URL, its process and the tiny model it serves."""
    model = tmp_path_factory.mktemp("model")
    save_pipeline(model, tiny_unet(len(CLASS_NAMES) + 1), DDPMScheduler(num_train_timesteps=100),
                  class_names=CLASS_NAMES)
    log = tmp_path_factory.mktemp("log") / "app.log"
    with app_screenshot.serve_app(str(model), log, "--num_threads", "1") as url:
        port = url.rstrip("/").rsplit(":", 1)[1]
        server = next(p for p in psutil.process_iter(["cmdline"])
                      if "app.py" in " ".join(p.info["cmdline"] or []) and port in (p.info["cmdline"] or []))
        yield url, server, str(model)


def submit(url: str, settings: list) -> str:
    """Queue one Generate call through Gradio's HTTP API; returns its event id."""
    body = json.dumps({"data": settings}).encode()
    request = urllib.request.Request(f"{url}gradio_api/call/generate", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["event_id"]


def outcome(url: str, event_id: str) -> tuple[str, object]:
    """Wait for a queued call: ("complete", outputs) or ("error", message)."""
    with urllib.request.urlopen(f"{url}gradio_api/call/generate/{event_id}", timeout=240) as response:
        text = response.read().decode("utf-8")
    kind = "complete" if "event: complete" in text else "error"
    data = text.split("data:", 1)[1].strip().splitlines()[0] if "data:" in text else ""
    return kind, json.loads(data) if data.startswith(("[", "{")) else data


def settings(model: str, seed: int, num_images: int = 4) -> list:
    return [model, "ب", num_images, "DPM-Solver++", 2, 1.0, seed]


def test_sixteen_simultaneous_requests_are_all_answered_in_queue_order(served):
    url, server, model = served
    assert outcome(url, submit(url, settings(model, 0)))[0] == "complete"  # warm: the model is loaded
    memory_before = server.memory_info().rss

    events = [submit(url, settings(model, seed)) for seed in range(REQUESTS)]  # all queued at once
    finished, results = {}, {}

    def wait(index: int, event_id: str) -> None:
        results[index] = outcome(url, event_id)
        finished[index] = time.monotonic()

    threads = [threading.Thread(target=wait, args=(i, e)) for i, e in enumerate(events)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=280)

    assert sorted(results) == list(range(REQUESTS))
    assert all(kind == "complete" and "Drew 4 × ب" in outputs[2] for kind, outputs in results.values())
    order = sorted(range(REQUESTS), key=finished.get)
    assert order == list(range(REQUESTS))  # one generation at a time, first come first served
    growth = server.memory_info().rss - memory_before
    assert growth < 200 * 2**20, f"the app grew by {growth / 2**20:.0f} MiB over {REQUESTS} requests"


# The page's sliders refuse what is outside their range with Gradio's own line; the app checks the rest.
@pytest.mark.parametrize("change, words", [
    ({2: 65}, "Value 65 is greater than maximum value 64"),
    ({4: 0}, "Value 0 is less than minimum value 1"),
    ({4: 101}, "Steps must be at most 100, the length of this model's noise schedule"),
    ({6: -1}, "Value -1 is less than minimum value 0"),
])
def test_out_of_range_settings_get_one_line(served, change, words):
    url, _, model = served
    values = settings(model, 0)
    for index, value in change.items():
        values[index] = value
    kind, message = outcome(url, submit(url, values))
    assert kind == "error"
    text = json.dumps(message, ensure_ascii=False) if not isinstance(message, str) else message
    assert words in text and "Traceback" not in text
