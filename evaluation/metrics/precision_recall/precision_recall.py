"""Improved precision and recall of a generated distribution (Kynkäänniemi et al. 2019)."""

import datasets
import evaluate
import numpy as np

_CITATION = """\
@inproceedings{kynkaanniemi2019improved,
  title={Improved Precision and Recall Metric for Assessing Generative Models},
  author={Kynk{\\"a}{\\"a}nniemi, Tuomas and Karras, Tero and Laine, Samuli and Lehtinen, Jaakko and Aila, Timo},
  booktitle={Advances in Neural Information Processing Systems},
  year={2019},
  note={arXiv:1904.06991}
}
"""

_DESCRIPTION = """\
Precision and recall of distributions with k-nearest-neighbour manifolds. Each set's manifold is the
union of balls centred on its feature vectors, each ball's radius the distance to that vector's k-th
nearest neighbour in the same set. Precision is the share of generated vectors inside the real
manifold (are samples realistic?); recall is the share of real vectors inside the generated manifold
(do samples cover the data's variety?).
"""

_KWARGS_DESCRIPTION = """
Args:
    features (`list` of float vectors, or an array of shape (N, D)): feature vectors of both sets.
    is_reference (`list` of `bool`, length N): True for a reference (real) row, False for an
        evaluated (generated) row.
    k (`int`, defaults to 3): the neighbour whose distance sets each ball's radius (the paper's k=3).
    chunk_size (`int`, defaults to 1024): rows per block of the distance computation (bounds memory).
Returns:
    precision (`float`), recall (`float`): shares in [0, 1].
Examples:
    >>> pr = evaluate.load("evaluation/metrics/precision_recall")
    >>> x = np.random.default_rng(0).normal(size=(100, 4))
    >>> pr.compute(features=np.concatenate([x, x]), is_reference=[True] * 100 + [False] * 100)
    {'precision': 1.0, 'recall': 1.0, 'num_reference': 100, 'num_evaluated': 100}
"""


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows a (N, D) and b (M, D) -> (N, M)."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def knn_radii(x: np.ndarray, k: int, chunk_size: int) -> np.ndarray:
    """Distance from each row of x (N, D) to its k-th nearest other row -> (N,), Sec. 3 of the paper."""
    if len(x) <= k:
        raise ValueError(f"k-NN manifolds with k={k} need more than {k} feature vectors per set, got {len(x)}")
    radii = np.empty(len(x))
    for start in range(0, len(x), chunk_size):
        d = pairwise_distances(x[start : start + chunk_size], x)  # (chunk, N); each row holds its own 0
        radii[start : start + chunk_size] = np.partition(d, k, axis=1)[:, k]
    return radii


def share_inside(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk_size: int) -> float:
    """Share of query rows within radii[i] of some centres[i] (the manifold's indicator f of eq. (1))."""
    inside = np.empty(len(queries), dtype=bool)
    for start in range(0, len(queries), chunk_size):
        d = pairwise_distances(queries[start : start + chunk_size], centres)  # (chunk, M)
        inside[start : start + chunk_size] = (d <= radii[None, :]).any(axis=1)
    return float(inside.mean())


# Standard `evaluate` module boilerplate, repeated on purpose in every metric: each module is loaded alone by
# path (`evaluate.load("evaluation/metrics/<name>")`) and cannot import a shared helper.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PrecisionRecall(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"features": datasets.Sequence(datasets.Value("float32")), "is_reference": datasets.Value("bool")}
            ),
            reference_urls=["https://arxiv.org/abs/1904.06991"],
        )

    def _compute(self, features, is_reference, k: int = 3, chunk_size: int = 1024):
        features = np.asarray(features, dtype=np.float64)  # (N, D)
        is_reference = np.asarray(is_reference, dtype=bool)  # (N,)
        real, fake = features[is_reference], features[~is_reference]
        real_radii, fake_radii = knn_radii(real, k, chunk_size), knn_radii(fake, k, chunk_size)
        return {
            # Eq. (2): precision = mean over generated samples of f(phi_g, Phi_r); recall swaps the roles.
            "precision": share_inside(fake, real, real_radii, chunk_size),
            "recall": share_inside(real, fake, fake_radii, chunk_size),
            "num_reference": len(real),
            "num_evaluated": len(fake),
        }
