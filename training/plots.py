"""The loss history as a CSV and a PNG curve, written at the end of training."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402

CSV_COLUMNS = ("step", "train_loss", "val_loss", "fid", "lr", "img_s", "time_s")


def write_loss_csv(history: list[dict], path: str | Path) -> None:
    """Write rows of {"step", "train_loss", "val_loss", "fid", "lr", "img_s", "time_s"} (missing values left empty)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in history:
            writer.writerow({key: row.get(key, "") for key in CSV_COLUMNS})
    partial.replace(path)


def plot_loss_curve(history: list[dict], path: str | Path) -> None:
    """Train and validation loss against the optimizer step, log-scaled, as a PNG."""
    path = Path(path)
    train = [(row["step"], row["train_loss"]) for row in history if row.get("train_loss") is not None]
    val = [(row["step"], row["val_loss"]) for row in history if row.get("val_loss") is not None]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        axes.plot(*zip(*train), label="train", linewidth=1)
    if val:
        axes.plot(*zip(*val), "o-", label="validation (fixed t and noise)", markersize=3)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("denoising loss (MSE)")
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    partial = path.with_name(f".{path.name}.partial.png")
    figure.savefig(partial)
    plt.close(figure)
    partial.replace(path)
