"""Did the model copy its training images? Nearest training images of samples, against those of real test images.

A real test image was never seen in training, so its distance to the nearest training image says how close
two different handwritten characters of a class come. A sample much closer than that to a training image is
a near-copy. The threshold is the `quantile` (default 1%) of the real test images' nearest distances: by
construction that share of real test images falls below it, and a generator that does not copy should not
exceed that share by much.
"""

from __future__ import annotations

import torch


def nearest_distances(
    queries: torch.Tensor, references: torch.Tensor, chunk: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distance of each query row to its nearest reference row, and that row's index.

    Args:
        queries (`torch.Tensor`): (N, D) rows.
        references (`torch.Tensor`): (M, D) rows.
        chunk (`int`, defaults to 512): query rows per distance matrix, to bound memory.

    Returns:
        `tuple[torch.Tensor, torch.Tensor]`: distances (N,) and indices (N,) into `references`.
    """
    distances, indices = [], []
    references = references.float()
    for start in range(0, len(queries), chunk):
        block = torch.cdist(queries[start:start + chunk].float(), references)  # (chunk, M)
        best = block.min(dim=1)
        distances.append(best.values)
        indices.append(best.indices)
    return torch.cat(distances), torch.cat(indices)


def memorisation_check(samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor, quantile: float = 0.01) -> dict:
    """Flags samples nearer to a training image than all but `quantile` of real test images are.

    Args:
        samples (`torch.Tensor`): (N, D) rows of the generated images (pixels, or features).
        train (`torch.Tensor`): (M, D) rows of the training images.
        test (`torch.Tensor`): (T, D) rows of real test images, in the same space.
        quantile (`float`, defaults to 0.01): the share of real test images that defines the threshold.

    Returns:
        `dict`: "threshold"; "flagged_share" of samples and "test_share" of real test images below it;
        "sample_nearest" and "test_nearest" (quantiles 1/5/50% of the nearest distances); "closest" (indices of
        the 8 closest samples and of their training images); "copies": whether the samples exceed the real rate.
    """
    sample_d, sample_i = nearest_distances(samples, train)
    test_d, _ = nearest_distances(test, train)
    threshold = torch.quantile(test_d, quantile).item()
    flagged = (sample_d < threshold).float().mean().item()
    real = (test_d < threshold).float().mean().item()
    order = sample_d.argsort()[:8]
    levels = torch.tensor([0.01, 0.05, 0.5])
    # A sample set that copies shows well more near-copies than real test images do (allowing for the noise of a
    # share measured on N samples: two standard errors, at least one point).
    margin = max(0.01, 2 * (quantile * (1 - quantile) / max(len(samples), 1)) ** 0.5)
    return {
        "threshold": threshold,
        "quantile": quantile,
        "flagged_share": flagged,
        "test_share": real,
        "copies": flagged > real + margin,
        "sample_nearest": dict(zip(("1%", "5%", "50%"), torch.quantile(sample_d, levels).tolist())),
        "test_nearest": dict(zip(("1%", "5%", "50%"), torch.quantile(test_d, levels).tolist())),
        "closest": {
            "samples": order.tolist(),
            "train": sample_i[order].tolist(),
            "distances": sample_d[order].tolist(),
        },
    }
