"""Recommendations: the five catalog posters nearest to a query poster, among movies of its predicted genres and of
the decades it most likely evokes. Plain numpy on arrays (and faiss for large catalogs), importing no other stage, so
every stage after the catalog may use it: the model's index builds its approximate search with it, the int8 check
compares recommendations through it, the bandit's arms are its distances, and the app serves it.

- `recommend.distances`: the distances' names (`DISTANCES`, the bandit's arms) and their exact values;
- `recommend.search`: `NeighbourSearch`, the catalog's vectors with what each distance needs precomputed, so one
  query costs one pass over them;
- `recommend.approximate`: `ApproximateSearch`, faiss HNSW graphs whose shortlist the exact distance orders, for
  catalogs above `APPROXIMATE_ABOVE` movies (built by `make index`, loaded by `load_search`);
- `recommend.candidates`: the genre and decade filters, the genre re-ranking of the nearest, and `recommend` itself.
"""

from recommend.approximate import APPROXIMATE_ABOVE, ApproximateSearch, load_search
from recommend.candidates import (
    DECADE_MASS,
    GENRE_SHORTLIST,
    GENRE_THRESHOLD,
    candidate_decades,
    candidate_genres,
    candidate_mask,
    decade_mask,
    genre_rerank,
    recommend,
)
from recommend.distances import DISTANCES, check_distance, distances
from recommend.search import CHUNK_ROWS, NeighbourSearch

__all__ = [
    "APPROXIMATE_ABOVE",
    "ApproximateSearch",
    "CHUNK_ROWS",
    "DECADE_MASS",
    "DISTANCES",
    "GENRE_SHORTLIST",
    "GENRE_THRESHOLD",
    "NeighbourSearch",
    "candidate_decades",
    "candidate_genres",
    "candidate_mask",
    "check_distance",
    "decade_mask",
    "distances",
    "genre_rerank",
    "load_search",
    "recommend",
]
