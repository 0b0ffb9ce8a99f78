"""The training report's figures: learning curves per epoch and each genre's reliability curve, as PNGs."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def save_learning_curves(history: dict[str, list[float]], path: Path) -> None:
    """Loss and the genres' Hamming distance per epoch, training and validation, as a PNG."""
    figure = Figure(figsize=(9, 3.5))
    for axis, metric in zip(figure.subplots(1, 2), ("loss", "hamming"), strict=True):
        for prefix, label in (("", "train"), ("val_", "validation")):
            if prefix + metric in history:
                axis.plot(range(1, len(history[prefix + metric]) + 1), history[prefix + metric], label=label)
        axis.set_xlabel("epoch")
        axis.set_title("genres' Hamming distance" if metric == "hamming" else "genres' loss")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def save_reliability_plot(calibration: dict, path: Path) -> None:
    """Each genre's reliability curve on the held-out split (share of positives against mean probability per bin),
    with its expected calibration error, as a PNG."""
    figure = Figure(figsize=(5, 5))
    axis = figure.subplots()
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for genre, row in calibration["per_genre"].items():
        curve = row["curve"]
        axis.plot(
            [point["probability"] for point in curve],
            [point["frequency"] for point in curve],
            marker="o",
            markersize=3,
            label=f"{genre} (ECE {row['ece']:.3f})",
        )
    axis.set_xlabel("predicted probability")
    axis.set_ylabel("share of posters with the genre")
    axis.set_title("Calibration on the held-out split")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
