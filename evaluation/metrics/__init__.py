"""Sample-quality metrics as `evaluate` modules, loadable offline by path.

The usual metric scripts live on the Hugging Face Hub, which `evaluate.load("name")` downloads; these
live in the project, one folder per metric with a script named like the folder, so
`evaluate.load("evaluation/metrics/frechet_distance")` (or `load_metric("frechet_distance")`) works
with the network off.

The three distribution metrics take one stream of feature vectors, each row flagged as belonging to
the reference (real) set or to the evaluated (generated) set, because the two sets rarely have the
same size and `evaluate` requires the columns of a batch to have equal lengths:

```py
>>> fd = load_metric("frechet_distance")
>>> fd.add_batch(features=real_features, is_reference=[True] * len(real_features))
>>> fd.add_batch(features=sample_features, is_reference=[False] * len(sample_features))
>>> fd.compute()["frechet_distance"]
```
"""

from pathlib import Path

import evaluate

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES = ("frechet_distance", "kernel_distance", "precision_recall", "class_accuracy")


def load_metric(name: str, **kwargs) -> evaluate.EvaluationModule:
    """Loads one of the project's metrics from its folder, without the network.

    Args:
        name (`str`): one of `METRIC_NAMES`.
        **kwargs: passed to `evaluate.load` (defaults to `keep_in_memory=True`, so concurrent runs
            share no cache files).

    Returns:
        `evaluate.EvaluationModule`: the metric, ready for `add_batch` and `compute`.
    """
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; choose one of {', '.join(METRIC_NAMES)}")
    kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(str(METRICS_DIR / name), **kwargs)
