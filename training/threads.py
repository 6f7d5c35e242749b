"""CPU threads per training process: the cores this process may use that other jobs are not using now.

Measured on 2-core machines (docs/benchmarks.md): on an idle one, 2 threads train the tiny UNet about
1.4-1.7x faster than 1; while other jobs keep the cores busy, 2 threads were several times slower than
1, since each step waits for whichever thread the OS has descheduled. Busy cores are measured over a
short window with psutil, not read from the load average: that average lags by minutes, so right
after `pip install` or `data_prep` an idle machine looked busy and trained on one thread.
"""

from __future__ import annotations

import os
import statistics

import psutil

# How long the CPU use of other jobs is sampled before training starts.
SAMPLE_SECONDS = 0.5
# Launchers whose other children are this run's other processes, not other jobs.
LAUNCHERS = ("accelerate", "torchrun", "torch.distributed.run")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under `taskset`), else all of them."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def this_job() -> list[psutil.Process]:
    """This process, its children, and its siblings when a launcher (`accelerate launch`) started several."""
    me = psutil.Process()
    family = me.children(recursive=True)
    try:
        parent = me.parent()
        if parent is not None and any(name in part for part in parent.cmdline() for name in LAUNCHERS):
            family = parent.children(recursive=True)
    except psutil.Error:
        pass
    return [me, *(p for p in family if p.pid != me.pid)]


def busy_cores_elsewhere(seconds: float = SAMPLE_SECONDS) -> float:
    """Cores' worth of CPU that processes outside this job used during the last `seconds`."""
    job = this_job()
    for process in job:
        try:
            process.cpu_percent(None)  # starts each process's counter
        except psutil.Error:
            pass
    total = psutil.cpu_percent(interval=seconds) / 100 * (psutil.cpu_count() or 1)
    ours = 0.0
    for process in job:
        try:
            ours += process.cpu_percent(None) / 100
        except psutil.Error:
            pass
    return max(0.0, total - ours)


def default_cpu_threads(num_local_processes: int, busy: float | None = None) -> int:
    """Threads for one of `num_local_processes` processes on this machine.

    Args:
        num_local_processes (`int`): training processes on this machine, which share its cores.
        busy (`float`, *optional*): cores busy with other work; measured now when None.

    Returns:
        `int`: this process's share of the usable cores, less the busy ones, and at least 1.
    """
    cores = usable_cores()
    busy = busy_cores_elsewhere() if busy is None else busy
    share = cores // max(1, num_local_processes)
    return max(1, min(share, cores - int(busy + 0.5)))


class SlowdownWatch:
    """Tells the user once when other work has made training much slower than it was earlier in the same run.

    The threads are chosen at start-up; a job started later takes cores from the run without a word, and a
    run with `--max_train_minutes` then makes far fewer steps: on a 2-core Xeon, a Persian run that shared
    its cores with other work made 632 ms a step against 330-400 ms on the idle machine. Speeds are
    compared as medians over several logging windows, so that one window holding a validation pass, a
    sample grid or a checkpoint does not count as a slowdown.

    A slowdown with no cause in sight (no other program busy, no CPU taken by a virtual machine's host) is
    the CPU's own: on a 2-core Xeon guest, two training processes ran at about 290 images/s for their first
    80 steps and at about 210 for the remaining 20 minutes with nothing else running. Nothing the user can
    stop causes it, so the watch says nothing and takes the new speed as the run's own.

    Args:
        skip (`int`): first windows left out (start-up, allocator warm-up).
        reference (`int`): windows after those whose median is the run's own speed.
        recent (`int`): latest windows whose median is compared with it.
        ratio (`float`): a recent median below `ratio` times the reference is a slowdown.
    """

    def __init__(self, skip: int = 3, reference: int = 10, recent: int = 5, ratio: float = 0.6):
        self.skip, self.reference_size, self.recent_size, self.ratio = skip, reference, recent, ratio
        self.seen, self.early, self.recent = 0, [], []
        self.rebased: float | None = None
        self.slow = False

    @property
    def reference(self) -> float | None:
        """The run's own images/s: the median of the reference windows once they are all in, or the speed it
        settled at after a slowdown nothing else explained."""
        if self.rebased is not None:
            return self.rebased
        if len(self.early) < self.reference_size:
            return None
        return statistics.median_high(self.early)

    def update(self, images_per_s: float) -> str | None:
        """Add one logging window's speed; returns a one-line warning when a slowdown begins, else None."""
        self.seen += 1
        if self.seen <= self.skip:
            return None
        if self.reference is None:
            self.early.append(images_per_s)
            return None
        self.recent = [*self.recent, images_per_s][-self.recent_size:]
        if len(self.recent) < self.recent_size:
            return None
        now = statistics.median_high(self.recent)
        if self.slow:  # warn again only after the speed has come back
            self.slow = now < 0.8 * self.reference
            return None
        if now >= self.ratio * self.reference:
            return None
        cause = slowdown_cause()
        if cause is None:
            self.rebased = now
            return None
        self.slow = True
        return (f"Training slowed to {now:.0f} images/s from {self.reference:.0f} earlier in the run: {cause}. "
                "With --max_train_minutes the run makes fewer steps.")


def steal_share(seconds: float = 0.2) -> float:
    """Share of CPU time that the host of this virtual machine gave to others during the last `seconds`
    ("steal" in Linux's /proc/stat; 0 elsewhere)."""
    return getattr(psutil.cpu_times_percent(interval=seconds), "steal", 0.0) / 100


def slowdown_cause() -> str | None:
    """What is taking this machine's CPU from the run, in words, or None when nothing visible is."""
    busy = busy_cores_elsewhere(0.2)
    if busy >= 0.5:
        return (f"other programs are using about {busy:.1f} of this machine's {psutil.cpu_count()} cores; stop them "
                "to give the run its speed back")
    steal = steal_share(0.2)
    if steal >= 0.1:
        return (f"the host of this virtual machine is giving {steal:.0%} of its CPU time to other machines "
                "(steal time), which nothing on this machine can change")
    return None
