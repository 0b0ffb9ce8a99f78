"""The poster detector: real posters' scores spread evenly over [0, 1], images unlike them score near 0 and are
flagged, and it saves and loads exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.poster_detector import PosterDetector


def signatures(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    """Non-negative, skewed activations like VGG-16's averaged ReLU outputs (log-normal around a common profile)."""
    profile = np.random.default_rng(99).normal(0.0, 1.0, 64)
    return np.exp(profile + shift + rng.normal(0.0, 0.5, (n, 64)))


def test_real_posters_score_evenly_and_strangers_are_flagged() -> None:
    rng = np.random.default_rng(0)
    detector = PosterDetector(false_alarm_rate=0.05).fit(signatures(rng, 2000), signatures(rng, 1000))
    new_posters = detector.score(signatures(rng, 2000))
    assert 0.4 < new_posters.mean() < 0.6 and np.all((new_posters >= 0) & (new_posters <= 1))
    assert abs(np.mean(~detector.looks_like_poster(signatures(rng, 2000))) - 0.05) < 0.02  # its false-alarm rate
    strangers = np.vstack([signatures(rng, 50, shift=2.0), np.zeros((5, 64)), np.full((5, 64), 1e4)])
    assert np.all(detector.score(strangers) < 0.01) and not detector.looks_like_poster(strangers).any()


def test_it_saves_and_loads_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    detector = PosterDetector().fit(signatures(rng, 300), signatures(rng, 100))
    detector.save(tmp_path / "detector.npz")
    loaded = PosterDetector.load(tmp_path / "detector.npz")
    probe = signatures(rng, 20)
    np.testing.assert_array_equal(loaded.score(probe), detector.score(probe))
    assert loaded.false_alarm_rate == pytest.approx(detector.false_alarm_rate)


def test_a_damaged_or_impossible_fit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 training posters"):
        PosterDetector().fit(np.ones((1, 8)), np.ones((1, 8)))
    detector = PosterDetector().fit(signatures(np.random.default_rng(2), 50), signatures(np.random.default_rng(3), 10))
    detector.precision_ = detector.precision_[:10]
    detector.save(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="disagree in size"):
        PosterDetector.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("n_posters", [30, 3000], ids=["fewer posters than dimensions", "more"])
def test_the_precision_is_the_inverse_ledoit_wolf_estimates(n_posters: int) -> None:
    """The detector inverts the shrunk covariance itself (by Cholesky, faster than LedoitWolf's pseudo-inverse): the
    same matrix, whether the posters are fewer than the signature's dimensions, as in the tests' trainings, or not."""
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(4)
    training = np.exp(rng.normal(0.0, 0.5, (n_posters, 256)))
    detector = PosterDetector().fit(training, np.exp(rng.normal(0.0, 0.5, (20, 256))))
    expected = LedoitWolf().fit(np.log1p(training)).precision_
    np.testing.assert_allclose(detector.precision_, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_signatures_without_spread_are_inverted_as_ledoit_wolf_does() -> None:
    """Identical signatures leave a covariance of zeros, which Cholesky cannot invert: the pseudo-inverse then, as
    LedoitWolf computes it (zeros)."""
    from sklearn.covariance import LedoitWolf

    same = np.ones((10, 16))
    detector = PosterDetector().fit(same, same[:3])
    np.testing.assert_array_equal(detector.precision_, LedoitWolf().fit(np.log1p(same)).precision_)
    assert detector.score(same).shape == (10,)
