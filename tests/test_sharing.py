"""Unit tests of sharing/: which failures are retried, how often, how long, and what is never uploaded."""

import httpx2
import pytest
from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.utils import filter_repo_objects

import sharing.retry
from pipelines import push as push_cli
from sharing import DEFAULT_IGNORE_PATTERNS, PushError, push_folder, retry_transient


def http_error(status: int, headers: dict | None = None, message: str = "") -> HfHubHTTPError:
    response = httpx2.Response(status, headers=headers, request=httpx2.Request("POST", "http://hub.test/api/x"))
    return HfHubHTTPError(f"{status} error\nmore detail on a second line", response=response, server_message=message)


class Flaky:
    """A Hub call that raises the given errors in turn, then returns "done"."""

    def __init__(self, *errors: BaseException):
        self.errors, self.calls = list(errors), 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record the backoff delays instead of sleeping."""
    delays: list[float] = []
    monkeypatch.setattr(sharing.retry.time, "sleep", delays.append)
    return delays


@pytest.mark.parametrize("error", [http_error(500), http_error(503), http_error(429), httpx2.ConnectError("refused")])
def test_transient_failures_are_retried_with_exponential_backoff(error, sleeps):
    call = Flaky(error, error)
    assert retry_transient(call, what="upload", base_delay_s=0.5) == "done"
    assert call.calls == 3
    assert sleeps == [0.5, 1.0]


def test_retry_after_header_is_honoured(sleeps):
    call = Flaky(http_error(429, headers={"Retry-After": "7"}))
    assert retry_transient(call, what="upload", base_delay_s=0.5) == "done"
    assert sleeps == [7.0]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (http_error(401, message="Invalid credentials in Authorization header"), "HTTP 401"),
        (http_error(403, message="no write access"), "write"),
        (http_error(400, message="bad commit"), "bad commit"),
        (OfflineModeIsEnabled("offline"), "HF_HUB_OFFLINE"),
        (ValueError("Invalid metadata in README.md.\n- bad licence"), "Invalid metadata"),
    ],
)
def test_permanent_failures_fail_at_once_with_one_line(error, expected, sleeps):
    call = Flaky(error)
    with pytest.raises(PushError) as info:
        retry_transient(call, what="uploading x to model repo me/x")
    assert call.calls == 1 and sleeps == []
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("uploading x to model repo me/x failed: ")
    assert expected in message


def test_tries_are_bounded(sleeps):
    call = Flaky(*[http_error(502)] * 10)
    with pytest.raises(PushError, match="failed after 3 tries: HTTP 502"):
        retry_transient(call, what="upload", max_tries=3, base_delay_s=1.0)
    assert call.calls == 3
    assert sleeps == [1.0, 2.0]


def test_default_ignore_patterns_keep_the_pipeline_and_drop_training_debris():
    published = [
        "model_index.json",
        "README.md",
        "sample_grid.png",
        "character_pipeline.py",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
    ]
    debris = [
        "checkpoints/step_100/model.safetensors",
        "checkpoints/step_100/optimizer.bin",
        "checkpoint-500/random_states_0.pkl",
        "logs/train.log",
        "logs/events.out.tfevents.1700000000.host",
        "runs/exp/events.out.tfevents.1",
        "last.ckpt",
        "optimizer.pt",
        "__pycache__/character_pipeline.cpython-311.pyc",
        "run/checkpoints/step_1/model.safetensors",
    ]
    kept = list(filter_repo_objects(published + debris, ignore_patterns=DEFAULT_IGNORE_PATTERNS))
    assert kept == published


def test_push_folder_rejects_a_missing_folder(tmp_path):
    with pytest.raises(PushError, match="not-there: not a folder"):
        push_folder(tmp_path / "not-there", "me/x")


def test_push_cli_rejects_a_folder_without_model_index(tmp_path, capsys):
    (tmp_path / "unet").mkdir()
    with pytest.raises(SystemExit) as info:
        push_cli.main([str(tmp_path), "--repo_id", "me/x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}: not a saved pipeline (no model_index.json)" in err


def test_push_cli_failure_is_one_line_and_exit_code_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the Hub refuses every request, as on a plane
    (tmp_path / "model_index.json").write_text("{}")
    assert push_cli.main([str(tmp_path), "--repo_id", "me/x"]) == 1
    assert capsys.readouterr().err == (
        "error: creating model repo me/x failed: HF_HUB_OFFLINE is set; unset it (export HF_HUB_OFFLINE=0) to push\n"
    )
