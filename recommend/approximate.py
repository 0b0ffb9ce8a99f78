"""Approximate k-nearest-neighbour search for large catalogs (`ApproximateSearch`): faiss HNSW graphs give a
shortlist of candidates among the allowed rows, which the exact distance then orders; and the choice between it and
the exact search (`NeighbourSearch`) by catalog size, at build time (`save_search`) and at load time (`load_search`).

Two graphs serve the three distances: one over the vectors by the Euclidean distance, whose shortlist is re-ranked
by the Euclidean or the Manhattan distance, and one over the unit vectors by the inner product, for the cosine
distance. A genre or decade mask is a filter inside the graph search (faiss `IDSelectorBitmap`), with a wider search
the fewer rows it allows; a mask of at most `exact_rows` rows is searched exactly, row by row."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recommend.distances import check_distance, distances
from recommend.search import NeighbourSearch, smallest

APPROXIMATE_ABOVE = 50_000
"""Catalogs of more movies than this are searched approximately: exact Manhattan search passes 2 ms per query at about
50,000 vectors on two cores (bench/README.md: 0.6 ms at 10,000, 3.1 ms at 80,000), the others at about 150,000."""

DESCRIPTION_FILE = "search.json"
GRAPH_FILES = {"l2": "search-l2.faiss", "cosine": "search-cosine.faiss"}
GRAPH_OF = {"manhattan": "l2", "euclidean": "l2", "cosine": "cosine"}  # the graph whose shortlist each distance orders
CANDIDATES_PER_RESULT = 4
"""A query for the k nearest takes at least this many times k candidates from the graph: at 1,000,000 vectors, 50
candidates for the 25 nearest (the app's genre shortlist) found 91-95 % of the exact 25 by Manhattan and cosine, 100
found 96-97 % (bench/README.md)."""


def _faiss():  # noqa: ANN202 - faiss has no type information
    """faiss, imported when first needed: the exact search of small catalogs never loads it."""
    import faiss

    return faiss


def unit_rows(features: NDArray[np.float32]) -> NDArray[np.float32]:
    """Each row divided by its Euclidean norm (a zero row stays zero)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.ascontiguousarray(features / np.where(norms == 0, 1.0, norms), dtype=np.float32)


class ApproximateSearchError(RuntimeError):
    """A saved approximate search that is damaged or was built for other feature vectors."""


class ApproximateSearch:
    """Approximate k-nearest-neighbour search over a fixed matrix of feature vectors (n, d), for each of DISTANCES,
    with the interface of `NeighbourSearch` (`len`, `nearest`).

    Parameters: `m`, the links per node of each HNSW graph; `ef_construction`, the width of the search that builds
    them; `ef_search`, the width of a query's search when every row is allowed (divided by the square root of the
    share of rows allowed otherwise, up to `max_ef_search`); `shortlist`, the candidates a query takes from the graph
    (at least CANDIDATES_PER_RESULT times the k asked for) and orders by the exact distance; `exact_rows`, the
    largest number of allowed rows searched exactly instead (a gathered copy of 5,000 vectors costs about what a
    filtered graph search does); `threads`, the threads that build the graphs (default: every core).

    Learned by `fit` (or read by `load`): `features_` (n, d) float32, `squared_norms_` and `norms_` (n,), and
    `graphs_`, the faiss indexes by graph name ("l2", "cosine")."""

    def __init__(
        self,
        m: int = 16,
        ef_construction: int = 80,
        ef_search: int = 64,
        shortlist: int = 50,
        exact_rows: int = 5_000,
        max_ef_search: int = 1024,
        threads: int | None = None,
    ) -> None:
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.shortlist = shortlist
        self.exact_rows = exact_rows
        self.max_ef_search = max_ef_search
        self.threads = threads

    def fit(self, features: ArrayLike) -> ApproximateSearch:
        """Build both graphs over `features` (n, d)."""
        faiss = _faiss()
        self._set_features(features)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(max(1, self.threads or os.cpu_count() or 1))
        try:
            graphs = {}
            for name, vectors, distance in (
                ("l2", self.features_, faiss.METRIC_L2),
                ("cosine", unit_rows(self.features_), faiss.METRIC_INNER_PRODUCT),
            ):
                graph = faiss.IndexHNSWFlat(vectors.shape[1], self.m, distance)
                graph.hnsw.efConstruction = self.ef_construction
                graph.add(vectors)
                graphs[name] = graph
        finally:
            faiss.omp_set_num_threads(threads)
        self.graphs_ = graphs
        return self

    def _set_features(self, features: ArrayLike) -> None:
        self.features_ = np.ascontiguousarray(features, dtype=np.float32)
        if self.features_.ndim != 2:
            raise ValueError(f"features must be a matrix (n, d), got shape {self.features_.shape}")
        self.squared_norms_ = np.einsum("ij,ij->i", self.features_, self.features_)
        self.norms_ = np.sqrt(self.squared_norms_)

    def __len__(self) -> int:
        return len(self.features_)

    def vectors(self, rows: ArrayLike) -> NDArray[np.float32]:
        """The feature vectors of catalog `rows`."""
        return self.features_[np.asarray(rows, dtype=np.intp)]

    def nearest(
        self, query: ArrayLike, distance: str, k: int = 5, allowed: NDArray[np.bool_] | None = None
    ) -> NDArray[np.intp]:
        """Rows of the `k` nearest vectors found (among the `allowed` rows, a boolean mask, if given), nearest first
        by the exact distance; fewer when fewer rows are allowed. Ties go to the lower row."""
        check_distance(distance)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        point = np.asarray(query, dtype=np.float32).reshape(-1)
        if point.shape[0] != self.features_.shape[1]:
            raise ValueError(f"query has {point.shape[0]} features, the catalog {self.features_.shape[1]}")
        share = 1.0
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            count = int(np.count_nonzero(allowed))
            if count <= max(self.exact_rows, k):
                return self._exact(point, distance, k, np.flatnonzero(allowed))
            share = count / len(self.features_)
        found = self._graph_search(point, distance, max(self.shortlist, CANDIDATES_PER_RESULT * k), share, allowed)
        if len(found) < min(k, len(self.features_)):  # the graph search ran out of allowed rows: search them all
            rows = np.flatnonzero(allowed) if allowed is not None else np.arange(len(self.features_))
            return self._exact(point, distance, k, rows)
        return self._order(point, distance, k, found)

    def _graph_search(
        self, point: NDArray[np.float32], distance: str, count: int, share: float, allowed: NDArray[np.bool_] | None
    ) -> NDArray[np.intp]:
        """Up to `count` candidate rows from the distance's graph, only allowed ones."""
        faiss = _faiss()
        graph = self.graphs_[GRAPH_OF[distance]]
        vector = point
        if distance == "cosine":
            norm = float(np.linalg.norm(point))
            vector = point / (norm if norm > 0 else 1.0)
        # a filter leaves fewer allowed rows near the query; a wider search finds them: the width grows as the share
        # of rows allowed falls, by its square root (at 1,000,000 vectors a recall above 0.95 took 64 with 17 % of the
        # rows allowed, 128 with 5 %, 256 to 512 with 2 %; this gives 155, 286 and 452; bench/README.md)
        width = int(min(self.max_ef_search, max(self.ef_search, count) / np.sqrt(share)))
        selector = bitmap = None
        if allowed is not None:
            bitmap = np.packbits(allowed, bitorder="little")  # kept alive while faiss reads it
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        parameters = faiss.SearchParametersHNSW(efSearch=max(width, count), sel=selector)
        _, labels = graph.search(vector.reshape(1, -1), count, params=parameters)
        del bitmap
        found = labels[0]
        return found[found >= 0].astype(np.intp)

    def _exact(self, point: NDArray[np.float32], distance: str, k: int, rows: NDArray[np.intp]) -> NDArray[np.intp]:
        """The `k` nearest of `rows` by a fast float32 distance (euclidean: squared), then ordered exactly."""
        if len(rows) == 0:
            return np.empty(0, np.intp)
        vectors = self.features_[rows]
        if distance == "euclidean":
            fast = self.squared_norms_[rows] - 2.0 * (vectors @ point) + point @ point
        elif distance == "cosine":
            norm = float(np.linalg.norm(point))
            fast = 1.0 - (vectors @ point) / (np.where(self.norms_[rows] == 0, 1.0, self.norms_[rows]) * (norm or 1.0))
        else:
            np.subtract(vectors, point, out=vectors)
            fast = np.abs(vectors, out=vectors).sum(axis=1)
        # a few more than k, so that rounding cannot drop one of the exact k nearest
        return self._order(point, distance, k, rows[smallest(fast, k + 16)])

    def _order(self, point: NDArray[np.float32], distance: str, k: int, rows: NDArray[np.intp]) -> NDArray[np.intp]:
        """The `k` nearest of `rows` by the exact float64 distance, ties to the lower row."""
        exact = distances(point, self.features_[rows], distance)
        return rows[np.lexsort((rows, exact))[:k]]

    def save(self, directory: str | Path) -> None:
        """Write the graphs and their description into `directory` (beside the feature index's files)."""
        faiss = _faiss()
        directory = Path(directory)
        for name, graph in self.graphs_.items():
            faiss.write_index(graph, str(directory / GRAPH_FILES[name]))
        description = {
            "kind": "hnsw",
            "rows": len(self.features_),
            "dimensions": int(self.features_.shape[1]),
            "checksum": features_checksum(self.features_),
            "parameters": {
                name: getattr(self, name)
                for name in ("m", "ef_construction", "ef_search", "shortlist", "exact_rows", "max_ef_search")
            },
        }
        (directory / DESCRIPTION_FILE).write_text(json.dumps(description) + "\n")

    @classmethod
    def load(cls, directory: str | Path, features: ArrayLike, mmap: bool = True) -> ApproximateSearch:
        """The search saved in `directory` over `features` (the feature index's vectors it was built from); the
        graphs' vectors memory-mapped (shared by the workers through the page cache) unless `mmap` is false."""
        faiss = _faiss()
        directory = Path(directory)
        try:
            description = json.loads((directory / DESCRIPTION_FILE).read_text())
            search = cls(**description["parameters"])
            search._set_features(features)
            if (description["rows"], description["dimensions"]) != search.features_.shape or description[
                "checksum"
            ] != features_checksum(search.features_):
                raise ApproximateSearchError(
                    f"{directory / DESCRIPTION_FILE} was built for other feature vectors; rebuild the index"
                )
            flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
            search.graphs_ = {
                name: faiss.read_index(str(directory / file), flags) for name, file in GRAPH_FILES.items()
            }
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
            if isinstance(error, ApproximateSearchError):
                raise
            raise ApproximateSearchError(
                f"{directory}: damaged approximate search ({error}); rebuild the index"
            ) from error
        if any(graph.ntotal != len(search.features_) for graph in search.graphs_.values()):
            raise ApproximateSearchError(f"{directory}: the graphs do not hold every feature vector; rebuild the index")
        return search


def features_checksum(features: NDArray[np.float32]) -> str:
    """A cheap fingerprint of the vectors: a hash of their shape and of up to 1,000 rows spread over them."""
    import hashlib

    rows = np.linspace(0, len(features) - 1, num=min(len(features), 1000)).astype(np.intp) if len(features) else []
    digest = hashlib.sha256(repr(features.shape).encode())
    digest.update(np.ascontiguousarray(features[rows]).tobytes())
    return digest.hexdigest()[:16]


def has_approximate_search(directory: str | Path) -> bool:
    return (Path(directory) / DESCRIPTION_FILE).is_file()


def save_search(features: ArrayLike, directory: str | Path, above: int | None = None) -> bool:
    """Build and save the approximate search beside a feature index when it holds more than `above` vectors (default
    APPROXIMATE_ABOVE), as `make index` does; True when it did."""
    features = np.asarray(features)
    if len(features) <= (APPROXIMATE_ABOVE if above is None else above):
        return False
    ApproximateSearch().fit(features).save(directory)
    return True


def load_search(
    directory: str | Path, features: ArrayLike, threads: int | None = None
) -> NeighbourSearch | ApproximateSearch:
    """The search a worker serves: the approximate one saved in `directory` when the index has one (faiss's OpenMP
    threads, which OMP_NUM_THREADS sizes), else exact, its Manhattan pass on `threads` threads (None: up to 2)."""
    if has_approximate_search(directory):
        return ApproximateSearch.load(directory, features)
    return NeighbourSearch(features, threads)
