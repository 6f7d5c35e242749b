"""The loop in-process with a tiny seeded UNet: one step, EMA, checkpoints, resume, class conditioning."""

import json

import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
from safetensors.torch import load_file

import train_ddpm
from tests.train_helpers import FAST_ARGS, make_dataset_dict, make_trainer, reset_accelerate_state
from training.checkpointing import list_checkpoints
from training.config import ConfigError
from training.draws import GlobalBatchDraws
from training.losses import (
    diffusion_loss,
    immiscible_noise,
    log_normal_timestep_probabilities,
    snr_weights,
    training_target,
)
from training.timesteps import TIMESTEP_SAMPLINGS

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # tests/conftest.py


def run(blobs, output_dir, *extra):
    train_ddpm.main(["--dataset", blobs, "--output_dir", str(output_dir), *FAST_ARGS, *extra])
    reset_accelerate_state()


def unet_weights(folder):
    return load_file(str(next((folder / "unet").glob("*.safetensors"))))


def test_one_optimizer_step_changes_the_weights(blobs, tmp_path):
    trainer = make_trainer(blobs, tmp_path, "--max_train_steps", "1", "--lr_warmup_steps", "0")
    before = {k: v.clone() for k, v in trainer.unet.state_dict().items()}
    images, labels = next(iter(trainer.batches.loader))
    assert images.shape == (8, 1, 16, 16) and images.dtype == torch.uint8
    trainer.train()
    assert trainer.progress.global_step == 1
    loss = trainer.progress.history[-1]["train_loss"]
    assert loss == loss and 0 < loss < 10  # finite
    changed = [k for k, v in trainer.unet.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2


def test_targets_and_min_snr_weights():
    scheduler = DDPMScheduler(num_train_timesteps=1000, prediction_type="v_prediction")
    clean, noise = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    t = torch.tensor([0, 10, 500, 999])
    alpha_bar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    v = alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * clean  # Salimans & Ho 2022, sec. 4
    assert torch.allclose(training_target(scheduler, clean, noise, t), v, atol=1e-6)
    eps_scheduler = DDPMScheduler(num_train_timesteps=1000)
    weights = snr_weights(eps_scheduler, t, snr_gamma=5.0)
    snr = eps_scheduler.alphas_cumprod[t] / (1 - eps_scheduler.alphas_cumprod[t])
    assert torch.allclose(weights, torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert weights[0] < 0.01 and weights[-1] == pytest.approx(1.0)  # low noise down-weighted, high noise kept
    plain = diffusion_loss(clean, noise, eps_scheduler, t)
    assert plain == pytest.approx(((clean - noise) ** 2).mean().item(), rel=1e-5)


def test_log_normal_timesteps_follow_the_noise_level_distribution():
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    probabilities = log_normal_timestep_probabilities(scheduler, mean=-1.2, std=1.2)
    assert probabilities.shape == (1000,) and probabilities.sum().item() == pytest.approx(1.0, abs=1e-6)
    sigma = ((1 - scheduler.alphas_cumprod) / scheduler.alphas_cumprod).sqrt()
    # The mass of t with ln(sigma_t) within one std of the mean is the normal's 68%.
    within = (sigma.log() - (-1.2)).abs() <= 1.2
    assert probabilities[within].sum().item() == pytest.approx(0.6827, abs=0.01)
    median = int(torch.searchsorted(probabilities.cumsum(0), torch.tensor(0.5)))
    assert abs(sigma[median].log().item() - (-1.2)) < 0.05  # half the steps below the mean noise level
    draws = GlobalBatchDraws(0, torch.device("cpu"))
    t = draws.categorical(probabilities, 20_000)
    assert t.dtype == torch.int64 and (t >= 0).all() and (t < 1000).all()
    assert (within[t].float().mean().item()) == pytest.approx(0.6827, abs=0.02)


def test_a_log_normal_run_trains(blobs, tmp_path):
    trainer = make_trainer(blobs, tmp_path, "--max_train_steps", "2", "--timestep_sampling", "log_normal")
    # the run draws its timesteps from the log-normal registry entry, not from U{0..T-1}: compare the shares of
    # ten bands of t with those of the distribution
    scheduler, cpu = trainer.noise_scheduler, torch.device("cpu")
    expected = log_normal_timestep_probabilities(scheduler, trainer.cfg.log_normal_mean, trainer.cfg.log_normal_std)

    def band_shares(t):
        return torch.bincount(t * 10 // scheduler.config.num_train_timesteps, minlength=10).float() / len(t)

    bands = torch.arange(len(expected)) * 10 // len(expected)
    expected_shares = torch.zeros(10).index_add_(0, bands, expected)
    drawn = band_shares(trainer.sample_timesteps(GlobalBatchDraws(0, cpu), 20_000))
    uniform = band_shares(TIMESTEP_SAMPLINGS["uniform"](scheduler, trainer.cfg, cpu)(GlobalBatchDraws(0, cpu), 20_000))
    assert (drawn - expected_shares).abs().sum() < 0.05 < (uniform - expected_shares).abs().sum()
    trainer.train()
    assert trainer.progress.global_step == 2 and trainer.progress.history[-1]["train_loss"] < 10


def test_checkpoints_rotate_and_are_never_partial(blobs, tmp_path):
    run(blobs, tmp_path, "--max_train_steps", "6", "--checkpointing_steps", "2", "--checkpoints_total_limit", "2")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-4", "checkpoint-6"]
    assert not list(tmp_path.glob(".checkpoint-*"))
    saved = sorted(p.name for p in (tmp_path / "checkpoint-6").iterdir())
    assert {"model.safetensors", "optimizer.bin", "random_states_0.pkl"} <= set(saved)
    assert len([name for name in saved if name.startswith("custom_checkpoint_")]) == 4  # LR, progress, draws, EMA


def test_resume_latest_matches_an_uninterrupted_run(blobs, tmp_path):
    """Resume from checkpoint-4 of 8 steps: same step count, LR, data order and RNG, so the same weights.

    Both runs do the same float32 arithmetic on the same CPU in the same order, so the weights agree to
    1e-6; the tolerance only allows for threads summing in a different order.
    """
    args = ("--max_train_steps", "8", "--checkpointing_steps", "4", "--checkpoints_total_limit", "3",
            "--validation_steps", "4", "--save_images_steps", "4")
    run(blobs, tmp_path / "full", *args)
    run(blobs, tmp_path / "resumed", *args)
    # Pretend the second run died right after its first checkpoint.
    resumed = tmp_path / "resumed"
    for leftover in ("checkpoint-8", "unet", "model_index.json"):
        target = resumed / leftover
        if target.is_dir():
            import shutil

            shutil.rmtree(target)
        else:
            target.unlink()
    run(blobs, resumed, *args, "--resume_from_checkpoint", "latest")
    full, again = unet_weights(tmp_path / "full"), unet_weights(resumed)
    assert full.keys() == again.keys()
    for name in full:
        torch.testing.assert_close(again[name], full[name], atol=1e-6, rtol=0)
    steps = [row["step"] for row in json.loads(json.dumps(_csv_rows(resumed / "losses.csv")))]
    assert steps[-1] == "8"


def _csv_rows(path):
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_ema_state_survives_a_checkpoint(blobs, tmp_path):
    trainer = make_trainer(blobs, tmp_path, "--max_train_steps", "3", "--checkpointing_steps", "3")
    trainer.start()
    trainer.train()
    shadow = [p.clone() for p in trainer.ema.shadow_params]
    online = [p.detach().clone() for p in trainer.unet.parameters()]
    assert any(not torch.equal(s, o) for s, o in zip(shadow, online))  # EMA lags the online weights
    reset_accelerate_state()
    restored = make_trainer(blobs, tmp_path, "--max_train_steps", "3", "--resume_from_checkpoint", "latest")
    restored.start()
    assert restored.ema.optimization_step == 3 and restored.progress.global_step == 3
    for a, b in zip(restored.ema.shadow_params, shadow):
        assert torch.equal(a, b)
    # The model that is saved and sampled from carries the EMA weights, not the online ones.
    final = restored.final_unet()
    assert all(torch.equal(p, s) for p, s in zip(final.parameters(), shadow))


def test_class_conditional_run_saves_class_names(blobs, tmp_path):
    run(blobs, tmp_path, "--max_train_steps", "2", "--class_conditional")
    index = json.loads((tmp_path / "model_index.json").read_text(encoding="utf-8"))
    assert "□" in json.dumps(index, ensure_ascii=False) and "|" in json.dumps(index, ensure_ascii=False)
    unet = UNet2DModel.from_pretrained(str(tmp_path / "unet"))
    assert unet.config.num_class_embeds == 3  # two classes + the null class


def test_class_conditional_without_labels_is_refused(tmp_path):
    plain = str(make_dataset_dict(tmp_path / "plain", labelled=False))
    with pytest.raises(ConfigError, match="--class_conditional needs labels"):
        run(plain, tmp_path / "out", "--max_train_steps", "1", "--class_conditional")


def test_gradient_accumulation_counts_optimizer_steps(blobs, tmp_path):
    trainer = make_trainer(blobs, tmp_path, "--max_train_steps", "3", "--gradient_accumulation_steps", "2",
                           "--lr_warmup_steps", "10", "--lr_scheduler", "constant_with_warmup")
    trainer.train()
    assert trainer.progress.global_step == 3
    assert trainer.ema.optimization_step == 3
    # three optimizer steps of warm-up (not six micro-batches): lr = 3/10 of the peak
    assert trainer.lr_scheduler.get_last_lr()[0] == pytest.approx(0.3 * 1e-3)


def test_data_too_large_for_memory_is_decoded_per_batch(blobs, tmp_path):
    from training.data import DecodedImages, TensorImages

    in_memory = make_trainer(blobs, tmp_path / "a")
    reset_accelerate_state()
    streamed = make_trainer(blobs, tmp_path / "b", "--max_in_memory_gb", "0")
    assert isinstance(in_memory.batches.loader.dataset, TensorImages)
    assert isinstance(streamed.batches.loader.dataset, DecodedImages)
    (a_images, a_labels), (b_images, b_labels) = (
        next(iter(in_memory.batches.loader)),
        next(iter(streamed.batches.loader)),
    )
    assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)  # same batch, same order


def test_time_budget_stops_at_a_logging_step_and_saves_everything(blobs, tmp_path):
    """A budget far below one logging window stops the run at the first logged step (10), not at 50."""
    run(blobs, tmp_path, "--max_train_steps", "50", "--max_train_minutes", "1e-6", "--checkpointing_steps", "100")
    config = json.loads((tmp_path / "unet" / "config.json").read_text())
    assert config["sample_size"] == 16
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-10"]  # resumable with a larger budget
    steps = [row["step"] for row in _csv_rows(tmp_path / "losses.csv")]
    assert steps[-1] == "10"
    pipeline = DDPMPipeline.from_pretrained(str(tmp_path))
    assert pipeline(batch_size=1, num_inference_steps=2, output_type="np").images.shape == (1, 16, 16, 1)



def test_snapshots_are_saved_as_pipelines_when_their_minute_passes(blobs, tmp_path):
    run(blobs, tmp_path, "--max_train_steps", "50", "--max_train_minutes", "1e-6", "--snapshot_minutes", "1e-7")
    snapshot = tmp_path / "snapshots" / "1e-07min"
    progress = json.loads((snapshot / "progress.json").read_text())
    assert progress["global_step"] == 10  # the first logging step past the minute
    assert torch.equal(unet_weights(snapshot)["conv_in.weight"], unet_weights(tmp_path)["conv_in.weight"])
    pipeline = DDPMPipeline.from_pretrained(str(snapshot))
    assert pipeline(batch_size=1, num_inference_steps=2, output_type="np").images.shape == (1, 16, 16, 1)


def test_immiscible_noise_is_a_permutation_that_pairs_images_with_nearer_noise():
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(16, 1, 8, 8, generator=generator) * 2 - 1
    noise = torch.randn(16, 1, 8, 8, generator=generator)
    paired = immiscible_noise(clean, noise)
    assert sorted(paired.flatten(1).sum(1).tolist()) == sorted(noise.flatten(1).sum(1).tolist())  # same samples
    total = lambda eps: (clean - eps).flatten(1).norm(dim=1).sum().item()  # noqa: E731
    assert total(paired) < total(noise)
    # the smallest total: no swap of two images' noise makes it smaller
    for i in range(16):
        for j in range(i + 1, 16):
            swapped = paired.clone()
            swapped[[i, j]] = paired[[j, i]]
            assert total(swapped) >= total(paired) - 1e-4
