"""Class-conditional accuracy: does a classifier recognise the class a sample was generated for?"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
For a class-conditional generator: the share of samples that a domain classifier assigns to the class
the sample was requested for, overall and for each requested class, with the class each one is most
often mistaken for. A generator that ignores its class label scores about 1/K.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): the class the classifier predicts for each sample.
    references (`list` of `int`): the class each sample was generated for.
    num_classes (`int`, *optional*): number of classes; defaults to the largest label seen plus one.
Returns:
    accuracy (`float`): share of samples recognised as their requested class.
    per_class_accuracy (`list` of `float` or `None`): the same for each requested class (None when
        no sample requested it).
    per_class_count (`list` of `int`): samples requested per class.
    most_confused_with (`list` of `int` or `None`): for each class, the wrong prediction its samples
        get most often (None when there is none).
    confusion_matrix (`list` of `list` of `int`): entry [r][p] counts samples of requested class r that
        were recognised as class p.
Examples:
    >>> acc = evaluate.load("evaluation/metrics/class_accuracy")
    >>> acc.compute(predictions=[0, 1, 1, 1], references=[0, 0, 1, 1])["per_class_accuracy"]
    [0.5, 1.0]
"""


# Standard `evaluate` module boilerplate, repeated on purpose in every metric: each module is loaded alone by
# path (`evaluate.load("evaluation/metrics/<name>")`) and cannot import a shared helper.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ClassAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, num_classes: int | None = None):
        predictions = np.asarray(predictions, dtype=np.int64)  # (N,)
        references = np.asarray(references, dtype=np.int64)  # (N,)
        if len(references) == 0:
            raise ValueError("class accuracy needs at least one sample")
        num_classes = num_classes or int(max(predictions.max(), references.max())) + 1
        # confusion[r, p]: samples requested as class r and recognised as class p.
        confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        np.add.at(confusion, (references, predictions), 1)
        counts = confusion.sum(axis=1)  # (K,)
        wrong = confusion.copy()
        np.fill_diagonal(wrong, 0)
        return {
            "accuracy": float(np.trace(confusion) / counts.sum()),
            "per_class_accuracy": [float(confusion[c, c] / n) if n else None for c, n in enumerate(counts)],
            "per_class_count": counts.tolist(),
            "most_confused_with": [int(row.argmax()) if row.any() else None for row in wrong],
            "confusion_matrix": confusion.tolist(),
        }
