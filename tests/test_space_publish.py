"""`python -m pipelines.space`: publish the web demo with a model as a Space on the loopback Hub, then run it.

As in test_hub_push.py, every Hub client runs in a subprocess pointed at the server (`HubServer.client_env`);
the downloaded Space is then imported in a fresh interpreter that cannot see this project, as on the Hub.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from diffusers import DDPMScheduler

from pipelines import CharacterDDPMPipeline, save_pipeline
from tests.conftest import REPO_ROOT
from tests.hub_client import folder_state, last_json, run_client
from tests.hub_server import HubServer
from tests.pipeline_helpers import tiny_unet

pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[app]')")

CLASS_NAMES = ["ب", "۷"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny class-conditional pipeline, with a training checkpoint beside it that must stay local."""
    folder = tmp_path_factory.mktemp("model") / "glyphs"
    unet = tiny_unet(len(CLASS_NAMES) + 1)
    save_pipeline(folder, unet, DDPMScheduler(num_train_timesteps=50), class_names=CLASS_NAMES)
    (folder / "checkpoints" / "step_10").mkdir(parents=True)
    (folder / "checkpoints" / "step_10" / "optimizer.bin").write_bytes(b"\0not for the Space")
    return folder


def publish(hub: HubServer, *args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.space", *args],
        cwd=REPO_ROOT, env=hub.client_env(home / "hf_home"), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


DOWNLOAD = """
    import sys
    from huggingface_hub import snapshot_download
    print(snapshot_download(sys.argv[1], repo_type="space", local_dir=sys.argv[2]))
"""

# Run in the downloaded Space with this project removed from the import system: only the Space's files count.
RUN_SPACE_APP = """
    import importlib.util, json, os, sys
    repo_root, space = sys.argv[1:]
    sys.path[:] = [space] + [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != repo_root]
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                        and "editable" not in getattr(f, "__name__", "").lower()]
    os.chdir(space)
    import app, pipelines
    assert os.path.dirname(pipelines.__file__) == os.path.join(space, "pipelines"), pipelines.__file__
    model = app.parse_args([]).model
    pipe = app.load_model(model)
    grid, gif, status = app.generate(model, "ب", 4, "DPM-Solver++", 2, 1.0, 0)
    print(json.dumps({"default_model": os.path.relpath(model, space), "class_names": pipe.class_names,
                      "grid": grid.size, "gif": os.path.isfile(gif), "status": status}))
"""


def test_local_model_is_published_with_the_app_and_the_space_runs_it(hub, model_dir, tmp_path):
    before = folder_state(model_dir)

    args = ("--repo_id", "tester/glyph-demo", "--private", "--title", "Glyph demo: حروف")
    result = publish(hub, str(model_dir), *args, home=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"{hub.url}/spaces/tester/glyph-demo"
    assert folder_state(model_dir) == before
    space_repo = hub.repos[("space", "tester/glyph-demo")]
    assert space_repo.private is True and space_repo.sdk == "gradio"

    space = tmp_path / "space"
    downloaded = run_client(hub, DOWNLOAD, "tester/glyph-demo", str(space), home=tmp_path)
    assert downloaded.returncode == 0, downloaded.stderr[-3000:]
    files = {p.relative_to(space).as_posix() for p in space.rglob("*") if p.is_file() and ".cache" not in p.parts}
    expected = {"app.py", "requirements.txt", "README.md", "pipelines/__init__.py", "pipelines/character_pipeline.py",
                "model/model_index.json", "model/unet/diffusion_pytorch_model.safetensors", "model_id.txt"}
    assert expected <= files
    # the app's own project imports, found from its sources: the pipeline package, not the command-line tools
    assert {"pipelines/samplers.py", "pipelines/fast_inference.py"} <= files and "pipelines/space.py" not in files
    assert (space / "app.py").read_bytes() == (REPO_ROOT / "app.py").read_bytes()
    assert not any("checkpoints" in path for path in files)
    assert (space / "requirements.txt").read_text() == (REPO_ROOT / "space" / "requirements.txt").read_text()
    card = (space / "README.md").read_text(encoding="utf-8")
    front_matter = yaml.safe_load(card.split("---")[1])
    assert front_matter["sdk"] == "gradio" and front_matter["app_file"] == "app.py"
    assert front_matter["title"] == "Glyph demo: حروف" and "models" not in front_matter  # a bundled model: no repo
    assert "\n# Glyph demo: حروف\n" in card and "$" not in card

    ran = last_json(run_client(hub, RUN_SPACE_APP, str(REPO_ROOT), str(space), home=tmp_path, cwd=tmp_path))
    assert ran["default_model"] == "model" and ran["class_names"] == CLASS_NAMES
    assert ran["grid"] == [16, 16] and ran["gif"] and ran["status"].startswith("Drew 4 × ب")

    kwargs = dict(batch_size=2, class_labels="۷", num_inference_steps=2, output_type="np")
    bundled = CharacterDDPMPipeline.from_pretrained(space / "model")(generator=torch.manual_seed(0), **kwargs).images
    original = CharacterDDPMPipeline.from_pretrained(model_dir)(generator=torch.manual_seed(0), **kwargs).images
    np.testing.assert_array_equal(bundled, original)


PUSH_MODEL_THEN_SPACE = """
    import sys
    from sharing import push_folder
    from pipelines.space import main
    push_folder(sys.argv[1], "tester/glyph-model")
    sys.exit(main(["tester/glyph-model", "--repo_id", "tester/demo-by-id"]))
"""


def test_hub_model_id_is_named_in_the_space_and_not_copied(hub, model_dir, tmp_path):
    result = run_client(hub, PUSH_MODEL_THEN_SPACE, str(model_dir), home=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert hub.repos[("space", "tester/demo-by-id")].private is False
    files = hub.files("tester/demo-by-id", repo_type="space")
    assert not any(path.startswith("model/") for path in files)
    assert files["model_id.txt"].decode().strip() == "tester/glyph-model"
    assert files["app.py"] == (REPO_ROOT / "app.py").read_bytes()  # the app itself is not rewritten
    front_matter = yaml.safe_load(files["README.md"].decode().split("---")[1])
    assert front_matter["models"] == ["tester/glyph-model"] and front_matter["sdk"] == "gradio"


BAD_INPUTS = """
    import contextlib, io, json, sys
    from pipelines.space import main
    lines = []
    for model in sys.argv[1:]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main([model, "--repo_id", "tester/never"])
        lines.append([code, err.getvalue()])
    print(json.dumps(lines))
"""


def test_bad_models_exit_2_with_one_line_and_upload_nothing(hub, model_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    before = folder_state(broken)

    results = last_json(run_client(hub, BAD_INPUTS, str(empty), str(broken), "tester/missing", home=tmp_path))

    for code, stderr in results:
        assert code == 2 and stderr.count("\n") == 1 and stderr.startswith("error: ")
    empty_result, broken_result, missing_result = results
    assert empty_result[1] == (
        f"error: {empty}: not a saved pipeline (no model_index.json); pass a folder saved by train_ddpm.py\n"
    )
    assert broken_result[1].startswith(f"error: {broken}: the pipeline does not load (")
    assert missing_result[1] == (
        "error: tester/missing: no such folder, and no Hub model repo with a model_index.json; "
        "pass a folder saved by train_ddpm.py or a Hub model id\n"
    )
    assert ("space", "tester/never") not in hub.repos
    assert not any("tester/never" in path for _, path in hub.requests)
    assert folder_state(broken) == before
