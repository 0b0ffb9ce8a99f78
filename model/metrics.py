"""Scores for what a poster evokes: multi-label genre scores (the report in the layout of the paper's Table I),
the calibration of each genre's probability, and decade, year and rating errors."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support, roc_auc_score


def genre_report(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    thresholds: np.ndarray,
    genres: tuple[str, ...],
    decisions: np.ndarray | None = None,
) -> dict:
    """Per-genre precision, recall, F1 and support; micro and macro F1; Hamming loss; ROC-AUC and mAP.

    Decisions are `probabilities >= thresholds` unless given."""
    y_pred = (probabilities >= thresholds).astype(int) if decisions is None else decisions
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    scored = scored_genres(y_true)
    return {
        "per_genre": {
            genre: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for genre, p, r, f, s in zip(genres, precision, recall, f1, support, strict=True)
        },
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "hamming_loss": float(np.mean(y_true != y_pred)),
        "macro_roc_auc": macro_roc_auc(y_true, probabilities),
        "mean_average_precision": float(average_precision_score(y_true[:, scored], probabilities[:, scored]))
        if scored
        else float("nan"),
        "n": len(y_true),
    }


def scored_genres(y_true: np.ndarray) -> list[int]:
    """The genres (columns) both present and absent in `y_true`: the only ones a ranking can be scored on."""
    return [k for k in range(y_true.shape[1]) if 0 < y_true[:, k].sum() < len(y_true)]


def macro_roc_auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Macro ROC-AUC over the scored genres (scored_genres); NaN when there is none."""
    scored = scored_genres(y_true)
    if not scored:
        return float("nan")
    return float(roc_auc_score(y_true[:, scored], probabilities[:, scored], average="macro"))


def format_table(report: dict, title: str) -> str:
    """The report as text, laid out like the paper's Table I (precision, recall, f1-score, support)."""
    lines = [title, f"{'':>12} {'precision':>10} {'recall':>10} {'f1-score':>10} {'support':>10}"]
    for genre, row in report["per_genre"].items():
        lines.append(
            f"{genre:>12} {row['precision']:>10.2f} {row['recall']:>10.2f} {row['f1']:>10.2f} {row['support']:>10}"
        )
    lines.append(f"{'micro avg':>12} {'':>10} {'':>10} {report['micro_f1']:>10.2f} {report['n']:>10}")
    lines.append(f"{'macro avg':>12} {'':>10} {'':>10} {report['macro_f1']:>10.2f} {report['n']:>10}")
    lines.append(
        f"hamming loss {report['hamming_loss']:.4f}   macro ROC-AUC {report['macro_roc_auc']:.3f}   "
        f"mAP {report['mean_average_precision']:.3f}"
    )
    return "\n".join(lines)


def format_report(report: dict, title: str) -> str:
    """The genre table, then the era figures and calibration errors when the report has them."""
    text = format_table(report, title)
    if "era" in report and "calibration" in report:
        text += "\n" + format_era(report["era"], report["calibration"])
    if "poster_false_alarms" in report:
        text += f"\nposters flagged as not posters: {report['poster_false_alarms']:.1%}"
    return text


