"""Tests of the `evaluate` metric modules in evaluation/metrics against cases computed independently."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.stats import ortho_group

from evaluation.metrics import METRIC_NAMES, METRICS_DIR, load_metric
from tests.conftest import REPO_ROOT


def two_sets(reference: np.ndarray, evaluated: np.ndarray) -> dict:
    """The metrics' input columns for a reference set and an evaluated set."""
    return {
        "features": np.concatenate([reference, evaluated]),
        "is_reference": [True] * len(reference) + [False] * len(evaluated),
    }


def with_moments(rng, n: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """n samples whose sample mean and unbiased sample covariance are exactly `mean` and `cov`."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(axis=0)
    sample_cov = np.atleast_2d(np.cov(z, rowvar=False))
    z = z @ np.linalg.inv(np.linalg.cholesky(sample_cov)).T  # whiten: cov(z) = I
    return z @ np.linalg.cholesky(cov).T + mean


def strokes(rng, n: int, size: int = 8) -> np.ndarray:
    """n small images (n, size, size), each a random bright horizontal or vertical bar."""
    images = np.zeros((n, size, size))
    for image, position, vertical in zip(images, rng.integers(1, size - 1, n), rng.integers(0, 2, n)):
        if vertical:
            image[:, position] = 1.0
        else:
            image[position, :] = 1.0
    return images + 0.05 * rng.normal(size=images.shape)


# --- Fréchet distance -------------------------------------------------------------------------------


def test_frechet_distance_of_two_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    dim = 4
    q = ortho_group.rvs(dim, random_state=1)  # a shared eigenbasis: the covariances commute
    a, b = np.array([1.0, 2.0, 0.5, 3.0]), np.array([2.0, 0.5, 0.5, 1.0])
    mu1, mu2 = np.zeros(dim), np.array([1.0, -2.0, 0.0, 0.5])
    x = with_moments(rng, 500, mu1, q @ np.diag(a) @ q.T)
    y = with_moments(rng, 300, mu2, q @ np.diag(b) @ q.T)
    # For commuting covariances Tr((S1 S2)^{1/2}) = sum sqrt(a_i b_i).
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    result = load_metric("frechet_distance").compute(**two_sets(x, y))
    assert result["frechet_distance"] == pytest.approx(expected, rel=1e-5)
    assert (result["num_reference"], result["num_evaluated"]) == (500, 300)


def test_frechet_distance_in_one_dimension():
    # Between N(m1, s1^2) and N(m2, s2^2) the distance is (m1 - m2)^2 + (s1 - s2)^2.
    rng = np.random.default_rng(1)
    x = with_moments(rng, 100, np.array([1.0]), np.array([[4.0]]))
    y = with_moments(rng, 100, np.array([-0.5]), np.array([[0.25]]))
    value = load_metric("frechet_distance").compute(**two_sets(x, y))["frechet_distance"]
    assert value == pytest.approx(1.5**2 + 1.5**2, rel=1e-6)


def test_frechet_distance_is_zero_for_a_set_against_itself_and_grows_with_a_shift():
    x = np.random.default_rng(2).normal(size=(400, 16))
    fd = load_metric("frechet_distance")
    values = [fd.compute(**two_sets(x, x + shift))["frechet_distance"] for shift in (0.0, 0.1, 0.5, 1.0)]
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert values == sorted(values) and values[1] > 0
    # A shift of every coordinate by s moves the mean by s^2 * D and leaves the covariance alone.
    assert values[3] == pytest.approx(16 * 1.0, rel=1e-6)


def test_frechet_distance_grows_with_blur():
    rng = np.random.default_rng(3)
    real, held_out = strokes(rng, 300), strokes(rng, 300)
    fd = load_metric("frechet_distance")
    values = [
        fd.compute(**two_sets(real.reshape(300, -1), gaussian_filter(held_out, (0, s, s)).reshape(300, -1)))[
            "frechet_distance"
        ]
        for s in (0.0, 0.7, 1.5)
    ]
    assert values == sorted(values) and values[2] > 2 * values[0]


def test_frechet_distance_with_singular_covariances_is_finite():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(10, 32)), rng.normal(size=(12, 32)) + 1.0  # fewer samples than dimensions
    value = load_metric("frechet_distance").compute(**two_sets(x, y))["frechet_distance"]
    assert np.isfinite(value) and value > 32 * 0.5


def test_streaming_batches_give_the_same_result_as_one_call():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(300, 8)), rng.normal(size=(200, 8)) * 1.3
    fd = load_metric("frechet_distance")
    for start in range(0, 300, 64):
        fd.add_batch(features=x[start : start + 64], is_reference=[True] * len(x[start : start + 64]))
    for start in range(0, 200, 50):
        fd.add_batch(features=y[start : start + 50], is_reference=[False] * 50)
    streamed = fd.compute()["frechet_distance"]
    assert streamed == pytest.approx(fd.compute(**two_sets(x, y))["frechet_distance"], rel=1e-5)


def test_frechet_distance_needs_two_vectors_per_set():
    with pytest.raises(ValueError, match="at least 2"):
        load_metric("frechet_distance").compute(features=[[0.0], [1.0], [2.0]], is_reference=[True, True, False])


# --- Kernel distance (KID) --------------------------------------------------------------------------


def naive_unbiased_mmd2(x, y):
    """MMD^2_u with the cubic polynomial kernel, written as the sums of its definition."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1) ** 3

    same = sum(k(x[i], x[j]) + k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return same / (m * (m - 1)) - 2 * cross / m**2


def test_kernel_distance_matches_the_definition_on_a_small_case():
    rng = np.random.default_rng(6)
    # The metric stores features as float32 (its Arrow schema): start from float32 values.
    x, y = ((rng.normal(size=(7, 3)) + shift).astype(np.float32).astype(np.float64) for shift in (0.0, 0.5))
    result = load_metric("kernel_distance").compute(**two_sets(x, y), subset_size=7)
    assert result["kernel_distance"] == pytest.approx(naive_unbiased_mmd2(x, y), rel=1e-9)
    assert result["kernel_distance_std"] == 0.0  # one subset: both whole sets


def test_kernel_distance_is_about_zero_for_the_same_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    kid = load_metric("kernel_distance")
    same = kid.compute(**two_sets(x, x), subset_size=200, num_subsets=10)["kernel_distance"]
    fresh = kid.compute(**two_sets(x, y), subset_size=200, num_subsets=10)
    shifted = [
        kid.compute(**two_sets(x, y + s), subset_size=200, num_subsets=10)["kernel_distance"] for s in (0.3, 1.0)
    ]
    # A set against itself is slightly negative, not exactly 0: the cross term of MMD^2_u then
    # includes the pairs (x_i, x_i) that the unbiased within-set terms leave out.
    assert abs(same) < 0.1 * shifted[0]
    # Two draws of one distribution: zero within the spread of the subset estimates.
    assert abs(fresh["kernel_distance"]) < 3 * fresh["kernel_distance_std"] + 1e-3
    assert fresh["kernel_distance"] < shifted[0] < shifted[1]


def test_kernel_distance_subsets_are_seeded():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(100, 4)), rng.normal(size=(80, 4)) + 0.2
    kid = load_metric("kernel_distance")
    first, again, other = (
        kid.compute(**two_sets(x, y), subset_size=20, num_subsets=5, seed=s)["kernel_distance"] for s in (0, 0, 1)
    )
    assert first == again != other


# --- Precision and recall ---------------------------------------------------------------------------


def test_precision_recall_on_a_hand_worked_case():
    real = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [20.0], [21.0]])  # k=1 radii: all 1
    fake = np.array([[0.5], [1.5], [2.5], [3.5]])  # k=1 radii: all 1
    # Every fake point lies within 0.5 of a real one; the real points 20 and 21 lie in no fake ball.
    result = load_metric("precision_recall").compute(**two_sets(real, fake), k=1)
    assert result["precision"] == 1.0
    assert result["recall"] == pytest.approx(5 / 7)


