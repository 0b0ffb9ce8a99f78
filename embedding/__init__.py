"""Refines genre predictions with CLEMS, a cost-sensitive label embedding: a random-forest
regressor into the embedding and nearest-neighbour decoding. Not written yet (issue 4)."""
