"""The random numbers of a training step, drawn so that they do not depend on how many processes share it.

Each step draws the noise eps ~ N(0, I), the timesteps t ~ U{0..T-1}, the label drops of classifier-free
guidance and the flips for the whole *global* micro-batch (all processes together), from one generator that
every process seeds alike; each process keeps its own slice. With `EpochBatchSampler` splitting every global
batch the same way, one process at batch 2B, two at batch B on one machine and one per machine on two machines
see the same images with the same noise and, the gradients being averaged across processes, end with the same
weights up to float summation order (tests/test_multi_node.py). Each process draws the global batch's numbers:
one `randn` of processes x batch x image, small beside a training step at any process count used here.
"""

from __future__ import annotations

import torch


class GlobalBatchDraws:
    """One seeded generator for the global micro-batch; `normal`, `uniform` and `integers` return this process's slice.

    Registered with `accelerator.register_for_checkpointing`, so a resumed run continues the sequence.

    Args:
        seed (`int`): the run's seed, the same on every process.
        device (`torch.device`): where the numbers are drawn (the training device).
        num_processes (`int`): processes sharing each global micro-batch.
        rank (`int`): this process's index in [0, num_processes).
    """

    def __init__(self, seed: int, device: torch.device, num_processes: int = 1, rank: int = 0):
        self.device, self.num_processes, self.rank = device, num_processes, rank
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def _mine(self, values: torch.Tensor, batch_size: int) -> torch.Tensor:
        return values[self.rank * batch_size:(self.rank + 1) * batch_size]

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal numbers of `shape` = (B, ...) for this process's B images of the global batch."""
        full = (shape[0] * self.num_processes, *shape[1:])
        return self._mine(torch.randn(full, generator=self.generator, device=self.device), shape[0])

    def uniform(self, batch_size: int) -> torch.Tensor:
        """U[0, 1) numbers (B,) for this process's images."""
        full = torch.rand(batch_size * self.num_processes, generator=self.generator, device=self.device)
        return self._mine(full, batch_size)

    def integers(self, high: int, batch_size: int) -> torch.Tensor:
        """Integers in [0, high) (B,) for this process's images."""
        full = torch.randint(0, high, (batch_size * self.num_processes,), generator=self.generator, device=self.device)
        return self._mine(full, batch_size)

    def categorical(self, probabilities: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Indices drawn with `probabilities` (K,) (B,) for this process's images."""
        full = torch.multinomial(probabilities.to(self.device), batch_size * self.num_processes, replacement=True,
                                 generator=self.generator)
        return self._mine(full, batch_size)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
