"""End to end: push models and datasets to the loopback Hub server and load them back by repo id.

The clients (huggingface_hub, datasets, diffusers) read `HF_ENDPOINT` when they are imported, and the
rest of the suite runs offline, so every client here runs in a subprocess whose environment points at
the server (`HubServer.client_env`). The server runs in this process, so tests can inject failures
and look at what was stored.
"""

from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler
from PIL import Image

from pipelines import CharacterDDPMPipeline, save_pipeline
from pipelines.model_card import MODEL_PLACEHOLDER
from tests.conftest import REPO_ROOT
from tests.hub_client import folder_state, last_json, run_client
from tests.pipeline_helpers import CLASS_NAMES, tiny_unet

DEBRIS = [
    "checkpoints/step_10/optimizer.bin",
    "checkpoints/step_10/model.safetensors",
    "logs/events.out.tfevents.1",
    "last.ckpt",
]


def saved_pipeline(folder: Path, class_names: list[str] | None = None) -> Path:
    """A save_pipeline folder with a card and sample grid, plus training debris that must stay local."""
    unet = tiny_unet(len(class_names) + 1 if class_names else None)
    grid = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L")
    save_pipeline(folder, unet, DDPMScheduler(num_train_timesteps=50), class_names=class_names,
                  card_info={"dataset": "glyphs", "train_loss": 0.1}, sample_grid=grid)  # fmt: skip
    for relpath in DEBRIS:
        (folder / relpath).parent.mkdir(parents=True, exist_ok=True)
        (folder / relpath).write_bytes(b"not for the Hub " + relpath.encode())
    return folder


def local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


PUSH_CLI_THEN_LOAD = """
    import json, sys, numpy as np, torch
    from diffusers import DDPMPipeline
    from pipelines.push import main
    folder, repo_id = sys.argv[1:]
    assert main([folder, "--repo_id", repo_id]) == 0
    images = {}
    for source in (folder, repo_id):
        pipe = DDPMPipeline.from_pretrained(source)
        images[source] = pipe(batch_size=2, num_inference_steps=3, generator=torch.manual_seed(0),
                              output_type="np").images
    max_diff = float(np.abs(images[folder] - images[repo_id]).max())
    print(json.dumps({"shape": images[folder].shape, "max_diff": max_diff}))
"""


def test_unconditional_model_round_trip_through_the_hub(hub, tmp_path):
    folder = saved_pipeline(tmp_path / "model")
    before = folder_state(folder)

    result = last_json(run_client(hub, PUSH_CLI_THEN_LOAD, str(folder), "tester/uncond", home=tmp_path))

    assert result == {"shape": [2, 8, 8, 1], "max_diff": 0.0}  # stock DDPMPipeline, loaded by repo id
    published = {path: data for path, data in local_files(folder).items() if path not in DEBRIS}
    assert hub.files("tester/uncond") == published
    assert {"model_index.json", "README.md", "sample_grid.png", "unet/diffusion_pytorch_model.safetensors"} <= set(
        published
    )
    assert hub.repos[("model", "tester/uncond")].private is False
    assert folder_state(folder) == before


PUSH = """
    import sys
    from sharing import push_folder
    print(push_folder(sys.argv[1], sys.argv[2], private=sys.argv[3] == "private", base_delay_s=0.05))
"""

# Run in an empty folder after removing this project from the import system: what a Hub user has.
LOAD_WITH_REMOTE_CODE = """
    import importlib.util, os, sys
    repo_root, repo_id, out, card_snippet = sys.argv[1:]
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != repo_root]
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                        and "editable" not in getattr(f, "__name__", "").lower()]
    assert importlib.util.find_spec("pipelines") is None, "the project is still importable"
    import numpy as np, torch
    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained(repo_id, trust_remote_code=True)
    assert type(pipe).__name__ == "CharacterDDPMPipeline" and not type(pipe).__module__.startswith("pipelines")
    images = pipe(batch_size=2, class_labels="ب", num_inference_steps=2, generator=torch.manual_seed(0),
                  output_type="np").images
    np.save(out, images)
    exec(open(card_snippet, encoding="utf-8").read())  # the model card's usage code, pointed at the repo id
"""


def test_class_conditional_private_model_and_its_card_snippet_work_by_repo_id_with_remote_code(hub, tmp_path):
    folder = saved_pipeline(tmp_path / "model", CLASS_NAMES)
    url = run_client(hub, PUSH, str(folder), "tester/cond", "private", home=tmp_path)
    assert url.returncode == 0, url.stderr[-3000:]
    assert url.stdout.strip() == f"{hub.url}/tester/cond"
    assert hub.repos[("model", "tester/cond")].private is True
    assert "character_pipeline.py" in hub.files("tester/cond") and not any(
        p.startswith("checkpoints/") for p in hub.files("tester/cond")
    )

    card = hub.files("tester/cond")["README.md"].decode()
    snippet = tmp_path / "card_snippet.py"
    snippet.write_text(card.split("```python\n")[1].split("```")[0].replace(MODEL_PLACEHOLDER, "tester/cond"))
    out = tmp_path / "remote.npy"
    args = (str(REPO_ROOT), "tester/cond", str(out), str(snippet))
    loaded = run_client(hub, LOAD_WITH_REMOTE_CODE, *args, home=tmp_path, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert Image.open(tmp_path / "samples.png").size == (32, 32)  # the card's 4x4 grid of 8x8 characters

    local = CharacterDDPMPipeline.from_pretrained(folder)
    expected = local(
        batch_size=2, class_labels="ب", num_inference_steps=2, generator=torch.manual_seed(0), output_type="np"
    ).images
    np.testing.assert_array_equal(np.load(out), expected)


def small_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "DDPMPipeline"}')
    (folder / "unet").mkdir()
    (folder / "unet" / "weights.safetensors").write_bytes(bytes(range(256)) * 4)
    return folder