def tune_thresholds(y_true: np.ndarray, probabilities: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Per-genre decision thresholds that maximise micro-F1 + macro-F1 on (validation) data.

    Starts from the best single threshold for all genres, then improves one genre's threshold at a
    time (coordinate ascent over a 0.05-0.95 grid). Per-genre F1 alone would favour recall on rare
    genres and cost micro-F1; the sum balances both figures we report.
    """
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    truth = np.asarray(y_true).astype(bool)
    n_genres = truth.shape[1]
    thresholds = np.full(
        n_genres, grid[int(np.argmax(f1_sums(truth, probabilities, np.repeat(grid[:, None], n_genres, 1))))]
    )
    for _ in range(rounds):
        for genre in range(n_genres):
            candidates = np.tile(thresholds, (len(grid), 1))
            candidates[:, genre] = grid
            thresholds = candidates[int(np.argmax(f1_sums(truth, probabilities, candidates)))]
    return thresholds.astype(np.float32)


def f1_sums(truth: np.ndarray, probabilities: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """micro-F1 + macro-F1 (scikit-learn's, zero_division=0) of each row of `candidates` (m, n_genres) used as
    thresholds, all at once: tune_thresholds scores about 1,700 of them (8-20 s with one f1_score call each)."""
    micro, macro = micro_and_macro_f1(truth, probabilities[None] >= candidates[:, None, :])
    return micro + macro


def micro_and_macro_f1(truth: np.ndarray, decisions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """micro-F1 and macro-F1 (scikit-learn's, zero_division=0) of boolean `decisions` (..., n, n_genres) against
    boolean `truth` (n, n_genres), for every leading index at once."""
    true_positives = (decisions & truth).sum(axis=-2)
    denominators = decisions.sum(axis=-2) + truth.sum(axis=0)  # 2 TP + FP + FN
    per_genre = np.divide(2 * true_positives, denominators, out=np.zeros(denominators.shape), where=denominators > 0)
    micro_denominators = denominators.sum(axis=-1)
    micro = np.divide(
        2 * true_positives.sum(axis=-1),
        micro_denominators,
        out=np.zeros(micro_denominators.shape),
        where=micro_denominators > 0,
    )
    return micro, per_genre.mean(axis=-1)


def constant_predictors(genre_counts: np.ndarray, n_movies: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two answers that ignore the poster, from the training split's genre counts: (scores, decisions).

    "most_frequent": the k most frequent training genres, k chosen to maximise training micro-F1,
    scored by their training frequency; "all_six": every genre, always.
    """
    counts = np.asarray(genre_counts, dtype=np.float64)
    order = np.argsort(-counts, kind="stable")

    def micro_f1(chosen: np.ndarray) -> float:  # of always answering `chosen`, on the training split
        true_positives = counts[chosen].sum()
        false_positives = (n_movies - counts[chosen]).sum()
        false_negatives = counts.sum() - true_positives
        return 2 * true_positives / (2 * true_positives + false_positives + false_negatives)

    best_k = max(range(1, len(counts) + 1), key=lambda k: micro_f1(order[:k]))
    most_frequent = np.isin(np.arange(len(counts)), order[:best_k]).astype(int)
    return {
        "most_frequent": ((counts / n_movies).astype(np.float32), most_frequent),
        "all_six": (np.ones(len(counts), np.float32), np.ones(len(counts), int)),
    }


CALIBRATION_BINS = 10


ERA_KEYS = ("decade_accuracy", "year_mae", "rating_mae", "rating_spearman", "rating_interval_coverage", "ece_max")


def calibration_curve(y_true: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """One label's reliability: per equal-width probability bin with members, its count, mean probability and the
    share of positives. Our own because scikit-learn's calibration_curve gives no bin counts, which the expected
    calibration error weighs the bins by and the reliability plot prints."""
    edges = np.minimum((probabilities * bins).astype(int), bins - 1)
    return [
        {
            "count": int(np.sum(edges == b)),
            "probability": float(probabilities[edges == b].mean()),
            "frequency": float(y_true[edges == b].mean()),
        }
        for b in range(bins)
        if np.any(edges == b)
    ]


def expected_calibration_error(y_true: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean |share of positives - mean probability| over equal-width bins, weighted by the bins' counts."""
    curve = calibration_curve(y_true, probabilities, bins)
    return float(sum(row["count"] * abs(row["frequency"] - row["probability"]) for row in curve) / len(y_true))


def calibration_report(y_true: np.ndarray, probabilities: np.ndarray, genres: tuple[str, ...]) -> dict:
    """Each genre's expected calibration error and reliability curve, and the worst genre's error."""
    per_genre = {
        genre: {
            "ece": expected_calibration_error(y_true[:, k], probabilities[:, k]),
            "curve": calibration_curve(y_true[:, k], probabilities[:, k]),
        }
        for k, genre in enumerate(genres)
    }
    return {"per_genre": per_genre, "ece_max": max(row["ece"] for row in per_genre.values())}


def era_report(
    years: np.ndarray,
    ratings: np.ndarray,
    decade_probabilities: np.ndarray,
    decades: tuple[int, ...],
    expected_years: np.ndarray,
    expected_ratings: np.ndarray,
    rating_interval: tuple[float, float],
) -> dict:
    """Decade accuracy, year and rating errors, and how often the rating interval holds the true rating; `years`
    and `ratings` are NaN where unknown (those movies are left out of that figure)."""
    known_year, known_rating = ~np.isnan(years), ~np.isnan(ratings)
    true_decades = (years[known_year] // 10 * 10).astype(int)
    predicted_decades = np.asarray(decades)[np.argmax(decade_probabilities[known_year], axis=1)]
    decade_counts = np.unique(true_decades, return_counts=True)[1]
    rating_errors = ratings[known_rating] - expected_ratings[known_rating]
    known = ratings[known_rating]
    low, high = rating_interval
    return {
        "decade_accuracy": mean_or_nan(predicted_decades == true_decades),
        "decade_majority": float(decade_counts.max() / len(true_decades)) if len(true_decades) else float("nan"),
        "year_mae": mean_or_nan(np.abs(years[known_year] - expected_years[known_year])),
        "year_mae_median_baseline": median_baseline_error(years[known_year]),
        "rating_mae": mean_or_nan(np.abs(rating_errors)),
        "rating_mae_median_baseline": median_baseline_error(known),
        "rating_spearman": float(spearmanr(known, expected_ratings[known_rating]).statistic)
        if len(known) > 1
        else float("nan"),
        "rating_interval": [float(low), float(high)],
        "rating_interval_coverage": mean_or_nan((rating_errors >= low) & (rating_errors <= high)),
        "n_years": int(known_year.sum()),
        "n_ratings": int(known_rating.sum()),
    }


def mean_or_nan(values: np.ndarray) -> float:
    """The mean, or NaN for no values (a figure of movies none of which has a year, or a rating)."""
    return float(np.mean(values)) if np.size(values) else float("nan")


def median_baseline_error(values: np.ndarray) -> float:
    """The mean absolute error of always answering the values' median, or NaN for no values."""
    return mean_or_nan(np.abs(values - np.median(values))) if np.size(values) else float("nan")


def format_era(era: dict, calibration: dict) -> str:
    """The era report and each genre's calibration error as text."""
    return "\n".join(
        [
            f"decade accuracy {era['decade_accuracy']:.3f} (majority decade {era['decade_majority']:.3f})   "
            f"year MAE {era['year_mae']:.1f} (median year {era['year_mae_median_baseline']:.1f})",
            f"rating MAE {era['rating_mae']:.2f} (median rating {era['rating_mae_median_baseline']:.2f})   "
            f"Spearman {era['rating_spearman']:.3f}   80 % interval [{era['rating_interval'][0]:+.1f}, "
            f"{era['rating_interval'][1]:+.1f}] holds {era['rating_interval_coverage']:.1%}",
            "ECE "
            + "  ".join(f"{genre} {row['ece']:.3f}" for genre, row in calibration["per_genre"].items())
            + f"   (worst {calibration['ece_max']:.3f})",
        ]
    )


def summary(report: dict) -> dict:
    """The figures that go into the one-line JSON of `evaluate` (era and calibration ones where the report has
    them)."""
    figures = {
        "micro_f1": round(report["micro_f1"], 4),
        "macro_f1": round(report["macro_f1"], 4),
        "macro_auc": round(report["macro_roc_auc"], 4),
        "map": round(report["mean_average_precision"], 4),
        "n": report["n"],
    }
    for key in ERA_KEYS:
        source = report.get("calibration", {}) if key == "ece_max" else report.get("era", {})
        if key in source:
            figures[key] = round(source[key], 4)
    return figures
