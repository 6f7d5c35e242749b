"""The files and the summary of `python -m evaluation`: metrics.json, the per-class table, a sample grid."""

import csv
import json
from pathlib import Path

# Metric key -> (label, format) of the summary and the markdown table, in display order.
SUMMARY_ROWS = {
    "frechet_distance": ("Fréchet distance (lower is better)", "{:.3f}"),
    "kernel_distance": ("KID x 1000 (lower is better)", "{:.3f}"),
    "precision": ("precision (realism)", "{:.3f}"),
    "recall": ("recall (coverage)", "{:.3f}"),
    "recognisable": ("recognisable (classifier at least 90% sure of some class)", "{:.2%}"),
    "class_accuracy": ("class accuracy (requested class recognised)", "{:.2%}"),
}
PER_CLASS_COLUMNS = (
    "index",
    "class",
    "real_share",
    "sample_share",
    "requested",
    "recognised",
    "most_confused_with",
    "classifier_test_accuracy",
    "reader_recognised",
    "reader_on_real",
)


def summary_table(metrics: dict) -> str:
    """A markdown table of each metric for the samples next to the real-data floor."""
    lines = ["| metric | samples | real-data floor |", "|---|---|---|"]
    for key, (label, fmt) in SUMMARY_ROWS.items():
        if key not in metrics["samples"]:
            continue
        scale = 1000.0 if key == "kernel_distance" else 1.0
        sample, floor = (fmt.format(metrics[side][key] * scale) for side in ("samples", "real_data_floor"))
        lines.append(f"| {label} | {sample} | {floor} |")
    reader = metrics.get("independent_reader")
    if reader is not None:  # its column is the real half of the test split it never saw, not the floor
        lines.append(f"| readable by the independent reader (real: {reader['num_real_held_out']} held-out test "
                     f"images) | {reader['samples_readable']:.2%} | {reader['real_readable']:.2%} |")
        lines.append(f"| readable, as a ratio to real held-out images | {reader['readable_ratio']:.3f}× | 1 |")
        if "requested_accuracy" in reader:
            lines.append(f"| requested class read by the independent reader | {reader['requested_accuracy']:.2%} "
                         f"| {reader['real_accuracy']:.2%} |")
    check = metrics.get("memorisation")
    if check is not None:  # real test images are the floor: by construction `quantile` of them fall below it
        lines.append(f"| near-copies of training images (nearer than {check['quantile']:.0%} of real test images) "
                     f"| {check['flagged_share']:.2%} | {check['test_share']:.2%} |")
    return "\n".join(lines)


def table_columns(rows: list[dict]) -> list[str]:
    """The per-class columns that the rows have (unconditional models have no requested classes)."""
    return [column for column in PER_CLASS_COLUMNS if any(column in row for row in rows)]


def per_class_markdown(rows: list[dict]) -> str:
    """The per-class table as markdown (shares and accuracies as percentages)."""
    columns = table_columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            f"{value:.1%}" if isinstance(value, float) else ("" if value is None else str(value))
            for value in (row.get(column) for column in columns)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(folder: Path, metrics: dict, per_class: list[dict], grid) -> None:
    """Writes metrics.json, per_class.csv, per_class.md, summary.md and samples.png into `folder`."""
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    with open(folder / "per_class.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=table_columns(per_class), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(per_class)
    (folder / "per_class.md").write_text(per_class_markdown(per_class) + "\n", encoding="utf-8")
    (folder / "summary.md").write_text(summary_table(metrics) + "\n", encoding="utf-8")
    grid.save(folder / "samples.png")