def test_transient_failures_are_retried_until_the_push_succeeds(hub, tmp_path):
    folder = small_folder(tmp_path / "model")
    hub.fail_next(1, status=500, path_contains="/api/repos/create")
    hub.fail_next(2, status=503, path_contains="/api/models/tester/flaky/commit/")

    result = run_client(hub, PUSH, str(folder), "tester/flaky", "public", home=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "HTTP 503" in result.stderr and "(try 2/5)" in result.stderr
    commits = [path for method, path in hub.requests if path == "/api/models/tester/flaky/commit/main"]
    assert len(commits) == 3
    assert hub.files("tester/flaky") == local_files(folder)


PERMANENT_FAILURES = """
    import json, sys
    from sharing import PushError, push_folder
    errors = []
    push_folder(sys.argv[1], "tester/public")
    for repo_id, private in (("tester/rejected", False), ("tester/down", False), ("tester/public", True)):
        try:
            push_folder(sys.argv[1], repo_id, private=private, max_tries=2, base_delay_s=0.05)
        except PushError as error:
            errors.append(str(error))
    print(json.dumps(errors))
"""


def test_permanent_failures_give_one_line_and_leave_the_folder_untouched(hub, tmp_path):
    folder = small_folder(tmp_path / "model")
    before = folder_state(folder)
    hub.fail_next(1, status=400, path_contains="/api/models/tester/rejected/commit/")
    hub.fail_next(5, status=503, path_contains="/api/models/tester/down/commit/")

    rejected, down, public = last_json(run_client(hub, PERMANENT_FAILURES, str(folder), home=tmp_path))

    assert rejected.startswith(f"uploading {folder} to model repo tester/rejected failed: HTTP 400")
    assert down.startswith(f"uploading {folder} to model repo tester/down failed after 2 tries: HTTP 503")
    assert (
        public
        == "model repo tester/public already exists and is public; make it private on the Hub or pick another repo id"
    )
    assert [p for _, p in hub.requests].count("/api/models/tester/rejected/commit/main") == 1  # no retry on 4xx
    assert [p for _, p in hub.requests].count(
        "/api/models/tester/public/commit/main"
    ) == 1  # the private push sent nothing
    assert hub.files("tester/rejected") == {} and hub.files("tester/down") == {}
    assert folder_state(folder) == before


def test_a_bad_token_fails_with_one_clear_line(hub, tmp_path):
    folder = small_folder(tmp_path / "model")
    before = folder_state(folder)

    result = run_client(hub, PUSH, str(folder), "tester/denied", "public", home=tmp_path, token="hf_wrong")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].split("PushError: ")[-1] == (
        "creating model repo tester/denied failed: HTTP 401 Invalid credentials in "
        "Authorization header; check your token (`hf auth login` or the HF_TOKEN environment variable)"
    )
    assert ("model", "tester/denied") not in hub.repos
    assert folder_state(folder) == before


DATASET_ROUND_TRIP = """
    import json, sys
    import datasets, numpy as np
    from data_prep.cli import main
    output_dir, repo_id = sys.argv[1:]
    args = ["glyphs", "--output_dir", output_dir, "--per_class", "2", "--seed", "0", "--push_to_hub",
            "--hub_model_id", repo_id, "--hub_private_repo"]
    assert main(args) == 0
    local, loaded = datasets.load_from_disk(output_dir), datasets.load_dataset(repo_id)
    same_rows = all(
        np.array_equal(np.asarray(a["image"]), np.asarray(b["image"])) and a["label"] == b["label"]
        and b["image"].mode == "L"
        for split in local for a, b in zip(local[split], loaded[split], strict=True)
    )
    print(json.dumps({
        "rows": {split: (local[split].num_rows, loaded[split].num_rows) for split in local},
        "names": (local["train"].features["label"].names, loaded["train"].features["label"].names),
        "same_rows": same_rows,
    }))
"""


def test_data_prep_dataset_round_trip_through_the_hub(hub, tmp_path):
    result = last_json(run_client(hub, DATASET_ROUND_TRIP, str(tmp_path / "glyphs"), "tester/glyphs", home=tmp_path))

    assert result["same_rows"] is True
    assert all(local == loaded and local > 0 for local, loaded in result["rows"].values())
    local_names, loaded_names = result["names"]
    assert loaded_names == local_names and loaded_names[:2] == ["۰", "۱"] and "ب" in loaded_names
    assert hub.repos[("dataset", "tester/glyphs")].private is True
    files = hub.files("tester/glyphs", repo_type="dataset")
    assert any(path.endswith(".parquet") for path in files)
    card = files["README.md"].decode()
    assert "dataset_info:" in card and "python -m data_prep glyphs" in card  # data_prep's card, with datasets' metadata


PUSH_SPACE = """
    import sys
    from sharing import push_folder
    print(push_folder(sys.argv[1], "tester/glyph-demo", repo_type="space"))
"""


def test_space_folder_is_published_as_a_gradio_space(hub, tmp_path):
    folder = tmp_path / "space"
    folder.mkdir()
    (folder / "README.md").write_text("---\ntitle: Glyph demo\nsdk: gradio\napp_file: app.py\n---\n# Demo\n")
    (folder / "app.py").write_text("import gradio\n")
    (folder / "requirements.txt").write_text("diffusers\ngradio\n")

    result = run_client(hub, PUSH_SPACE, str(folder), home=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"{hub.url}/spaces/tester/glyph-demo"
    assert hub.repos[("space", "tester/glyph-demo")].sdk == "gradio"
    assert hub.files("tester/glyph-demo", repo_type="space") == local_files(folder)
