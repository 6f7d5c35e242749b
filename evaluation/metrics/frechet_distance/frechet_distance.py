"""Fréchet distance between two sets of feature vectors (the "FID" of Heusel et al. 2017)."""

import datasets
import evaluate
import numpy as np
import scipy.linalg

_CITATION = """\
@inproceedings{heusel2017gans,
  title={GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium},
  author={Heusel, Martin and Ramsauer, Hubert and Unterthiner, Thomas and Nessler, Bernhard and Hochreiter, Sepp},
  booktitle={Advances in Neural Information Processing Systems},
  year={2017},
  note={arXiv:1706.08500}
}
"""

_DESCRIPTION = """\
Fréchet distance between Gaussians fitted to two sets of feature vectors: the reference (real) set
and the evaluated (generated) set. With Inception-v3 pool features it is the usual FID; here the
features come from any extractor, e.g. a classifier trained on the domain. Zero for identical
distributions, it grows as the means move apart or the covariances differ.
"""

_KWARGS_DESCRIPTION = """
Args:
    features (`list` of float vectors, or an array of shape (N, D)): feature vectors of both sets.
    is_reference (`list` of `bool`, length N): True for a row of the reference (real) set, False for
        a row of the evaluated (generated) set.
    eps (`float`, defaults to 1e-6): added to the covariance diagonals when their product has no
        finite square root (singular covariances, e.g. fewer samples than dimensions).
Returns:
    frechet_distance (`float`): ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2}).
    num_reference (`int`), num_evaluated (`int`): the size of each set.
Examples:
    >>> fd = evaluate.load("evaluation/metrics/frechet_distance")
    >>> fd.compute(features=[[0.0], [2.0], [1.0], [3.0]], is_reference=[True, True, False, False])
    {'frechet_distance': 1.0, 'num_reference': 2, 'num_evaluated': 2}
"""


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of feature rows (N, D)."""
    if len(features) < 2:
        raise ValueError(f"the Fréchet distance needs at least 2 feature vectors per set, got {len(features)}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def frechet_distance_from_statistics(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    Eq. (6) of Heusel et al. 2017 (arXiv:1706.08500), after Dowson & Landau 1982:
    d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2}).
    """
    diff = mu1 - mu2  # (D,)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)  # (D, D), may be complex or non-finite

    def large_imaginary(root) -> float:
        """The largest imaginary part of `root` when it is more than rounding, else 0."""
        if not np.iscomplexobj(root):
            return 0.0
        largest = np.abs(root.imag).max()
        return largest if largest > 1e-3 * max(1.0, np.abs(root.real).max()) else 0.0

    if not np.isfinite(covmean).all() or large_imaginary(covmean):
        # A singular product (fewer vectors than features, or features that never vary) has no finite or no real
        # root: shift both covariances by eps * I and retry.
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Rounding leaves tiny imaginary parts on a product that is similar to a PSD matrix.
        largest = large_imaginary(covmean)
        if largest:
            raise ValueError(f"matrix square root has a large imaginary component ({largest:.3g})")
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    # The distance is non-negative; rounding can take an exact zero a hair below it.
    return float(max(value, 0.0))


# Standard `evaluate` module boilerplate, repeated on purpose in every metric: each module is loaded alone by
# path (`evaluate.load("evaluation/metrics/<name>")`) and cannot import a shared helper.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FrechetDistance(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"features": datasets.Sequence(datasets.Value("float32")), "is_reference": datasets.Value("bool")}
            ),
            reference_urls=["https://arxiv.org/abs/1706.08500"],
        )

    def _compute(self, features, is_reference, eps: float = 1e-6):
        features = np.asarray(features, dtype=np.float64)  # (N, D)
        is_reference = np.asarray(is_reference, dtype=bool)  # (N,)
        reference, evaluated = features[is_reference], features[~is_reference]
        mu_r, sigma_r = gaussian_statistics(reference)
        mu_g, sigma_g = gaussian_statistics(evaluated)
        return {
            "frechet_distance": frechet_distance_from_statistics(mu_r, sigma_r, mu_g, sigma_g, eps=eps),
            "num_reference": len(reference),
            "num_evaluated": len(evaluated),
        }
