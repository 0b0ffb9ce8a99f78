"""Does an image look like a movie poster? A Gaussian model of real posters' VGG-16 signatures (blocks 4 and 5
averaged over the image): the Mahalanobis distance of an image's signature, compared with real held-out posters."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DETECTOR_FILE = "poster_detector.npz"
FALSE_ALARM_RATE = 0.01
"""Share of real posters flagged as not posters: the score under which an image is flagged."""


class PosterDetector:
    """fit(signatures of training posters, signatures of held-out posters); score(signatures) in [0, 1].

    The score of an image is the share of held-out posters whose signature lies farther from the posters' mean (in
    Mahalanobis distance, covariance shrunk by Ledoit and Wolf's rule) than its own: about uniform on real posters,
    near 0 for images unlike any poster. An image looks like a poster when its score is at least
    `false_alarm_rate`."""

    def __init__(self, false_alarm_rate: float = FALSE_ALARM_RATE):
        self.false_alarm_rate = false_alarm_rate

    def fit(self, signatures: np.ndarray, held_out: np.ndarray) -> PosterDetector:
        from scipy import linalg
        from sklearn.covariance import LedoitWolf

        signatures, held_out = (np.log1p(np.asarray(x, np.float64)) for x in (signatures, held_out))
        if len(signatures) < 2 or len(held_out) < 1:
            raise ValueError("the poster detector needs at least 2 training posters and 1 held-out poster")
        estimate = LedoitWolf(store_precision=False).fit(signatures)
        covariance = estimate.covariance_
        try:  # shrunk, it is positive definite: Cholesky inverts it in a tenth of the time of LedoitWolf's pinvh
            precision = linalg.cho_solve(linalg.cho_factor(covariance), np.eye(len(covariance)))
        except linalg.LinAlgError:  # signatures without any spread
            precision = linalg.pinvh(covariance)
        self.mean_ = estimate.location_.astype(np.float32)
        self.precision_ = precision.astype(np.float32)
        self.held_out_distances_ = np.sort(self._distances(held_out))
        return self

    def _distances(self, log_signatures: np.ndarray) -> np.ndarray:
        centred = np.asarray(log_signatures, np.float32) - self.mean_
        return np.einsum("ij,jk,ik->i", centred, self.precision_, centred)

    def score(self, signatures: np.ndarray) -> np.ndarray:
        """(n, signature_size) non-negative signatures -> (n,) share of held-out posters farther out."""
        distances = self._distances(np.log1p(np.maximum(np.asarray(signatures, np.float32), 0)))
        farther = len(self.held_out_distances_) - np.searchsorted(self.held_out_distances_, distances, side="right")
        return (farther / len(self.held_out_distances_)).astype(np.float32)

    def looks_like_poster(self, signatures: np.ndarray) -> np.ndarray:
        return self.passes(self.score(signatures))

    def passes(self, scores: np.ndarray) -> np.ndarray:
        """Whether images of these scores look like posters: scores at least `false_alarm_rate`."""
        return np.asarray(scores) >= self.false_alarm_rate

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(
                handle,
                false_alarm_rate=np.float32(self.false_alarm_rate),
                mean=self.mean_,
                precision=self.precision_,
                held_out_distances=self.held_out_distances_,
            )

    @classmethod
    def load(cls, path: Path) -> PosterDetector:
        with np.load(path, allow_pickle=False) as stored:
            detector = cls(float(stored["false_alarm_rate"]))
            detector.mean_ = stored["mean"].astype(np.float32)
            detector.precision_ = stored["precision"].astype(np.float32)
            detector.held_out_distances_ = stored["held_out_distances"].astype(np.float32)
        if detector.precision_.shape != (len(detector.mean_), len(detector.mean_)):
            raise ValueError(f"{path}: mean and precision matrix disagree in size")
        return detector
