"""The check that decides whether the app serves a model's int8 export (model/quantization.py writes the export, then
runs this check and records it). On the held-out split (the test split of split.json; every movie with a target
genre, less those the model trained or validated on, when the catalog is not the model's own), against the float32
export on the same posters:
- the genres' macro ROC-AUC at most AUC_DROP below float32's;
- each genre's decision (probability >= its tuned threshold) the same on at least AGREEMENT of the posters;
- the five recommendations of each held-out poster (its own movie left out, the app's genre and decade filters,
  for each distance) sharing at least OVERLAP of float32's five on average: int8 queries searched among the
  catalog's int8 feature vectors, as the app serves int8 with an index built by int8 (`make index`), against float32
  queries among float32 vectors. The figures of int8 queries among float32 vectors (an index built before int8)
  are recorded beside them, not checked."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from catalog import Catalog
from model.artifacts import Description, Prediction
from model.index import DESCRIPTION_FILE as INDEX_DESCRIPTION_FILE
from model.index import FeatureIndex, FeatureIndexError, model_fingerprint
from model.onnx_export import ExportError

AUC_DROP = 0.005
AGREEMENT = 0.98
OVERLAP = 4.0
RECOMMENDATIONS = 5


class Int8ExportError(ExportError):
    """An int8 export refused before any file is touched: operator types the quantizer does not quantize, or a
    catalog without the posters its calibration or its check needs."""


@dataclass(frozen=True)
class Thresholds:
    """What the int8 export must reach to be served."""

    auc_drop: float = AUC_DROP  # macro ROC-AUC at most this much below float32's
    agreement: float = AGREEMENT  # every genre's decisions the same on at least this share of the posters
    overlap: float = OVERLAP  # recommendations shared with float32's five, on average, for every distance


@dataclass(frozen=True)
class Int8Check:
    """How the int8 export compared with the float32 one on the held-out posters."""

    held_out: str  # which posters, e.g. "996 posters: the model's held-out test split"
    searched: str  # among which movies the recommendations were searched
    auc_float32: float
    auc_int8: float
    agreement: dict[str, float]  # genre -> share of the posters whose decision is the same
    overlap: dict[str, float]  # distance -> mean shared recommendations, int8 index against float32 index
    overlap_float32_index: dict[str, float]  # distance -> the same with int8 queries among float32 vectors
    decision_thresholds: list[float]
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def auc_change(self) -> float:
        return self.auc_int8 - self.auc_float32

    @property
    def reasons(self) -> list[str]:
        """Why the check failed; empty when it passed."""
        found = []
        if not self.auc_change >= -self.thresholds.auc_drop:
            found.append(
                f"macro ROC-AUC {self.auc_int8:.4f} is {-self.auc_change:.4f} below float32's {self.auc_float32:.4f} "
                f"(at most {self.thresholds.auc_drop:g} allowed)"
            )
        for genre, share in self.agreement.items():
            if not share >= self.thresholds.agreement:
                found.append(
                    f"{genre} decisions agree with float32's on {share:.1%} of the posters "
                    f"({self.thresholds.agreement:.0%} needed)"
                )
        for distance, shared in self.overlap.items():
            if not shared >= self.thresholds.overlap:
                found.append(
                    f"{distance} recommendations share {shared:.2f} of float32's {RECOMMENDATIONS} on average "
                    f"({self.thresholds.overlap:g} needed)"
                )
        return found

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def summary(self) -> str:
        """E.g. "AUC -0.0010, agreement 98.5 %, overlap 4.80/5": the worst genre's agreement, the worst distance's
        overlap."""
        return (
            f"AUC {self.auc_change:+.4f}, agreement {min(self.agreement.values()):.1%}".replace("%", " %")
            + f", overlap {min(self.overlap.values()):.2f}/{RECOMMENDATIONS}"
        )

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "summary": self.summary,
            "held_out": self.held_out,
            "searched": self.searched,
            "macro_roc_auc": {"float32": self.auc_float32, "int8": self.auc_int8, "change": self.auc_change},
            "agreement": self.agreement,
            "overlap": self.overlap,
            "overlap_float32_index": self.overlap_float32_index,
            "decision_thresholds": self.decision_thresholds,
            "thresholds": asdict(self.thresholds),
        }


def held_out_ids(catalog: Catalog, model_dir: Path) -> tuple[list[str], str]:
    """The posters the check compares on: the model's held-out test split, or every movie with a target genre of
    another catalog (model.evaluation's choice)."""
    from model.evaluation import evaluation_movies

    return evaluation_movies(catalog, model_dir)


def checked_held_out(catalog: Catalog, model_dir: Path, genres: tuple[str, ...]) -> tuple[list[str], str]:
    """held_out_ids, refused (Int8ExportError) when the check could not score the genres on them: no poster, none
    with one of `genres`, or no genre that some of them have and others lack (the macro ROC-AUC's columns)."""
    from model.metrics import scored_genres

    ids, which = held_out_ids(catalog, model_dir)
    cannot = f"the int8 export cannot be checked on {catalog.directory}"
    if not ids:
        raise Int8ExportError(
            f"{cannot}: it holds neither the held-out test split of {model_dir} nor other posters to check on "
            f"({which}: none)"
        )
    truth = catalog.labels(genres, ids)
    if not truth.any():
        raise Int8ExportError(
            f"{cannot}: none of its {len(ids)} held-out posters has one of the genres {', '.join(genres)}"
        )
    if not scored_genres(truth.astype(int)):
        raise Int8ExportError(
            f"{cannot}: no genre is both present and absent among its {len(ids)} held-out posters ({which}), so "
            "their ROC-AUC is not defined"
        )
    return ids, which


def float32_catalog(index_dir: Path | None, catalog: Catalog, model_dir: Path) -> Prediction | None:
    """The float32 predictions of every catalog poster from `index_dir` when it is an index of this catalog built by
    float32 from the model's weights (as `make index` built them before int8, or Keras did); else None."""
    index = None if index_dir is None else float32_index(index_dir, catalog, model_dir)
    if not isinstance(index, FeatureIndex):
        return None
    return index.prediction(list(range(len(index.imdb_ids))))


def float32_index(index_dir: Path, catalog: Catalog, model_dir: Path) -> FeatureIndex | str:
    """The index at `index_dir`, loaded, when it is a float32 index of `catalog` by the model's weights, which spares
    the check's float32 pass over the catalog; else why not, in words ("it was built by the int8 export")."""
    if not (index_dir / INDEX_DESCRIPTION_FILE).is_file():
        return f"it has no {INDEX_DESCRIPTION_FILE}"
    try:
        described = json.loads((index_dir / INDEX_DESCRIPTION_FILE).read_text())
        index = FeatureIndex.load(index_dir, catalog)
        same_model = described["model_fingerprint"] == model_fingerprint(model_dir)
    except (FeatureIndexError, ValueError, KeyError, TypeError, OSError) as error:
        return f"it cannot be read as this catalog's index ({error})"
    if not same_model:
        return f"it was built by other weights than {model_dir}'s"
    if index.precision != "float32":
        return f"it was built by the {index.precision} export"
    return index


def recommendations(
    prediction: Prediction,
    rows: list[int],
    labels: np.ndarray,
    catalog_decades: np.ndarray,
    decades: tuple[int, ...],
    search_features: np.ndarray,
    distance: str,
) -> list[set[int]]:
    """The app's five recommendations (recommend.recommend, with its genre and decade filters) for each catalog row
    in `rows`, its own row left out, its query read from `prediction`, searched among `search_features`."""
    from recommend import NeighbourSearch, decade_mask, recommend

    search = NeighbourSearch(search_features, threads=1)
    return [
        set(
            recommend(
                search,
                labels,
                prediction.features[row],
                prediction.genres[row],
                distance,
                k=RECOMMENDATIONS,
                exclude_rows=[row],
                era=decade_mask(prediction.decades[row], decades, catalog_decades),
            )
        )
        for row in rows
    ]


def mean_overlap(first: list[set[int]], second: list[set[int]]) -> float:
    return float(np.mean([len(a & b) for a, b in zip(first, second, strict=True)]))


def compare(
    catalog: Catalog,
    model_dir: Path,
    float32: Prediction,
    int8: Prediction,
    description: Description,
    thresholds: Thresholds,
) -> Int8Check:
    """The check's figures from the float32 and int8 predictions of every catalog poster (row i: catalog movie i)."""
    from model.metrics import genre_report
    from recommend import DISTANCES

    genres, cutoffs = description.genres, description.thresholds
    ids, which = checked_held_out(catalog, model_dir, genres)
    rows = [catalog.position(imdb_id) for imdb_id in ids]
    truth = catalog.labels(genres, ids).astype(int)

    def auc(prediction: Prediction) -> float:
        return genre_report(truth, prediction.genres[rows], cutoffs, genres)["macro_roc_auc"]

    same = (float32.genres[rows] >= cutoffs) == (int8.genres[rows] >= cutoffs)
    labels = catalog.labels(genres)
    catalog_decades = catalog.decades()
    overlap, mixed = {}, {}
    for distance in DISTANCES:

        def shown(query: Prediction, among: Prediction, distance: str = distance) -> list[set[int]]:
            return recommendations(query, rows, labels, catalog_decades, description.decades, among.features, distance)

        reference = shown(float32, float32)
        overlap[distance] = mean_overlap(reference, shown(int8, int8))
        mixed[distance] = mean_overlap(reference, shown(int8, float32))
    return Int8Check(
        held_out=f"{len(rows)} posters: {which}",
        searched=f"the {len(catalog):,} movies of {catalog.directory}, each poster's own left out",
        auc_float32=auc(float32),
        auc_int8=auc(int8),
        agreement={genre: float(share) for genre, share in zip(genres, same.mean(axis=0), strict=True)},
        overlap=overlap,
        overlap_float32_index=mixed,
        decision_thresholds=[float(value) for value in cutoffs],
        thresholds=thresholds,
    )
