"""Shared fixtures: a small demo catalog, VGG-16 weights (nothing is downloaded), a model trained
on them, its feature index, and the Flask app over all of it.

Weight loading is tested on a file the tests make. Training uses the ImageNet weights in
../shared/weights when present (CI has them), because random convolutions give features too weak to
learn from a hundred posters; tests of what the model learns skip without them, except in CI."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEMO_MOVIES = 120
SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared/weights/vgg16_imagenet_notop.h5"
needs_imagenet = pytest.mark.skipif(
    not SHARED_WEIGHTS.is_file() and not os.environ.get("CI"),
    reason="../shared/weights/vgg16_imagenet_notop.h5 is not present",
)


def popen_interruptible(command: list[str], **kwargs) -> subprocess.Popen:
    """Start `command` as a person starts it at a terminal, where Ctrl-C (SIGINT) interrupts it, even when the tests
    themselves run in a background job (`make test &`), whose children inherit SIGINT ignored and so would never see
    the test's SIGINT. The commands keep Python's convention of staying ignored then (a background job is not to be
    stopped by the terminal's Ctrl-C); the test, not the product, asks for a foreground child. Installing a handler
    here (only while the child is started, from the main thread) makes exec give the child the default action."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return subprocess.Popen(command, **kwargs)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(command, **kwargs)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


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


def untrained_model(network, preset):
    """A GenreModel of a built (not trained) network, with a description and a poster detector fit on random
    signatures: for tests of saving, loading and exporting, where what the network learned does not matter."""
    import numpy as np

    from catalog import GENRES
    from model.artifacts import Description, GenreModel
    from model.poster_detector import PosterDetector

    description = Description(
        preset=preset,
        genres=GENRES,
        thresholds=np.full(len(GENRES), 0.5, np.float32),
        decades=(1990, 2000, 2010),
        rating_interval=(-1.0, 1.0),
    )
    rng = np.random.default_rng(0)
    size = network.get_layer("signature").output.shape[-1]
    detector = PosterDetector().fit(rng.exponential(size=(64, size)), rng.exponential(size=(32, size)))
    return GenreModel(network, description, detector)


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
def app_settings(demo_catalog_dir: Path, trained, index_dir: Path, tmp_path: Path) -> dict:
    """The test app's settings: the demo catalog, its model and index, and a new SQLite database."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test",
        "CATALOG": str(demo_catalog_dir),
        "MODEL": str(trained[1]),
        "INDEX": str(index_dir),
        "DATABASE": str(tmp_path / "posterbench.sqlite"),
    }


@pytest.fixture
def app(app_settings: dict):
    from app import create_app

    return create_app(app_settings)


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


# ---------------------------------------------------------------- PostgreSQL

TEST_DATABASE_URL = "POSTERBENCH_TEST_DATABASE_URL"


@pytest.fixture
def new_postgres_url() -> Iterator[Callable[[], str]]:
    """Makes URLs of new, empty schemas on the PostgreSQL server that POSTERBENCH_TEST_DATABASE_URL names (`eval
    "$(.ci/postgres)"` starts one and sets it); the schemas are dropped afterwards. Without a server the test is
    skipped, except in CI, where it fails."""
    base = os.environ.get(TEST_DATABASE_URL)
    if not base:
        message = f'no PostgreSQL server: set {TEST_DATABASE_URL} (eval "$(.ci/postgres)" starts one)'
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    import psycopg

    made: list[str] = []

    def make() -> str:
        schema = f"test_{secrets.token_hex(6)}"
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        made.append(schema)
        separator = "&" if "?" in base else "?"
        return f"{base}{separator}options={quote(f'-csearch_path={schema}')}"

    yield make
    with psycopg.connect(base, autocommit=True) as admin:
        for schema in made:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_url(new_postgres_url: Callable[[], str]) -> str:
    """The URL of a new, empty schema of PostgreSQL's (see new_postgres_url)."""
    return new_postgres_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database of each kind: a SQLite file path, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "state.sqlite")
    return request.getfixturevalue("postgres_url")
