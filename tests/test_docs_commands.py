"""Every command the docs show parses with its own parser, so a renamed or newly required flag fails here."""

import json
import subprocess
import sys

from tests.docs_commands import DOC_FILES, REPO, doc_commands


def parse_all(argvs: list[list[str]]) -> list[dict]:
    """Parse each argv with `tests/docs_commands.py` in one fresh interpreter (offline); one result per argv."""
    result = subprocess.run([sys.executable, "-m", "tests.docs_commands"], input=json.dumps(argvs), cwd=REPO,
                            capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_commands_are_found_in_blocks_spans_and_continued_lines(tmp_path, monkeypatch):
    doc = REPO / "docs" / "_extractor_check.md"
    text = ("Run `python -m evaluation` (the tool, no command), or `python -m pipelines.push\nMODEL --repo_id a/b`.\n\n"
            "```bash\nCUDA_VISIBLE_DEVICES=0 accelerate launch train_ddpm.py \\\n    --dataset glyphs  # a comment\n"
            "python -m pipelines.generate M [--steps 4] ... && python -m pytest -q\n"
            'srun bash -c "accelerate launch --machine_rank $SLURM_PROCID train_ddpm.py --seed 1"\n```\n')
    doc.write_text(text, encoding="utf-8")
    try:
        found = [(c.line, c.argv) for c in doc_commands(doc)]
    finally:
        doc.unlink()
    assert found == [
        (1, ("python", "-m", "pipelines.push", "MODEL", "--repo_id", "a/b")),
        (5, ("accelerate", "launch", "train_ddpm.py", "--dataset", "glyphs")),
        (7, ("python", "-m", "pipelines.generate", "M", "--steps", "4")),
        (8, ("accelerate", "launch", "--machine_rank", "0", "train_ddpm.py", "--seed", "1")),
    ]


def test_the_parse_check_fails_on_a_wrong_or_missing_flag():
    results = parse_all([
        ["python", "-m", "pipelines.generate", "runs/x", "--num_images", "4"],
        ["python", "-m", "pipelines.generate", "runs/x", "--no_such_flag", "1"],
        ["python", "-m", "evaluation.train_classifier", "--output_dir", "x"],  # --dataset is required
        ["accelerate", "launch", "--config_file", "accelerate_config.yaml", "train_ddpm.py", "--model_preset", "huge"],
        ["python", "train_ddpm.py", "--config", "configs/no_such.yaml"],
    ])  # fmt: skip
    assert [r["ok"] for r in results] == [True, False, False, False, False], results
    assert "--no_such_flag" in results[1]["error"] and "--dataset" in results[2]["error"]
    assert "huge" in results[3]["error"] and "no_such.yaml" in results[4]["error"]


def test_every_command_in_the_readme_and_docs_parses():
    commands = [command for doc in DOC_FILES for command in doc_commands(doc)]
    assert len(commands) >= 50, "the extractor stopped finding the docs' commands"
    results = parse_all([list(command.argv) for command in commands])
    assert len(results) == len(commands)
    failures = [
        f"{command}\n    -> {result['error']}" for command, result in zip(commands, results) if not result["ok"]
    ]
    assert not failures, "doc commands that do not parse:\n" + "\n".join(failures)


def test_every_accelerate_launch_in_the_docs_names_the_projects_config_file():
    """Without `--config_file accelerate_config.yaml` accelerate warns "values were not passed" at every start."""
    launches = [command for doc in DOC_FILES for command in doc_commands(doc) if command.argv[0] == "accelerate"]
    assert launches
    bare = [str(command) for command in launches if "--config_file" not in command.argv]
    assert not bare, "accelerate launch without --config_file accelerate_config.yaml:\n" + "\n".join(bare)
