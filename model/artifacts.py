"""A trained model on disk: weights, a JSON description and the poster detector, and the loaded form that predicts.

Keras is imported only when a network is built or loaded, so that the ONNX-served app (model.onnx_model), which
reads the description from here, never imports TensorFlow."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.images import preprocess
from model.poster_detector import DETECTOR_FILE, PosterDetector
from model.presets import Preset

WEIGHTS_FILE = "model.weights.h5"
DESCRIPTION_FILE = "model.json"
REPORT_FILE = "report.json"
"""What training measured (model.train): its split's test figures and its history."""
EXPORT_FILE = "model.onnx.json"
"""The ONNX export's description (model.onnx_model), which records the weights it was made from."""
RATING_INTERVAL_SHARE = 0.8
"""Share of held-out ratings that the rating interval (Description.rating_interval) holds."""
OUTPUTS = ("genres", "features", "decades", "year", "rating", "signature")
"""The network's outputs, by name, in the order the ONNX export lists them."""


class ModelArtifactError(RuntimeError):
    """A model directory that is missing, incomplete or damaged."""


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def weights_stamp(path: Path) -> dict[str, object]:
    """What identifies the Keras weights an export is made from: size, modification time and content hash."""
    stat = path.stat()
    return {"file": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_sha256(path)}


def is_same_weights(path: Path, stamp: dict) -> bool:
    """Whether `path` still holds the weights of `stamp`: same size and time (cheap), else the same content hash
    (a copy that did not keep the time)."""
    stat = path.stat()
    if stat.st_size != stamp["size"]:
        return False
    return stat.st_mtime_ns == stamp["mtime_ns"] or file_sha256(path) == stamp["sha256"]


@dataclass(frozen=True)
class Description:
    """What model.json says besides the weights: how to build the network and how to read its outputs."""

    preset: Preset
    genres: tuple[str, ...]
    thresholds: np.ndarray  # (n_genres,) decision thresholds on the (calibrated) genre probabilities
    decades: tuple[int, ...]  # the decade classes, e.g. (1980, 1990, 2000, 2010)
    rating_interval: tuple[float, float]  # offsets from the expected rating that hold 80 % of held-out ratings


@dataclass(frozen=True)
class Prediction:
    """What a poster evokes; row i of every array belongs to poster i."""

    genres: np.ndarray  # (n, n_genres) probabilities
    features: np.ndarray  # (n, feature_size): the vector recommendations compare
    decades: np.ndarray  # (n, n_decades) probabilities
    year: np.ndarray  # (n,) expected release year
    rating: np.ndarray  # (n,) expected IMDb rating
    poster_score: np.ndarray  # (n,) share of real held-out posters that look less like a poster (1: typical)

    @classmethod
    def from_outputs(cls, outputs: dict[str, np.ndarray], detector: PosterDetector) -> Prediction:
        as_float = {name: np.asarray(value, np.float32) for name, value in outputs.items()}
        return cls(
            genres=as_float["genres"],
            features=as_float["features"],
            decades=as_float["decades"],
            year=as_float["year"].reshape(-1),
            rating=as_float["rating"].reshape(-1),
            poster_score=detector.score(as_float["signature"]),
        )

    @classmethod
    def concatenate(cls, parts: list[Prediction]) -> Prediction:
        return cls(**{name: np.concatenate([getattr(part, name) for part in parts]) for name in cls.__annotations__})


