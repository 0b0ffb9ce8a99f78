"""Chooses the distance (Manhattan, Euclidean or cosine) that recommendations use, with an
epsilon-greedy bandit that learns from users' feedback. Not written yet (issue 5)."""
