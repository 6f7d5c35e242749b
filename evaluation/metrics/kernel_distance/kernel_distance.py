"""Kernel distance (KID) between two sets of feature vectors (Bińkowski et al. 2018)."""

import datasets
import evaluate
import numpy as np

_CITATION = """\
@inproceedings{binkowski2018demystifying,
  title={Demystifying {MMD} {GAN}s},
  author={Bi{\\'n}kowski, Miko{\\l}aj and Sutherland, Danica J. and Arbel, Michael and Gretton, Arthur},
  booktitle={International Conference on Learning Representations},
  year={2018},
  note={arXiv:1801.01401}
}
"""

_DESCRIPTION = """\
Kernel distance ("KID"): the unbiased estimate of the squared maximum mean discrepancy (MMD) between
the reference (real) and evaluated (generated) feature sets, with the cubic polynomial kernel
k(x, y) = (x.y / D + 1)^3, averaged over random subsets. Unlike the Fréchet distance it has an
unbiased estimator, so small sample sets can be compared; its expectation is 0 for identical
distributions (single estimates can be slightly negative).
"""

_KWARGS_DESCRIPTION = """
Args:
    features (`list` of float vectors, or an array of shape (N, D)): feature vectors of both sets.
    is_reference (`list` of `bool`, length N): True for a reference (real) row, False for an
        evaluated (generated) row.
    subset_size (`int`, defaults to 1000): rows drawn (without replacement) from each set per subset;
        capped at the smaller set's size.
    num_subsets (`int`, defaults to 100): number of subsets averaged (1 when a subset holds both
        whole sets).
    seed (`int`, defaults to 0): seed of the subset draws.
Returns:
    kernel_distance (`float`): the mean unbiased MMD^2 over the subsets.
    kernel_distance_std (`float`): its standard deviation over the subsets.
Examples:
    >>> kid = evaluate.load("evaluation/metrics/kernel_distance")
    >>> x = np.random.default_rng(0).normal(size=(200, 8))
    >>> result = kid.compute(features=np.concatenate([x, x + 1]), is_reference=[True] * 200 + [False] * 200)
    >>> result["kernel_distance"] > 0
    True
"""


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / D + 1)^3 for rows x (N, D) and y (M, D) -> (N, M); Sec. 4 of Bińkowski et al. 2018."""
    base = x @ y.T / x.shape[1] + 1.0
    return base * base * base  # cheaper than `** 3` on large matrices


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equally sized samples (m, D), Lemma 6 of Gretton et al. 2012 (JMLR 13).

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2
    """
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)  # (m, m) each
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


# Standard `evaluate` module boilerplate, repeated on purpose in every metric: each module is loaded alone by
# path (`evaluate.load("evaluation/metrics/<name>")`) and cannot import a shared helper.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class KernelDistance(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"features": datasets.Sequence(datasets.Value("float32")), "is_reference": datasets.Value("bool")}
            ),
            reference_urls=["https://arxiv.org/abs/1801.01401"],
        )

    def _compute(self, features, is_reference, subset_size: int = 1000, num_subsets: int = 100, seed: int = 0):
        features = np.asarray(features, dtype=np.float64)  # (N, D)
        is_reference = np.asarray(is_reference, dtype=bool)  # (N,)
        reference, evaluated = features[is_reference], features[~is_reference]
        m = min(subset_size, len(reference), len(evaluated))
        if m < 2:
            raise ValueError(f"the kernel distance needs at least 2 feature vectors per set and subset, got {m}")
        if m == len(reference) == len(evaluated):
            num_subsets = 1  # every subset would hold both whole sets: one estimate says it all
        rng = np.random.default_rng(seed)
        estimates = [
            unbiased_mmd2(
                reference[rng.choice(len(reference), m, replace=False)],
                evaluated[rng.choice(len(evaluated), m, replace=False)],
            )
            for _ in range(num_subsets)
        ]
        return {
            "kernel_distance": float(np.mean(estimates)),
            "kernel_distance_std": float(np.std(estimates)),
            "num_reference": len(reference),
            "num_evaluated": len(evaluated),
        }
