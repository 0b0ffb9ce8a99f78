"""Refines genre predictions with CLEMS, a cost-sensitive label embedding: weighted multidimensional scaling of
the cost between label vectors, random forests regressing features into that embedding, nearest-candidate decoding."""

from embedding.clems import CLEMS

__all__ = ["CLEMS"]
