"""What the tool picks for the machine at hand: bf16 or float32, CPU threads, the LR decay over a time budget."""

import math
import subprocess
import sys
import time

import psutil
import pytest
import torch
from accelerate import PartialState

from pipelines import CharacterDDPMPipeline, fast_inference
from pipelines.fast_inference import cpu_has_native_bf16, inference_autocast
from pipelines.samplers import fast_sampler
from tests.pipeline_helpers import tiny_unet
from training import precision, threads
from training.config import TrainConfig
from training.model import build_noise_scheduler
from training.precision import resolve_mixed_precision
from training.schedule import build_lr_scheduler
from training.threads import SlowdownWatch, busy_cores_elsewhere, default_cpu_threads

X86_WITH = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n"
X86_WITHOUT = "processor\t: 0\nmodel name\t: Other CPU\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n"
ARM_WITH = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize("text, expected", [(X86_WITH, True), (X86_WITHOUT, False), (ARM_WITH, True),
                                            ("processor\t: 0\n", None)])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, text, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert cpu_has_native_bf16(cpuinfo) is expected


def test_unreadable_cpu_flags_say_unknown(tmp_path):
    assert cpu_has_native_bf16(tmp_path / "missing") is None


def test_auto_precision_never_measures_bf16_on_a_cpu_without_it(monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *a: pytest.fail("measured on a CPU without bf16"))
    choice, reason = resolve_mixed_precision("auto", tiny_unet(), 4, PartialState(cpu=True), None)
    assert choice == "no" and "no native bf16" in reason


@pytest.mark.parametrize("speedup, expected", [(1.6, "bf16"), (1.01, "no"), (0.3, "no")])
def test_auto_precision_takes_bf16_only_where_it_measures_faster(monkeypatch, speedup, expected):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *a: speedup)
    choice, reason = resolve_mixed_precision("auto", tiny_unet(), 4, PartialState(cpu=True), None)
    assert choice == expected and f"{speedup:.2f}x" in reason


def test_auto_keeps_what_accelerate_launch_asked_for_and_explicit_values_pass(monkeypatch):
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *a: pytest.fail("measured despite a choice"))
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert resolve_mixed_precision("auto", tiny_unet(), 4, PartialState(cpu=True), None)[0] == "bf16"
    assert resolve_mixed_precision("no", tiny_unet(), 4, PartialState(cpu=True), None)[0] == "no"


def test_the_measurement_times_a_copy_and_leaves_the_model_and_rng_alone():
    unet = tiny_unet(num_class_embeds=3)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    speedup = precision.measure_bf16_speedup(unet, 4, torch.device("cpu"), 3)
    assert speedup > 0
    assert torch.equal(torch.rand(1), expected_next)  # the training noise sequence is unchanged
    assert all(torch.equal(v, before[k]) for k, v in unet.state_dict().items())


def test_inference_autocast_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(fast_inference, "cpu_has_native_bf16", lambda: True)
    assert isinstance(inference_autocast("cpu"), torch.autocast)
    monkeypatch.setattr(fast_inference, "cpu_has_native_bf16", lambda: False)
    assert not isinstance(inference_autocast("cpu"), torch.autocast)


def test_bf16_sampling_keeps_float32_samples_close_to_float32_sampling():
    scheduler = fast_sampler(build_noise_scheduler(TrainConfig()).config)
    pipe = CharacterDDPMPipeline(unet=tiny_unet().eval(), scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)

    def draw():
        return pipe(batch_size=4, num_inference_steps=5, generator=torch.Generator().manual_seed(0),
                    output_type="pt").images

    reference = draw()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = draw()
    assert fast.dtype == reference.dtype == torch.float32
    assert 0 < (fast - reference).abs().mean() < 0.05  # pixels in [0, 1]: bf16 did run, and changed little


