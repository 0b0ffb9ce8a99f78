"""Offline quality of the recommendations, for each distance: queries are posters the model did not train on,
recommended from a catalog that never contains the query itself.

For every query the app's own procedure picks five catalog movies (movies of the genres whose probability is above
0.5, or of the most probable genre, then the nearest feature vectors), and each pick is scored against the query's
true genres (the six target genres) and year:
- genre_share: share of the five that share at least one true genre with the query;
- genre_jaccard: mean Jaccard index between the query's and the pick's genre sets;
- same_decade: share of the five from the query's decade (queries or picks without a year are left out).
Random picks from the same catalog are printed as the baseline (exact expectations, not a draw), and so are the
genre model's own probabilities and no genre filter at all, beside CLEMS's probabilities when `--clems` is given.

Two ways to choose queries and catalog:
- `--catalog DIR --index DIR --model DIR`: the model's own held-out test split are the queries, the movies of its
  training and validation splits the catalog (`make recommend-eval CATALOG=DIR`);
- add `--queries DIR --queries-index DIR`: every movie of another catalog is a query against all of this one
  (`make recommend-eval QUERIES=DIR CATALOG=DIR`); a query that is also in the catalog is never recommended to
  itself.
The last line is one JSON object keyed by distance: {genre_share, genre_jaccard, same_decade, n}, for the
genres the app uses (CLEMS's when given, else the model's).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
K = 5


@dataclass(frozen=True)
class Side:
    """Movies of one side (queries or catalog): ids, true genre matrix, decades, features, genre probabilities."""

    ids: list[str]
    labels: np.ndarray  # (n, n_genres) 0/1
    decades: np.ndarray  # (n,) year // 10, -1 when unknown
    features: np.ndarray  # (n, feature_size)
    probabilities: np.ndarray  # (n, n_genres)


def side_of(catalog, index, ids: list[str], probabilities: np.ndarray | None = None) -> Side:
    rows = np.array([index.row(imdb_id) for imdb_id in ids], dtype=int)
    movies = [catalog.get(imdb_id) for imdb_id in ids]
    return Side(
        ids=ids,
        labels=catalog.labels(index.genres, ids).astype(np.int8),
        decades=np.array([movie.year // 10 if movie.year else -1 for movie in movies]),
        features=index.features[rows],
        probabilities=index.probabilities[rows] if probabilities is None else probabilities[rows],
    )


def jaccard(query_labels: np.ndarray, picked_labels: np.ndarray) -> np.ndarray:
    """Jaccard index of a genre vector (g,) against each row of (m, g); 1 when both are empty."""
    both = (picked_labels & query_labels).sum(axis=-1)
    either = (picked_labels | query_labels).sum(axis=-1)
    return np.where(either > 0, both / np.maximum(either, 1), 1.0)


def pick_scores(query: Side, row: int, catalog: Side, picks: list[int]) -> tuple[float, float, float | None]:
    """genre_share, genre_jaccard and same_decade of one query's picks (same_decade None without years)."""
    labels = catalog.labels[picks]
    share = float((labels & query.labels[row]).any(axis=1).mean())
    mean_jaccard = float(jaccard(query.labels[row], labels).mean())
    decades = catalog.decades[picks]
    dated = decades >= 0
    same_decade = (
        float((decades[dated] == query.decades[row]).mean()) if query.decades[row] >= 0 and dated.any() else None
    )
    return share, mean_jaccard, same_decade


def random_baseline(query: Side, catalog: Side) -> dict[str, float]:
    """Expected scores of picks drawn uniformly from the catalog (less the query itself, which is ignored)."""
    shares, jaccards, decades = [], [], []
    dated_decades = catalog.decades[catalog.decades >= 0]
    for row in range(len(query.ids)):
        shares.append((catalog.labels & query.labels[row]).any(axis=1).mean())
        jaccards.append(jaccard(query.labels[row], catalog.labels).mean())
        if query.decades[row] >= 0:
            decades.append((dated_decades == query.decades[row]).mean())
    return summary(shares, jaccards, decades)


def summary(shares: list[float], jaccards: list[float], decades: list[float]) -> dict[str, float]:
    return {
        "genre_share": round(float(np.mean(shares)), 4),
        "genre_jaccard": round(float(np.mean(jaccards)), 4),
        "same_decade": round(float(np.mean(decades)), 4) if decades else float("nan"),
        "n": len(shares),
    }


