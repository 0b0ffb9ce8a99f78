"""Refines genre predictions with CLEMS, a cost-sensitive label embedding: weighted multidimensional scaling of
the cost between label vectors, random forests regressing features into that embedding, nearest-candidate decoding.

`from embedding import CLEMS` still works, but imports scikit-learn and SciPy only then: importing the package
(`python -m embedding`, the `posterbench` command line, which mounts its commands) stays cheap."""

from __future__ import annotations

__all__ = ["ARRAYS_FILE", "CLEMS", "DESCRIPTION_FILE"]

DESCRIPTION_FILE = "clems.json"
ARRAYS_FILE = "clems.npz"
"""The files a saved CLEMS model is made of (CLEMS.save): named here, so that checking for one imports no SciPy."""


def __getattr__(name: str):
    if name == "CLEMS":
        from embedding.clems import CLEMS

        return CLEMS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