def test_threads_are_the_usable_cores_less_those_busy_elsewhere(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    assert default_cpu_threads(1, busy=0.3) == 8  # a lightly used machine counts as idle
    assert default_cpu_threads(2, busy=0.0) == 4
    assert default_cpu_threads(1, busy=6.6) == 1  # 7 cores busy: one thread
    assert default_cpu_threads(4, busy=7.9) == 1


def test_this_jobs_own_processes_are_not_other_jobs():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        pids = {process.pid for process in threads.this_job()}
    finally:
        child.kill()
        child.wait()
    assert {psutil.Process().pid, child.pid} <= pids  # their CPU use is left out of the busy count


def test_another_jobs_cpu_use_is_counted():
    # A busy loop re-parented away from this process (started by a shell that exits at once): another job.
    script = f"import time\nwhile time.time() < {time.time() + 2.5}: pass"
    spinner = subprocess.run(["sh", "-c", f'"{sys.executable}" -c "{script}" >/dev/null 2>&1 & echo $!'],
                             capture_output=True, text=True, check=True)
    pid = int(spinner.stdout.strip())
    try:
        time.sleep(0.3)
        busy = busy_cores_elsewhere(0.8)
    finally:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
    assert busy > 0.6


def test_a_slowdown_mid_run_is_told_once_and_a_single_slow_window_is_not(monkeypatch):
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda seconds: 1.0)
    watch = SlowdownWatch(skip=2, reference=4, recent=3, ratio=0.6)
    # Start-up windows are ignored; the run's own speed is then ~300 images/s, one window (a validation pass) slow.
    warnings = [watch.update(speed) for speed in (40, 90, 300, 310, 290, 305, 80, 300, 295)]
    assert watch.reference == 305 and warnings == [None] * 9
    warnings = [watch.update(speed) for speed in (120, 110, 115, 100, 118)]  # another job takes a core
    told = [w for w in warnings if w is not None]
    assert len(told) == 1 and "120 images/s from 305" in told[0] and "about 1.0" in told[0]
    assert warnings.index(told[0]) == 1  # as soon as most of the recent windows are slow
    again = [watch.update(speed) for speed in (300, 300, 300, 100, 100, 100)]  # back to speed, then slow again
    assert sum(w is not None for w in again) == 1


def test_a_slowdown_with_nothing_else_running_is_not_blamed_on_other_programs(monkeypatch):
    busy = {"cores": 0.0}
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda seconds: busy["cores"])
    monkeypatch.setattr(threads, "steal_share", lambda seconds: 0.0)
    watch = SlowdownWatch(skip=1, reference=3, recent=3, ratio=0.8)
    # Fast early windows, then the CPU's own steady speed (the two-process run on an idle Xeon): no warning,
    # and that speed becomes the run's own...
    warnings = [watch.update(speed) for speed in (50, 290, 295, 290, 210, 205, 210, 212, 208)]
    assert warnings == [None] * 9 and watch.reference == 210
    # ...so that a job started later is still told, measured from the steady speed.
    busy["cores"] = 1.0
    warnings = [watch.update(speed) for speed in (120, 118, 121)]
    told = [w for w in warnings if w is not None]
    assert len(told) == 1 and "from 210" in told[0] and "stop them" in told[0]


def test_a_virtual_machines_host_taking_the_cpu_is_named(monkeypatch):
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda seconds: 0.1)
    monkeypatch.setattr(threads, "steal_share", lambda seconds: 0.4)
    watch = SlowdownWatch(skip=0, reference=2, recent=2, ratio=0.6)
    told = [w for w in (watch.update(speed) for speed in (300, 300, 100, 100)) if w is not None]
    assert len(told) == 1 and "40% of its CPU time" in told[0] and "other programs" not in told[0]
    assert 0.0 <= threads.steal_share(0.05) <= 1.0


def cosine_scheduler(budget, minutes=10.0, schedule="cosine"):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cfg = TrainConfig(lr_scheduler=schedule, lr_warmup_steps=10, max_train_minutes=minutes)
    return build_lr_scheduler(cfg, optimizer, 1000, lambda: budget["used"])


def test_the_learning_rate_decays_over_the_time_budget():
    budget = {"used": 0.0}
    scheduler = cosine_scheduler(budget)
    for _ in range(20):  # past warm-up, with no time used: the step count alone sets the rate
        scheduler.step()
    assert scheduler.get_last_lr()[0] == pytest.approx(0.5 * (1 + math.cos(math.pi * 10 / 990)), rel=1e-4)
    budget["used"] = 0.5  # half the time gone: half way down the cosine, whatever the step
    scheduler.step()
    assert scheduler.get_last_lr()[0] == pytest.approx(0.5, abs=1e-3)
    budget["used"] = 1.0
    scheduler.step()
    assert scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-6)


def test_warm_up_and_constant_schedules_ignore_the_clock():
    budget = {"used": 0.9}
    scheduler = cosine_scheduler(budget)
    for _ in range(5):
        scheduler.step()
    assert scheduler.get_last_lr()[0] == pytest.approx(0.5)  # step 5 of a 10-step warm-up
    constant = cosine_scheduler(budget, schedule="constant_with_warmup")
    for _ in range(50):
        constant.step()
    assert constant.get_last_lr()[0] == pytest.approx(1.0)
