"""Offline quality of the recommendations, for each distance: queries are posters the model did not train on,
recommended from a catalog that never contains the query itself.

For every query the app's own procedure picks five catalog movies (movies of the predicted genres, or of the most
probable genre, and of the decades the poster most likely evokes, then the nearest feature vectors; see
recommend.recommend), and each pick is scored against the query's true genres (the six target genres), year
and IMDb rating:
- genre_share: share of the five that share at least one true genre with the query;
- genre_jaccard: mean Jaccard index between the query's and the pick's genre sets;
- same_decade: share of the five from the query's decade (queries or picks without a year are left out);
- year_gap_median: median of |query year - pick year| over all query/pick pairs that both have a year;
- rating_gap_mean: mean of |query rating - pick rating| over all query/pick pairs that both have a rating.
Two random baselines are printed: picks drawn from the whole catalog (exact expectations, not a draw), and, beside
each source of genres, five picks per query drawn uniformly (seeded, `--seed`) from the very pool the app's search
draws from (its genre filter, never the query itself, the whole catalog when the filter leaves fewer than five),
so that what the nearest vectors add beyond the filters shows. The genre model's own probabilities, the same
without the decade filter, and no filter at all are scored, beside CLEMS's probabilities when `--clems` is given.

Two ways to choose queries and catalog:
- `--catalog DIR --index DIR --model DIR`: the model's own held-out test split are the queries, the movies of its
  training and validation splits the catalog (`make recommend-eval CATALOG=DIR`);
- `--held-out validation`: the validation split's movies against the training split's, to choose an experiment's
  settings (`--shortlist`) before the test split scores them;
- add `--queries DIR --queries-index DIR`: every movie of another catalog is a query against all of this one
  (`make recommend-eval QUERIES=DIR CATALOG=DIR`); a query that is also in the catalog is never recommended to
  itself.
The last line is one JSON object keyed by distance, plus "random" (the seeded random picks from the same pool):
each {genre_share, genre_jaccard, same_decade, year_gap_median, rating_gap_mean, n}, for the genres the app uses
(CLEMS's when given, else the model's); a figure with nothing to average (no years, say) is null.

The picks are the app's: the GENRE_SHORTLIST nearest of the pool ordered again by how much of the query's genre
probability each one's true genres hold (recommend.genre_rerank); rows named "nearest five" score the five nearest
without that ordering, beside them. `--shortlist N` scores another shortlist (5 or less: the nearest five alone).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NoReturn

import numpy as np

K = 5
SCORE_KEYS: tuple[str, ...] = (
    "genre_share",
    "genre_jaccard",
    "same_decade",
    "year_gap_median",
    "rating_gap_mean",
    "n",
)


@dataclass(frozen=True)
class Side:
    """Movies of one side (queries or catalog): ids, true genre matrix, years and IMDb ratings (NaN when unknown),
    features, genre probabilities."""

    ids: list[str]
    labels: np.ndarray  # (n, n_genres) 0/1
    years: np.ndarray  # (n,) float, NaN when unknown
    ratings: np.ndarray  # (n,) float, NaN when unknown
    features: np.ndarray  # (n, feature_size)
    probabilities: np.ndarray  # (n, n_genres)
    evoked_decades: np.ndarray | None = None  # (n, n_decades) the model's decade probabilities: the app's era filter

    @cached_property
    def decades(self) -> np.ndarray:
        """(n,) year // 10, -1 when unknown."""
        years = np.asarray(self.years, dtype=np.float64)
        return np.where(np.isnan(years), -1, np.floor_divide(np.nan_to_num(years), 10)).astype(int)


