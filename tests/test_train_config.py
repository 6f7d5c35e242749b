"""The typed config: defaults, config files, overrides and start-up errors."""

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from training.config import ConfigError, TrainConfig, build_parser, parse_config
from training.model import build_unet


def test_defaults_come_from_the_dataclass():
    cfg = parse_config([])
    assert cfg == TrainConfig()
    assert cfg.use_ema and not cfg.random_flip and cfg.class_dropout == 0.1


def test_every_field_has_a_flag_with_help():
    actions = {a.dest: a for a in build_parser()._actions}
    for name in TrainConfig.__dataclass_fields__:
        assert name in actions, name
        assert actions[name].help and actions[name].help.strip(), f"--{name} has no help"


def test_diffusers_flag_names_are_kept():
    flags = set(re.findall(r"--[\w-]+", build_parser().format_help()))
    for flag in ("--resolution", "--train_batch_size", "--num_epochs", "--max_train_steps",
                 "--gradient_accumulation_steps", "--learning_rate", "--lr_scheduler", "--lr_warmup_steps",
                 "--adam_beta1", "--adam_beta2", "--adam_weight_decay", "--use_ema", "--ema_max_decay",
                 "--ema_inv_gamma", "--ema_power", "--mixed_precision", "--checkpointing_steps",
                 "--checkpoints_total_limit", "--resume_from_checkpoint", "--prediction_type", "--ddpm_num_steps",
                 "--ddpm_beta_schedule", "--logger", "--logging_dir", "--push_to_hub", "--hub_model_id", "--seed",
                 "--dataloader_num_workers"):
        assert flag in flags, flag


def test_yaml_file_sets_values_and_flags_override_it(tmp_path):
    file = tmp_path / "run.yaml"
    # YAML 1.1 reads 1e-3 as a string; the loader converts it to the field's type.
    file.write_text("learning_rate: 1e-3\ntrain_batch_size: 32\nblock_out_channels: [16, 32]\nuse_ema: false\n")
    cfg = parse_config(["--config", str(file), "--train_batch_size", "8"])
    assert cfg.learning_rate == pytest.approx(1e-3)
    assert cfg.train_batch_size == 8  # the flag wins over the file
    assert cfg.block_out_channels == (16, 32)
    assert cfg.use_ema is False


def test_json_file(tmp_path):
    file = tmp_path / "run.json"
    file.write_text(json.dumps({"prediction_type": "epsilon", "snr_gamma": None, "ddpm_beta_schedule": "linear"}))
    cfg = parse_config(["--config", str(file)])
    assert (cfg.prediction_type, cfg.snr_gamma, cfg.ddpm_beta_schedule) == ("epsilon", None, "linear")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--class_dropout", "1.5"], "--class_dropout"),
        (["--snr_gamma", "0"], "--snr_gamma"),
        (["--push_to_hub"], "--hub_model_id"),
        (["--model_config_name_or_path", "x", "--block_out_channels", "8", "16"], "contradict"),
        (["--prediction_type", "noise"], "prediction_type"),
        (["--checkpoints_total_limit", "0"], "--checkpoints_total_limit"),
        (["--max_train_steps", "0"], "--max_train_steps"),
        (["--streaming"], "--streaming needs --max_train_steps N"),
        (["--shuffle_buffer_size", "0"], "--shuffle_buffer_size"),
        (["--timestep_sampling", "log_normal", "--log_normal_std", "0"], "--log_normal_std must be positive"),
        (["--timestep_sampling", "beta"], "invalid choice: 'beta'"),
    ],
)
def test_bad_settings_exit_2_with_one_sentence(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert words in message and "Traceback" not in message


@pytest.mark.parametrize(
    "content, words",
    [("learning_rat: 0.1\n", "unknown setting(s) learning_rat"),
     ("- a\n- b\n", "mapping"),
     ("train_batch_size: many\n", "train_batch_size"),
     ("prediction_type: noise\n", "prediction_type")],
)
def test_bad_config_files(tmp_path, content, words, capsys):
    file = tmp_path / "bad.yaml"
    file.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--config", str(file)])
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


def test_missing_config_file(capsys):
    with pytest.raises(SystemExit):
        parse_config(["--config", "no/such/file.yaml"])
    assert "no/such/file.yaml" in capsys.readouterr().err


def test_resolution_the_unet_cannot_halve():
    cfg = parse_config(["--block_out_channels", "8", "16", "32", "--norm_num_groups", "4"])
    with pytest.raises(ConfigError, match="--resolution 30 .* multiple of 4"):
        build_unet(cfg, resolution=30, channels=1, num_classes=None)
    assert build_unet(cfg, resolution=28, channels=1, num_classes=None).config.sample_size == 28


def test_norm_groups_must_divide_channels():
    cfg = parse_config(["--block_out_channels", "8", "12", "--norm_num_groups", "8"])
    with pytest.raises(ConfigError, match="--norm_num_groups"):
        build_unet(cfg, resolution=16, channels=1, num_classes=None)


def test_cli_error_is_one_line_and_exit_2(tmp_path):
    """The real entry point: a data-level error (no such prepared dataset) is one line, exit code 2."""
    result = subprocess.run(
        [sys.executable, "train_ddpm.py", "--dataset", "persian", "--data_dir", str(tmp_path), "--logger", "none",
         "--output_dir", str(tmp_path / "out")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "python -m data_prep persian" in lines[0]
    assert not (tmp_path / "out").exists()


def test_optional_numbers_take_none_on_the_command_line():
    assert parse_config([]).snr_gamma == 5.0
    assert parse_config(["--snr_gamma", "none"]).snr_gamma is None
    assert parse_config(["--max_train_minutes", "None", "--snr_gamma", "2.5"]).snr_gamma == 2.5


def test_every_timestep_sampling_choice_is_in_the_registry():
    from training.config import TIMESTEP_SAMPLINGS as CHOICES
    from training.timesteps import TIMESTEP_SAMPLINGS

    assert tuple(TIMESTEP_SAMPLINGS) == CHOICES