def brute_force_precision_recall(real, fake, k):
    """The paper's definition evaluated point by point."""

    def radius(point, pool):
        return sorted(np.linalg.norm(pool - point, axis=1))[k]  # index 0 is the point itself

    def share(queries, centres):
        radii = [radius(c, centres) for c in centres]
        return np.mean([any(np.linalg.norm(q - c) <= r for c, r in zip(centres, radii)) for q in queries])

    return share(fake, real), share(real, fake)


def test_precision_recall_matches_the_definition_and_is_chunked_correctly():
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(60, 3)), rng.normal(size=(50, 3)) * 1.5 + 0.5
    result = load_metric("precision_recall").compute(**two_sets(real, fake), k=3, chunk_size=7)
    assert (result["precision"], result["recall"]) == pytest.approx(brute_force_precision_recall(real, fake, 3))


def test_precision_recall_see_realism_and_mode_dropping_separately():
    rng = np.random.default_rng(10)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    real = np.concatenate([c + rng.normal(size=(100, 2)) for c in centres])
    dropped = np.concatenate([c + rng.normal(size=(200, 2)) for c in centres[:2]])  # half the modes
    pr = load_metric("precision_recall")
    itself = pr.compute(**two_sets(real, real))
    assert itself["precision"] == itself["recall"] == 1.0
    result = pr.compute(**two_sets(real, dropped))
    assert result["precision"] > 0.9 and result["recall"] < 0.6
    noisy = pr.compute(**two_sets(real, rng.uniform(-5, 15, size=(400, 2))))
    assert noisy["precision"] < result["precision"]


# --- Class-conditional accuracy ---------------------------------------------------------------------


def test_class_accuracy_overall_and_per_class():
    acc = load_metric("class_accuracy")
    result = acc.compute(predictions=[0, 0, 2, 1, 1, 1, 0], references=[0, 0, 0, 1, 1, 1, 1], num_classes=3)
    assert result["accuracy"] == pytest.approx(5 / 7)
    assert result["per_class_accuracy"] == [pytest.approx(2 / 3), 0.75, None]
    assert result["per_class_count"] == [3, 4, 0]
    assert result["most_confused_with"] == [2, 0, None]
    assert result["confusion_matrix"] == [[2, 0, 1], [1, 3, 0], [0, 0, 0]]


# --- Loading ----------------------------------------------------------------------------------------


def test_every_metric_loads_by_path_offline_in_a_clean_process():
    script = (
        "import evaluate\n"
        f"for name in {METRIC_NAMES!r}:\n"
        "    m = evaluate.load('evaluation/metrics/' + name)\n"
        "    assert isinstance(m, evaluate.Metric), name\n"
        "print('ok')\n"
    )
    # A dead endpoint as well as offline mode: any attempt to reach a Hub would fail loudly.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
    assert sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file()) == sorted(METRIC_NAMES)


def test_unknown_metric_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown metric 'fid'; choose one of"):
        load_metric("fid")