def side_of(
    catalog,
    index,
    ids: list[str],
    probabilities: np.ndarray | None = None,
    era_filter: bool = False,
    what: str = "these movies",
) -> Side:
    """The side of the movies `ids`, from the catalog and its index; CatalogError, naming how many are missing,
    unless the catalog holds them all (`what` names them, for that message)."""
    from model.evaluation import check_holds

    check_holds(catalog, ids, what)
    rows = np.array([index.row(imdb_id) for imdb_id in ids], dtype=int)
    movies = [catalog.get(imdb_id) for imdb_id in ids]
    return Side(
        ids=ids,
        labels=catalog.labels(index.genres, ids).astype(np.int8),
        years=np.array([np.nan if movie.year is None else movie.year for movie in movies], dtype=np.float64),
        ratings=np.array([np.nan if movie.rating is None else movie.rating for movie in movies], dtype=np.float64),
        features=index.features[rows],
        probabilities=index.probabilities[rows] if probabilities is None else probabilities[rows],
        evoked_decades=index.evoked["decades"][rows] if era_filter else None,
    )


def jaccard(query_labels: np.ndarray, picked_labels: np.ndarray) -> np.ndarray:
    """Jaccard index of a genre vector (g,) against each row of (m, g); 1 when both are empty."""
    both = (picked_labels & query_labels).sum(axis=-1)
    either = (picked_labels | query_labels).sum(axis=-1)
    return np.where(either > 0, both / np.maximum(either, 1), 1.0)


@dataclass(frozen=True)
class PickScores:
    """One query's picks: genre_share, genre_jaccard, same_decade (None without years), and the |year difference|
    and |rating difference| of each pick for which both movies have one (empty arrays when none has)."""

    genre_share: float
    genre_jaccard: float
    same_decade: float | None
    year_gaps: np.ndarray
    rating_gaps: np.ndarray


def gaps(query_value: float, picked_values: np.ndarray) -> np.ndarray:
    """|query_value - each picked value|, leaving out unknown (NaN) values; empty when the query's is unknown."""
    known = picked_values[~np.isnan(picked_values)]
    if np.isnan(query_value):
        return known[:0]
    return np.abs(known - query_value)


def pick_scores(query: Side, row: int, catalog: Side, picks: list[int]) -> PickScores:
    """Scores of the picks (catalog rows) made for query `row`."""
    picks = np.asarray(picks, dtype=np.intp)
    labels = catalog.labels[picks]
    share = float((labels & query.labels[row]).any(axis=1).mean())
    mean_jaccard = float(jaccard(query.labels[row], labels).mean())
    decades = catalog.decades[picks]
    dated = decades >= 0
    same_decade = (
        float((decades[dated] == query.decades[row]).mean()) if query.decades[row] >= 0 and dated.any() else None
    )
    return PickScores(
        genre_share=share,
        genre_jaccard=mean_jaccard,
        same_decade=same_decade,
        year_gaps=gaps(float(query.years[row]), catalog.years[picks].astype(np.float64)),
        rating_gaps=gaps(float(query.ratings[row]), catalog.ratings[picks].astype(np.float64)),
    )


def summary(scores: list[PickScores]) -> dict[str, float]:
    """Means over the queries (same_decade: over those with a year), year_gap_median and rating_gap_mean over all
    query/pick pairs; NaN where there is nothing to average."""
    decades = [score.same_decade for score in scores if score.same_decade is not None]
    year_gaps = np.concatenate([score.year_gaps for score in scores]) if scores else np.empty(0)
    rating_gaps = np.concatenate([score.rating_gaps for score in scores]) if scores else np.empty(0)
    return {
        "genre_share": mean_or_nan([score.genre_share for score in scores]),
        "genre_jaccard": mean_or_nan([score.genre_jaccard for score in scores]),
        "same_decade": mean_or_nan(decades),
        "year_gap_median": round(float(np.median(year_gaps)), 4) if len(year_gaps) else float("nan"),
        "rating_gap_mean": mean_or_nan(rating_gaps),
        "n": len(scores),
    }


def mean_or_nan(values) -> float:
    return round(float(np.mean(values)), 4) if len(values) else float("nan")


