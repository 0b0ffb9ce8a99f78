"""Shared fixtures: a small demo catalog, VGG-16 weights (nothing is downloaded), a model trained
on them, its feature index, and the Flask app over all of it.

Weight loading is tested on a file the tests make. Training uses the ImageNet weights in
../shared/weights when present (CI has them), because random convolutions give features too weak to
learn from a hundred posters; tests of what the model learns skip without them, except in CI."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEMO_MOVIES = 120
SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared/weights/vgg16_imagenet_notop.h5"
needs_imagenet = pytest.mark.skipif(
    not SHARED_WEIGHTS.is_file() and not os.environ.get("CI"),
    reason="../shared/weights/vgg16_imagenet_notop.h5 is not present",
)


@pytest.fixture(scope="session")
def demo_catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from catalog.demo import generate_demo_catalog

    return generate_demo_catalog(
        tmp_path_factory.mktemp("catalogs") / "demo", n_movies=DEMO_MOVIES, seed=1, progress=False
    )


@pytest.fixture(scope="session")
def demo_catalog(demo_catalog_dir: Path):
    from catalog import read_catalog

    return read_catalog(demo_catalog_dir)


@pytest.fixture(scope="session")
def vgg_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VGG-16 convolutional base with random weights, saved the way Keras saves weights."""
    import keras

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("weights") / "vgg16_test_notop.weights.h5"
    keras.applications.VGG16(include_top=False, weights=None, input_shape=(100, 100, 3)).save_weights(path)
    return path


@pytest.fixture(scope="session")
def training_weights(vgg_weights_file: Path) -> Path:
    return SHARED_WEIGHTS if SHARED_WEIGHTS.is_file() else vgg_weights_file


@pytest.fixture(scope="session")
def trained(demo_catalog, training_weights: Path, tmp_path_factory: pytest.TempPathFactory):
    """The demo preset trained for 15 epochs; returns (TrainingResult, model directory)."""
    from model.presets import DEMO
    from model.train import train

    model_dir = tmp_path_factory.mktemp("runs") / "model"
    result = train(demo_catalog, replace(DEMO, epochs=15), training_weights, model_dir, seed=0, progress=False)
    return result, model_dir


@pytest.fixture(scope="session")
def index_dir(demo_catalog, trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model.index import build_index

    result, model_dir = trained
    out = tmp_path_factory.mktemp("runs") / "index"
    build_index(demo_catalog, result.model, model_dir, out, progress=False)
    return out


@pytest.fixture
def app(demo_catalog_dir: Path, trained, index_dir: Path, tmp_path: Path):
    from app import create_app

    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "CATALOG": str(demo_catalog_dir),
            "MODEL": str(trained[1]),
            "INDEX": str(index_dir),
            "DATABASE": str(tmp_path / "posterbench.sqlite"),
        }
    )


@pytest.fixture
def client(app):
    """A test client that sends its session's CSRF token with every page form it posts, as the pages' forms do;
    `app.test_client()` is a client that does not."""
    from flask.testing import FlaskClient

    class CsrfClient(FlaskClient):
        def post(self, path: str, *args, **kwargs):
            data = kwargs.get("data")
            if not path.startswith("/api/") and isinstance(data, dict) and "csrf_token" not in data:
                with self.session_transaction() as session:
                    token = session.setdefault("csrf_token", "test-csrf-token")
                kwargs["data"] = {**data, "csrf_token": token}
            return super().post(path, *args, **kwargs)

    return CsrfClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
