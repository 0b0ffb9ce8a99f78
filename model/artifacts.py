"""A trained genre model on disk: weights plus a JSON description, and the loaded form that predicts.

Keras is imported only when a network is built or loaded, so that the ONNX-served app (model.onnx_model), which
reads the description from here, never imports TensorFlow."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.images import preprocess
from model.presets import Preset

WEIGHTS_FILE = "model.weights.h5"
DESCRIPTION_FILE = "model.json"


class ModelArtifactError(RuntimeError):
    """A model directory that is missing, incomplete or damaged."""


@dataclass
class GenreModel:
    """A trained network with what is needed to use it: its preset, genre order and decision thresholds."""

    network: object  # keras.Model; typed loosely so importing this module does not import Keras
    preset: Preset
    genres: tuple[str, ...]
    thresholds: np.ndarray

    def __post_init__(self) -> None:
        from model.network import with_features

        self._two_outputs = with_features(self.network)

    @property
    def input_size(self) -> int:
        return self.preset.input_size

    def predict(self, posters: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """uint8 RGB (n, s, s, 3) -> genre probabilities (n, n_genres) and feature vectors (n, feature_size)."""
        inputs = preprocess(posters)
        if len(inputs) <= batch_size:  # one small batch: calling the model beats predict()'s set-up
            probabilities, features = self._two_outputs(inputs, training=False)
            return np.asarray(probabilities, np.float32), np.asarray(features, np.float32)
        probabilities, features = self._two_outputs.predict(inputs, batch_size=batch_size, verbose=0)
        return probabilities.astype(np.float32), features.astype(np.float32)

    def save(self, directory: Path, **extra: object) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.network.save_weights(directory / WEIGHTS_FILE)
        description = {
            "preset": self.preset.to_dict(),
            "genres": list(self.genres),
            "thresholds": [float(t) for t in self.thresholds],
            **extra,
        }
        (directory / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> GenreModel:
        from model.network import build_network

        directory = Path(directory)
        weights_path = directory / WEIGHTS_FILE
        preset, genres, thresholds = read_description(directory)
        if not weights_path.is_file():
            raise ModelArtifactError(
                f"{weights_path} is missing: train a model first (make train / python -m model train)"
            )
        network = build_network(preset, len(genres), weights=None)  # every weight comes from weights_path
        try:
            network.load_weights(weights_path)
        except Exception as error:  # h5py and Keras raise many kinds for a damaged file
            raise ModelArtifactError(f"{weights_path} is damaged or from another network: {error}") from error
        return cls(network=network, preset=preset, genres=genres, thresholds=thresholds)


def read_description(directory: Path) -> tuple[Preset, tuple[str, ...], np.ndarray]:
    """The preset, genre order and thresholds in a model directory's model.json."""
    description_path = directory / DESCRIPTION_FILE
    if not description_path.is_file():
        raise ModelArtifactError(
            f"{description_path} is missing: train a model first (make train / python -m model train)"
        )
    try:
        description = json.loads(description_path.read_text())
        preset = Preset.from_dict(description["preset"])
        genres = tuple(description["genres"])
        thresholds = np.asarray(description["thresholds"], dtype=np.float32)
    except (ValueError, KeyError, TypeError) as error:
        raise ModelArtifactError(f"{description_path} is damaged: {error}") from error
    return preset, genres, thresholds