def histogram_median(counts: np.ndarray) -> float:
    """Median of a sample given as counts of the values 0, 1, 2, ... (NaN when empty), as np.median computes it."""
    total = int(counts.sum())
    if total == 0:
        return float("nan")
    cumulative = np.cumsum(counts)
    lower = int(np.searchsorted(cumulative, (total - 1) // 2, side="right"))
    upper = int(np.searchsorted(cumulative, total // 2, side="right"))
    return (lower + upper) / 2


def random_baseline(query: Side, catalog: Side) -> dict[str, float]:
    """Expected scores of picks drawn uniformly from the whole catalog (less the query itself, which is ignored):
    exact, over every query/catalog pair (year gaps: years taken as whole numbers)."""
    shares, jaccards, decades = [], [], []
    dated_decades = catalog.decades[catalog.decades >= 0]
    catalog_years = np.rint(catalog.years[~np.isnan(catalog.years)]).astype(np.int64)
    catalog_ratings = catalog.ratings[~np.isnan(catalog.ratings)]
    year_gap_counts = np.zeros(1, dtype=np.int64)
    rating_gap_sum, rating_pairs = 0.0, 0
    for row in range(len(query.ids)):
        shares.append((catalog.labels & query.labels[row]).any(axis=1).mean())
        jaccards.append(jaccard(query.labels[row], catalog.labels).mean())
        if query.decades[row] >= 0:
            decades.append((dated_decades == query.decades[row]).mean())
        if not np.isnan(query.years[row]) and len(catalog_years):
            counts = np.bincount(np.abs(catalog_years - int(np.rint(query.years[row]))))
            if len(counts) > len(year_gap_counts):
                year_gap_counts = np.pad(year_gap_counts, (0, len(counts) - len(year_gap_counts)))
            year_gap_counts[: len(counts)] += counts
        if not np.isnan(query.ratings[row]):
            rating_gap_sum += float(np.abs(catalog_ratings - query.ratings[row]).sum())
            rating_pairs += len(catalog_ratings)
    median = histogram_median(year_gap_counts)
    return {
        "genre_share": mean_or_nan(shares),
        "genre_jaccard": mean_or_nan(jaccards),
        "same_decade": mean_or_nan(decades),
        "year_gap_median": median if math.isnan(median) else round(median, 4),
        "rating_gap_mean": round(rating_gap_sum / rating_pairs, 4) if rating_pairs else float("nan"),
        "n": len(shares),
    }


class RandomPicks:
    """Stands in for `NeighbourSearch` in `recommend.recommend`: `nearest` ignores the query and the
    distance and returns k rows drawn uniformly, without replacement, from the rows the search is allowed (the
    whole catalog when no mask is given), so the random picks come from exactly the pool the app searches."""

    def __init__(self, n_rows: int, seed: int = 0) -> None:
        self.n_rows = n_rows
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.n_rows

    def nearest(self, query, distance: str, k: int = K, allowed: np.ndarray | None = None) -> np.ndarray:
        pool = np.arange(self.n_rows) if allowed is None else np.flatnonzero(allowed)
        return self.rng.choice(pool, size=min(k, len(pool)), replace=False)


def evaluate_distance(
    query: Side,
    catalog: Side,
    search,
    distance: str,
    use_genres: bool = True,
    decades: tuple[int, ...] = (),
    shortlist: int = 0,
) -> dict:
    """Scores of the app's recommendations for every query with at least one true genre (`use_genres` False:
    the nearest of the whole catalog, ignoring the predicted genres). With a `RandomPicks` as `search`, the
    scores of random picks from the same pool. `shortlist`: recommend's (the app serves GENRE_SHORTLIST; at most
    K: the nearest five, not ordered again)."""
    from recommend import decade_mask, recommend

    catalog_rows = {imdb_id: row for row, imdb_id in enumerate(catalog.ids)}
    catalog_decades = np.where(catalog.decades >= 0, catalog.decades * 10, -1)
    scores: list[PickScores] = []
    for row, imdb_id in enumerate(query.ids):
        if not query.labels[row].any():
            continue
        itself = [catalog_rows[imdb_id]] if imdb_id in catalog_rows else []
        if use_genres:
            picks = recommend(
                search,
                catalog.labels,
                query.features[row],
                query.probabilities[row],
                distance,
                K,
                exclude_rows=itself,
                era=None
                if query.evoked_decades is None
                else decade_mask(query.evoked_decades[row], decades, catalog_decades),
                shortlist=shortlist,
                own_first=not isinstance(search, RandomPicks),  # random picks from the pool, none of them the query
            )
        else:
            allowed = np.ones(len(catalog.ids), dtype=bool)
            allowed[itself] = False
            picks = search.nearest(query.features[row], distance, K, allowed).tolist()
        scores.append(pick_scores(query, row, catalog, picks))
    return summary(scores)


def table_row(name: str, scores: dict, seconds: str) -> str:
    figures = " | ".join(
        "-" if math.isnan(scores[key]) else f"{scores[key]:.{2 if key == 'year_gap_median' else 4}f}"
        for key in SCORE_KEYS[:-1]
    )
    return f"| {name} | {figures} | {scores['n']} | {seconds} |"


def json_ready(scores: dict) -> dict:
    """NaN (nothing to average) as null, so that the last line is strict JSON."""
    return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in scores.items()}


def seed_value(text: str) -> int:
    """The --seed option's value: a whole number from 0 to MAX_SEED (`posterbench embed fit --seed`'s), else a usage
    error."""
    from embedding import MAX_SEED

    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed: give a whole number from 0 to {MAX_SEED}")
    return seed


def refuse(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """An input the options name that cannot be used: "Error: ..." in one line and exit status 1, as the project's
    other commands say it (a usage error, status 2 with the usage, is for the options themselves)."""
    parser.exit(1, f"Error: {message}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True, help="catalog directory recommended from")
    parser.add_argument("--index", type=Path, required=True, help="its feature index (make index)")
    parser.add_argument("--model", type=Path, required=True, help="the model that built the indexes")
    parser.add_argument("--queries", type=Path, help="a second catalog whose movies are the queries")
    parser.add_argument("--queries-index", type=Path, help="its feature index, built by the same model")
    parser.add_argument("--clems", type=Path, help="use this CLEMS model's genre probabilities (threshold 0.5)")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of the random picks (default 0)")
    parser.add_argument(
        "--held-out",
        choices=("test", "validation"),
        default="test",
        help="the model's split whose movies are the queries: test (against training and validation), or validation "
        "(against training alone, to choose an experiment's settings)",
    )
    parser.add_argument(
        "--shortlist",
        type=int,
        default=None,
        metavar="N",
        help="how many of the nearest the genre re-ranking orders (default: the app's GENRE_SHORTLIST; 5 or less: "
        "the nearest five)",
    )
    args = parser.parse_args()
    if (args.queries is None) != (args.queries_index is None):
        parser.error("--queries and --queries-index go together")
    from catalog import read_catalog
    from model.artifacts import read_description
    from model.index import FeatureIndex
    from model.split import SPLIT_FILE, Split
    from recommend import DISTANCES, GENRE_SHORTLIST, NeighbourSearch

    shortlist = GENRE_SHORTLIST if args.shortlist is None else args.shortlist

    from catalog import CatalogError
    from model.artifacts import ModelArtifactError
    from model.index import FeatureIndexError

    try:  # what the options name, loaded here so that a wrong path is one line (refuse), not a traceback
        catalog = read_catalog(args.catalog, check_posters=False)
        index = FeatureIndex.load(args.index, catalog, args.model)
        clems = None
        if args.clems is not None:
            from embedding.clems import CLEMS

            clems = CLEMS.load(args.clems)
        if args.queries is None:
            split = Split.load(args.model / SPLIT_FILE)
        else:
            query_catalog = read_catalog(args.queries, check_posters=False)
            query_index = FeatureIndex.load(args.queries_index, query_catalog, args.model)
    except (CatalogError, FeatureIndexError, ModelArtifactError, ValueError, OSError) as error:
        refuse(parser, str(error))

    if args.queries is None:
        if args.held_out == "validation":  # to choose an experiment's settings before the test split scores them
            catalog_ids, query_ids = split.train, split.validation
            catalog_what = f"the training split of {args.model}"
        else:
            catalog_ids, query_ids = split.train + split.validation, split.test
            catalog_what = f"the training and validation splits of {args.model}"
        query_what = f"the {args.held_out} split of {args.model}"
        query_catalog, query_index = catalog, index
        described = (
            f"{len(query_ids)} held-out {args.held_out} movies of {args.catalog} against {len(catalog_ids)} "
            f"{'training' if args.held_out == 'validation' else 'training and validation'} movies"
        )
    else:
        if query_index.genres != index.genres:
            refuse(parser, f"{args.queries_index} has genres {query_index.genres}, {args.index} {index.genres}")
        catalog_ids, query_ids = [movie.imdb_id for movie in catalog], query_index.imdb_ids
        catalog_what, query_what = f"the movies of {args.catalog}", f"the movies of {args.queries_index}"
        described = f"{len(query_ids)} movies of {args.queries} against the {len(catalog_ids)} of {args.catalog}"
    try:  # a catalog that lacks movies of the model's splits: one line, not a KeyError's traceback
        catalog_side = side_of(catalog, index, catalog_ids, what=catalog_what)
        sources = {"model": side_of(query_catalog, query_index, query_ids, era_filter=True, what=query_what)}
    except CatalogError as error:
        refuse(parser, str(error))
    description = read_description(args.model)  # the model's decades, which the app's era filter reads
    if clems is not None:
        sources["model+CLEMS"] = side_of(
            query_catalog,
            query_index,
            query_ids,
            clems.predict_proba(query_index.features).astype(np.float32),
            era_filter=True,
        )
    used = "model+CLEMS" if clems is not None else "model"
    sources["model, no decade filter"] = side_of(query_catalog, query_index, query_ids)
    search = NeighbourSearch(catalog_side.features)
    ordering = f"the {shortlist} nearest ordered again by genre agreement" if shortlist > K else "the nearest"
    print(f"recommendation quality: {described}; {K} picks per query ({ordering}); genres from {args.model}")
    if clems is not None:
        print(f"model+CLEMS: genre probabilities of {args.clems} ({clems.cost} cost)")

    first_side = next(iter(sources.values()))
    results: dict[str, dict] = {}
    columns = ["picks", "genre share", "genre Jaccard", "same decade", "year gap median", "rating gap mean"]
    print("\n| " + " | ".join([*columns, "queries", "seconds"]) + " |")
    print("|---" * (len(columns) + 2) + "|")
    print(table_row("random (exact expectation)", random_baseline(first_side, catalog_side), "-"))
    runs = [(name, side, True) for name, side in sources.items()] + [("no genre filter", first_side, False)]
    for name, query_side, use_genres in runs:
        if use_genres:  # random picks from the pool this source's genres leave, beside its distances
            started = time.perf_counter()
            scores = evaluate_distance(
                query_side,
                catalog_side,
                RandomPicks(len(catalog_side.ids), args.seed),
                DISTANCES[0],
                use_genres,
                description.decades,
            )
            print(table_row(f"random, {name} pool", scores, f"{time.perf_counter() - started:.1f}"))
            if name == used:
                results["random"] = scores
        for distance in DISTANCES:
            started = time.perf_counter()
            scores = evaluate_distance(
                query_side, catalog_side, search, distance, use_genres, description.decades, shortlist
            )
            print(table_row(f"{distance}, {name}", scores, f"{time.perf_counter() - started:.1f}"))
            if name == used:
                results[distance] = scores
            if shortlist > K and use_genres and name == used:  # what the re-ranking adds
                started = time.perf_counter()
                nearest = evaluate_distance(query_side, catalog_side, search, distance, use_genres, description.decades)
                print(table_row(f"{distance}, {name}, nearest five", nearest, f"{time.perf_counter() - started:.1f}"))
    results["random"] = results.pop("random")  # after the distances
    print(json.dumps({key: json_ready(scores) for key, scores in results.items()}))


if __name__ == "__main__":
    main()