def evaluate_distance(query: Side, catalog: Side, search, metric: str, use_genres: bool = True) -> dict:
    """Scores of the app's recommendations for every query with at least one true genre (`use_genres` False:
    the nearest of the whole catalog, ignoring the predicted genres)."""
    from app.recommender import recommend

    catalog_rows = {imdb_id: row for row, imdb_id in enumerate(catalog.ids)}
    shares, jaccards, decades = [], [], []
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
                metric,
                K,
                exclude_rows=itself,
            )
        else:
            allowed = np.ones(len(catalog.ids), dtype=bool)
            allowed[itself] = False
            picks = search.nearest(query.features[row], metric, K, allowed).tolist()
        share, mean_jaccard, same_decade = pick_scores(query, row, catalog, picks)
        shares.append(share)
        jaccards.append(mean_jaccard)
        if same_decade is not None:
            decades.append(same_decade)
    return summary(shares, jaccards, decades)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True, help="catalog directory recommended from")
    parser.add_argument("--index", type=Path, required=True, help="its feature index (make index)")
    parser.add_argument("--model", type=Path, required=True, help="the model that built the indexes")
    parser.add_argument("--queries", type=Path, help="a second catalog whose movies are the queries")
    parser.add_argument("--queries-index", type=Path, help="its feature index, built by the same model")
    parser.add_argument("--clems", type=Path, help="use this CLEMS model's genre probabilities (threshold 0.5)")
    args = parser.parse_args()
    if (args.queries is None) != (args.queries_index is None):
        parser.error("--queries and --queries-index go together")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from app.recommender import DISTANCES, NeighbourSearch
    from catalog import read_catalog
    from model.index import FeatureIndex
    from model.split import SPLIT_FILE, Split

    catalog = read_catalog(args.catalog, check_posters=False)
    index = FeatureIndex.load(args.index, catalog)
    clems = None
    if args.clems is not None:
        from embedding.clems import CLEMS

        clems = CLEMS.load(args.clems)

    if args.queries is None:
        split = Split.load(args.model / SPLIT_FILE)
        catalog_ids, query_ids, query_catalog, query_index = split.train + split.validation, split.test, catalog, index
        described = f"{len(split.test)} held-out test movies of {args.catalog} against its {len(catalog_ids)} others"
    else:
        query_catalog = read_catalog(args.queries, check_posters=False)
        query_index = FeatureIndex.load(args.queries_index, query_catalog)
        if query_index.genres != index.genres:
            parser.error(f"{args.queries_index} has genres {query_index.genres}, {args.index} {index.genres}")
        catalog_ids, query_ids = [movie.imdb_id for movie in catalog], query_index.imdb_ids
        described = f"{len(query_ids)} movies of {args.queries} against the {len(catalog_ids)} of {args.catalog}"
    catalog_side = side_of(catalog, index, catalog_ids)
    sources = {"model": side_of(query_catalog, query_index, query_ids)}
    if clems is not None:
        sources["model+CLEMS"] = side_of(
            query_catalog, query_index, query_ids, clems.predict_proba(query_index.features).astype(np.float32)
        )
    used = "model+CLEMS" if clems is not None else "model"
    search = NeighbourSearch(catalog_side.features)
    print(f"recommendation quality: {described}; {K} picks per query; genres from {args.model}")
    if clems is not None:
        print(f"model+CLEMS: genre probabilities of {args.clems} ({clems.cost} cost)")

    first_side = next(iter(sources.values()))
    baseline = random_baseline(first_side, catalog_side)
    results: dict[str, dict] = {}
    print("\n| picks | genre share | genre Jaccard | same decade | queries | seconds |")
    print("|---|---|---|---|---|---|")
    print(
        f"| random | {baseline['genre_share']:.4f} | {baseline['genre_jaccard']:.4f} | "
        f"{baseline['same_decade']:.4f} | {baseline['n']} | - |"
    )
    runs = [(name, side, True) for name, side in sources.items()] + [("no genre filter", first_side, False)]
    for name, query_side, use_genres in runs:
        for metric in DISTANCES:
            started = time.perf_counter()
            scores = evaluate_distance(query_side, catalog_side, search, metric, use_genres)
            seconds = time.perf_counter() - started
            print(
                f"| {metric}, {name} | {scores['genre_share']:.4f} | {scores['genre_jaccard']:.4f} | "
                f"{scores['same_decade']:.4f} | {scores['n']} | {seconds:.1f} |"
            )
            if name == used:
                results[metric] = scores
    print(json.dumps(results))


if __name__ == "__main__":
    main()
