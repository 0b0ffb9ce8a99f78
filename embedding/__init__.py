"""Refines genre predictions with CLEMS, a cost-sensitive label embedding: weighted multidimensional scaling of
the cost between label vectors, random forests regressing features into that embedding, nearest-candidate decoding.

`from embedding import CLEMS` still works, but imports scikit-learn and SciPy only then: importing the package
(`python -m embedding`, the `posterbench` command line, which mounts its commands) stays cheap."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = [
    "ARRAYS_FILE",
    "CLEMS",
    "DESCRIPTION_FILE",
    "MAX_SEED",
    "SOURCE_FILE",
    "EmbeddingMismatchError",
    "check_fitted_for",
]

DESCRIPTION_FILE = "clems.json"
ARRAYS_FILE = "clems.npz"
"""The files a saved CLEMS model is made of (CLEMS.save): named here, so that checking for one imports no SciPy."""
MAX_SEED = 2**32 - 1
"""The largest seed the forests' random state takes (`embed fit --seed`)."""
SOURCE_FILE = "source.json"
"""Beside them, written by embedding.pipeline.fit_clems: the fingerprint of the model whose feature vectors the
forests were fitted on."""


class EmbeddingMismatchError(ValueError):
    """A CLEMS directory fitted on another model's feature vectors than the one it is to read."""


def check_fitted_for(clems_dir: str | Path, model_dir: str | Path) -> None:
    """Refuse a CLEMS directory fitted on another model's feature vectors (the model trained again since: its
    forests would read vectors of another space). One fitted before the record was kept is taken as it is."""
    from model.index import model_fingerprint

    try:
        fitted_on = json.loads((Path(clems_dir) / SOURCE_FILE).read_text(encoding="utf-8"))["model_fingerprint"]
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError) as error:
        message = f"{clems_dir}: damaged {SOURCE_FILE} ({error}); fit it again (make clems)"
        raise EmbeddingMismatchError(message) from error
    if fitted_on != model_fingerprint(Path(model_dir)):
        raise EmbeddingMismatchError(
            f"{clems_dir} was fitted on the feature vectors of other weights than {model_dir}'s (trained again "
            "since?); fit it again (make clems)"
        )


def __getattr__(name: str) -> type:
    if name == "CLEMS":
        from embedding.clems import CLEMS

        return CLEMS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