class DescribedModel:
    """What every form of a trained model (Keras, ONNX Runtime) reads from its description."""

    description: Description

    @property
    def preset(self) -> Preset:
        return self.description.preset

    @property
    def genres(self) -> tuple[str, ...]:
        return self.description.genres

    @property
    def thresholds(self) -> np.ndarray:
        return self.description.thresholds

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the posters the network takes."""
        return self.preset.input_size


@dataclass
class GenreModel(DescribedModel):
    """A trained Keras network with what is needed to use it: its description and its poster detector."""

    network: object  # keras.Model; typed loosely so importing this module does not import Keras
    description: Description
    detector: PosterDetector

    def predict(self, posters: np.ndarray, batch_size: int = 64) -> Prediction:
        """uint8 RGB (n, height, width, 3) -> what each poster evokes."""
        inputs = preprocess(posters)
        if len(inputs) <= batch_size:  # one small batch: calling the model beats predict()'s set-up
            outputs = self.network(inputs, training=False)
        else:
            outputs = self.network.predict(inputs, batch_size=batch_size, verbose=0)
        return Prediction.from_outputs(outputs, self.detector)

    def save(self, directory: Path, **extra: object) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.network.save_weights(directory / WEIGHTS_FILE)
        self.detector.save(directory / DETECTOR_FILE)
        write_description(directory, self.description, **extra)

    @classmethod
    def load(cls, directory: str | Path) -> GenreModel:
        from model.network import build_network

        directory = Path(directory)
        weights_path = directory / WEIGHTS_FILE
        description = read_description(directory)
        if not weights_path.is_file():
            raise ModelArtifactError(f"{weights_path} is missing: train a model first (make train / posterbench train)")
        preset = description.preset
        network = build_network(preset, len(description.genres), len(description.decades), weights=None)
        try:
            network.load_weights(weights_path)
        except Exception as error:  # h5py and Keras raise many kinds for a damaged file
            raise ModelArtifactError(f"{weights_path} is damaged or from another network: {error}") from error
        return cls(network=network, description=description, detector=read_detector(directory))


def write_description(directory: Path, description: Description, **extra: object) -> None:
    values = {
        "preset": description.preset.to_dict(),
        "genres": list(description.genres),
        "thresholds": [float(t) for t in description.thresholds],
        "decades": list(description.decades),
        "rating_interval": [float(t) for t in description.rating_interval],
        **extra,
    }
    (directory / DESCRIPTION_FILE).write_text(json.dumps(values, indent=2) + "\n")


def read_description(directory: Path) -> Description:
    """The preset, genre order, thresholds, decades and rating interval in a model directory's model.json."""
    description_path = directory / DESCRIPTION_FILE
    if directory.exists() and not directory.is_dir():
        raise ModelArtifactError(f"{directory} is a file, not a model directory: name the directory that holds it")
    if not description_path.is_file():
        raise ModelArtifactError(f"{description_path} is missing: train a model first (make train / posterbench train)")
    try:
        values = json.loads(description_path.read_text())
    except ValueError as error:
        raise ModelArtifactError(f"{description_path} is damaged: {error}") from error
    if isinstance(values, dict) and "preset" in values and "decades" not in values:
        raise ModelArtifactError(
            f"{description_path} is a genre-only model from an earlier PosterBench, without the decade, year and "
            "rating heads: train it again (make train / posterbench train)"
        )
    if isinstance(values, dict) and "era_weight" in values.get("preset", {}):
        raise ModelArtifactError(
            f"{description_path} is a model from an earlier PosterBench, whose era heads read the feature vector: "
            "train it again (make train / posterbench train)"
        )
    try:
        low, high = (float(t) for t in values["rating_interval"])
        return Description(
            preset=Preset.from_dict(values["preset"]),
            genres=tuple(values["genres"]),
            thresholds=np.asarray(values["thresholds"], dtype=np.float32),
            decades=tuple(int(decade) for decade in values["decades"]),
            rating_interval=(low, high),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ModelArtifactError(f"{description_path} is damaged: {error}") from error


def read_detector(directory: Path) -> PosterDetector:
    path = directory / DETECTOR_FILE
    if not path.is_file():
        raise ModelArtifactError(f"{path} is missing: train the model again (make train / posterbench train)")
    try:
        return PosterDetector.load(path)
    except (ValueError, KeyError, OSError) as error:
        raise ModelArtifactError(f"{path} is damaged ({error}): train the model again (make train)") from error
