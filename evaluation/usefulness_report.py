"""The report of `python -m evaluation.usefulness`: JSON, a markdown table, a bar chart with the augmentation
curve, the closest sample/training pairs, and the command that writes the generated set as a dataset."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import PIL.Image
import torch

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402


def markdown(results: dict) -> str:
    """The tables of `usefulness.md`."""
    lines = ["# Do the generated characters teach a recogniser?", "",
             f"Model `{results['model']}`; every accuracy is on the {results['num_test']:,} real test images.", "",
             "| classifier trained on | training images | accuracy on real test images |", "|---|---|---|"]
    for name, run in results["train_on_generated"].items():
        lines.append(f"| {name} | {run['num_train']:,} | {run['accuracy']:.2%} |")
    if results["augmentation"]:
        lines += ["", "| real training share | real images | real only | real + generated |", "|---|---|---|---|"]
        for row in results["augmentation"]:
            lines.append(f"| {row['fraction']:.0%} | {row['num_real']:,} | {row['real_only']:.2%} | "
                         f"{row['real_plus_generated']:.2%} |")
    lines += ["", "| memorisation | threshold (1% of real test images' nearest distance) | samples below it | "
              "real test images below it | near-copies beyond the real rate |", "|---|---|---|---|---|"]
    for space, check in results["memorisation"].items():
        lines.append(f"| {space} | {check['threshold']:.3f} | {check['flagged_share']:.2%} | {check['test_share']:.2%} "
                     f"| {'yes' if check['copies'] else 'no'} |")
    if "synthesize_command" in results:
        lines += ["", "The generated set measured here, as a `datasets` dataset with a card (add `--push_to_hub "
                  "--hub_model_id OWNER/NAME` to share it):", "", "```bash", results["synthesize_command"], "```"]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Bars of the three accuracies, and the augmentation curve beside them."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    runs = results["train_on_generated"]
    left.bar(list(runs), [100 * run["accuracy"] for run in runs.values()], color=["#c44", "#48c", "#246"])
    left.set_ylabel("accuracy on real test images (%)")
    left.set_title("train on ..., test on real")
    rows = results["augmentation"]
    if rows:
        shares = [100 * row["fraction"] for row in rows]
        right.plot(shares, [100 * row["real_only"] for row in rows], "o-", label="real only")
        right.plot(shares, [100 * row["real_plus_generated"] for row in rows], "o-", label="real + generated")
        right.set_xscale("log")
        right.set_xticks(shares, [f"{share:g}%" for share in shares])
        right.minorticks_off()
        right.set_xlabel("share of the real training split")
        right.legend()
    right.set_title("augmentation")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def closest_pairs(samples: torch.Tensor, train: torch.Tensor, closest: dict, path: Path) -> None:
    """The closest samples (top row) over their nearest training images (bottom row), in pixels."""
    top = [samples[i, 0] for i in closest["samples"]]
    bottom = [train[i, 0] for i in closest["train"]]
    grid = torch.cat([torch.cat(top, dim=1), torch.cat(bottom, dim=1)], dim=0)  # (2H, 8W)
    PIL.Image.fromarray((grid.clamp(0, 1) * 255).round().byte().numpy(), mode="L").resize(
        (grid.shape[1] * 3, grid.shape[0] * 3), PIL.Image.NEAREST).save(path)


def write_report(folder: Path, results: dict, samples: torch.Tensor, train: torch.Tensor) -> None:
    """Everything `--output_dir` holds."""
    (folder / "usefulness.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "usefulness.md").write_text(markdown(results), encoding="utf-8")
    plot(results, folder / "usefulness.png")
    closest_pairs(samples, train, results["memorisation"]["pixels"]["closest"], folder / "closest.png")
