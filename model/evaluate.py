"""The old name of model.metrics, kept only until model/train.py, tests/test_training.py and bench/genre_ablation.py
(being edited by others) import model.metrics instead; then delete this file. New code imports model.metrics."""

from model.metrics import *  # noqa: F403
