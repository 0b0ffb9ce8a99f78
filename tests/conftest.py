"""Shared fixtures: a small demo catalog, VGG-16 weights (nothing is downloaded), a model trained
on them, its feature index, and the Flask app over all of it.

Weight loading is tested on a file the tests make. Training uses the ImageNet weights in
../shared/weights when present (CI has them), because random convolutions give features too weak to
learn from a hundred posters; tests of what the model learns skip without them, except in CI.

The trained models and the index are built once per state of the code that makes them and kept in pytest's cache
(built_once): a fresh clone, CI, `pytest --cache-clear` and any change to catalog/ or model/ train them again."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from urllib.parse import quote

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEMO_MOVIES = 120
SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared/weights/vgg16_imagenet_notop.h5"
needs_imagenet = pytest.mark.skipif(
    not SHARED_WEIGHTS.is_file() and not os.environ.get("CI"),
    reason="../shared/weights/vgg16_imagenet_notop.h5 is not present",
)


def browser_tests() -> list[pytest.MarkDecorator]:
    """The marks of a module of browser tests: `browser`, and skipped without Debian's chromium and chromium-driver,
    except in CI, where they must run."""
    from scraper.browser import CHROMEDRIVER_NAMES, CHROMIUM_NAMES, find_program

    missing = not (find_program(CHROMIUM_NAMES) and find_program(CHROMEDRIVER_NAMES))
    reason = "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
    return [pytest.mark.browser, pytest.mark.skipif(missing and not os.environ.get("CI"), reason=reason)]


def fresh_browser(driver) -> None:
    """A browser shared by a module's tests made to look as a new one starts, between two of them: a blank page, no
    cookies (no session), an empty cache, the window size of the scraper's options. The app keeps no web storage, so
    that is all a test leaves behind."""
    from scraper.browser import WINDOW_SIZE

    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.set_window_size(*WINDOW_SIZE)


@pytest.fixture(scope="module")
def shared_browser():
    """Headless Chromium as the scraper starts it (Debian's chromium and chromedriver), with images shown: started
    once for the module, as starting Chromium costs more CPU than most page loads; each test makes it look new
    (fresh_browser)."""
    from scraper.browser import browser_session

    with browser_session(images=True) as driver:
        yield driver


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the browser tests save their screenshots: var/test-artifacts/screenshots (POSTERBENCH_ARTIFACTS moves
    var/test-artifacts)."""
    root = Path(__file__).resolve().parents[1]
    directory = Path(os.environ.get("POSTERBENCH_ARTIFACTS", root / "var/test-artifacts")) / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


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


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: its length, type, data and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG of a header alone, declaring `width` x `height` 8-bit RGB pixels: refused from its header, before any
    pixel is read."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def every_file(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (hidden ones included) and its bytes: to show that a stopped write changed none."""
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def the_work_must_not_start(monkeypatch: pytest.MonkeyPatch, *targets: str) -> None:
    """Make each of `targets` (module.attribute) fail the test if it is called: the inputs must be refused first."""

    def started(*arguments, **options):
        raise AssertionError("the work started before the inputs were refused")

    for target in targets:
        monkeypatch.setattr(target, started)


def demo_catalog_built_once(
    request: pytest.FixtureRequest, name: str, n_movies: int, seed: int, id_prefix: str = "tt99"
) -> Path:
    """A generated demo catalog of `n_movies` (`seed`), kept in pytest's cache as the models are (built_once): the
    pytest-xdist workers and later runs copy it instead of drawing its posters again. Demo catalogs of every seed
    number their movies alike (tt99000001...); another `id_prefix` gives these movies ids of their own, as posters
    a model never saw need: evaluation leaves out the ids a model trained or validated on."""
    from catalog import read_catalog, write_movies_csv
    from catalog.demo import generate_demo_catalog

    def build(out: Path) -> None:
        generate_demo_catalog(out / name, n_movies=n_movies, seed=seed, progress=False)
        if id_prefix != "tt99":
            movies = []
            for movie in read_catalog(out / name).movies:
                imdb_id = id_prefix + movie.imdb_id.removeprefix("tt99")
                poster = f"posters/{imdb_id}.jpg"
                (out / name / movie.poster).rename(out / name / poster)
                movies.append(replace(movie, imdb_id=imdb_id, poster=poster))
            write_movies_csv(out / name, movies)

    inputs = {"n_movies": n_movies, "seed": seed, "id_prefix": id_prefix}
    return built_once(request, f"catalog-{name}", inputs, build)[0] / name


def first_movies(catalog_dir: Path, n: int, out: Path) -> Path:
    """A catalog in `out` of the first `n` movies of the one in `catalog_dir` (their rows and poster files)."""
    from catalog import read_catalog, write_movies_csv

    movies = read_catalog(catalog_dir).movies[:n]
    (out / "posters").mkdir(parents=True)
    for movie in movies:
        shutil.copyfile(catalog_dir / movie.poster, out / movie.poster)
    write_movies_csv(out, movies)
    return out


@pytest.fixture(scope="session")
def demo_catalog_dir(request: pytest.FixtureRequest) -> Path:
    return demo_catalog_built_once(request, "demo", DEMO_MOVIES, seed=1)


@pytest.fixture(scope="session")
def demo_catalog(demo_catalog_dir: Path):
    from catalog import read_catalog

    return read_catalog(demo_catalog_dir)


SMALL_MOVIES = 40
TEST_INPUT_SIZE = (64, 96)
"""The input (width, height) of the models the tests train to learn something: the tests of what they learn (the
genres, the era) pass at 64 x 96 as at the demo preset's 100 x 100, and each poster through VGG-16 costs 1.6 times
less. Tall, as the default preset's posters are."""
TINY_INPUT_SIZE = (32, 32)
"""The input of the models that tests train to see how training runs, not what it learns: VGG-16's smallest."""


@pytest.fixture(scope="session")
def small_catalog(request: pytest.FixtureRequest):
    """A demo catalog of 40 movies (32 train, 4 validation, 4 test): for tests of how training runs (resuming, its
    cache, fine-tuning), where what the model learns does not matter and each poster costs a pass through VGG-16."""
    from catalog import read_catalog

    return read_catalog(demo_catalog_built_once(request, "small", SMALL_MOVIES, seed=2))


@pytest.fixture(scope="session")
def vgg_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VGG-16 convolutional base with random weights, saved the way Keras saves weights."""
    import keras

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("weights") / "vgg16_test_notop.weights.h5"
    keras.applications.VGG16(include_top=False, weights=None, input_shape=(100, 100, 3)).save_weights(path)
    return path


@pytest.fixture(scope="session")
def training_weights(request: pytest.FixtureRequest) -> Path:
    """The ImageNet weights of ../shared/weights, else random ones (vgg_weights_file, made only then: it imports
    TensorFlow)."""
    return SHARED_WEIGHTS if SHARED_WEIGHTS.is_file() else request.getfixturevalue("vgg_weights_file")


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


# ---------------------------------------------------------------- models built once

ROOT = Path(__file__).resolve().parents[1]
BUILDING_CODE = ("catalog", "model")
"""The packages whose code makes the cached models and indexes: any change to them builds them again."""
BUILDING_LIBRARIES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "scipy", "scikit-learn", "h5py", "pillow")
KEEP_OLD_BUILDS_S = 3600
"""Builds made for other code are removed from the cache once they are this old (seconds)."""


def digest_files(paths: Iterable[Path], relative_to: Path) -> str:
    """A digest of the files' names (relative to `relative_to`) and contents."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(relative_to)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def catalog_digest(directory: Path) -> str:
    return digest_files((path for path in directory.rglob("*") if path.is_file()), directory)


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def building_key(inputs: dict) -> str:
    """What a cached build depends on besides its `inputs`: the code of catalog/ and model/ (which generates, reads,
    trains and indexes), the versions of Python and of the numerical libraries."""
    code = digest_files((path for package in BUILDING_CODE for path in (ROOT / package).rglob("*.py")), ROOT)
    versions = {name: installed_version(name) for name in BUILDING_LIBRARIES}
    described = json.dumps({"inputs": inputs, "code": code, "versions": versions, "python": sys.version}, default=str)
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def built_once(
    request: pytest.FixtureRequest, name: str, inputs: dict, build: Callable[[Path], object]
) -> tuple[Path, object | None]:
    """A directory that `build(directory)` makes, kept in pytest's cache (.pytest_cache/d/posterbench/) under a key of
    everything it depends on (`inputs`, and see building_key), so that a later run of unchanged code copies it
    instead of training again; a fresh clone, CI and `pytest --cache-clear` build it anew. Returns a copy in this
    session's temporary directory (tests cannot change the kept one) and what `build` returned, or None when the
    directory came from the cache. Runs at once (pytest-xdist workers, two sessions) build it once: the first takes a
    lock, the others wait for it. Without the cache (`-p no:cacheprovider`) it is built each time."""
    copy = request.getfixturevalue("tmp_path_factory").mktemp(name) / name
    cache = getattr(request.config, "cache", None)
    if cache is None:
        copy.mkdir()
        return copy, build(copy)
    root = cache.mkdir("posterbench")
    kept = root / f"{name}-{building_key(inputs)}"
    complete = root / f"{kept.name}.json"  # written once the build is whole
    built = None
    with (root / f"{kept.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not complete.is_file():
            shutil.rmtree(kept, ignore_errors=True)
            kept.mkdir()
            built = build(kept)
            complete.write_text(json.dumps(inputs, default=str) + "\n")
            for old in root.glob(f"{name}-*.json"):
                if old != complete and time.time() - old.stat().st_mtime > KEEP_OLD_BUILDS_S:
                    old.unlink()
                    shutil.rmtree(old.with_suffix(""), ignore_errors=True)
                    old.with_suffix(".lock").unlink(missing_ok=True)
        shutil.copytree(kept, copy)
    return copy, built


class SavedTraining:
    """What training returned (model.train.TrainingResult's fields), read back from a saved model directory. The
    Keras model is loaded only when a test asks for `model`: the tests of the app serve the ONNX export and need the
    trained model's directory, its split or its report, not its network."""

    def __init__(self, model_dir: Path) -> None:
        from model.artifacts import REPORT_FILE
        from model.split import SPLIT_FILE, Split

        saved = json.loads((model_dir / REPORT_FILE).read_text())
        self.directory = model_dir
        self.split = Split.load(model_dir / SPLIT_FILE)
        self.report, self.history = saved["test"], saved["history"]

    @functools.cached_property
    def model(self):
        from model.artifacts import GenreModel

        return GenreModel.load(self.directory)


def trained_model(
    request: pytest.FixtureRequest, name: str, catalog, preset, weights: Path, seed: int = 0, keep_cache: bool = False
):
    """`preset` trained on `catalog` from `weights`, built once (see built_once); returns (TrainingResult, model
    directory). The result is the one training returned when this session trained it, else read back from disk
    (SavedTraining).
    With `keep_cache`, the cached frozen outputs stay beside the model directory (`train --keep-cache`)."""
    inputs = {
        "preset": preset.to_dict(),
        "seed": seed,
        "catalog": catalog_digest(catalog.directory),
        "weights": digest_files([weights], weights.parent),
        "keep_cache": keep_cache,
    }

    def build(out: Path):
        from model.train import train

        return train(catalog, preset, weights, out / "model", seed=seed, progress=False, keep_cache=keep_cache)

    directory, result = built_once(request, name, inputs, build)
    model_dir = directory / "model"
    return result or SavedTraining(model_dir), model_dir


@pytest.fixture(scope="session")
def trained(request: pytest.FixtureRequest, demo_catalog, training_weights: Path):
    """The demo preset trained for 15 epochs on the demo catalog at TEST_INPUT_SIZE; returns (TrainingResult, model
    directory). Its cached frozen outputs are kept beside it, for bench/frozen_pool_probes.py's test."""
    from model.presets import DEMO

    demo = replace(DEMO, epochs=15, input_size=TEST_INPUT_SIZE)
    return trained_model(request, "demo-model", demo_catalog, demo, training_weights, keep_cache=True)


@pytest.fixture(scope="session")
def index_dir(request: pytest.FixtureRequest, demo_catalog, trained) -> Path:
    """The demo catalog's index by the trained demo model (built once, as that model is)."""
    from model.index import build_index, model_fingerprint

    result, model_dir = trained
    inputs = {"model": model_fingerprint(model_dir), "catalog": catalog_digest(demo_catalog.directory)}

    def build(out: Path) -> None:
        build_index(demo_catalog, result.model, model_dir, out / "index", progress=False)

    return built_once(request, "demo-index", inputs, build)[0] / "index"


@pytest.fixture(scope="session")
def onnx_model_dir(request: pytest.FixtureRequest, trained) -> Path:
    """The trained demo model with its ONNX export, what the app serves (built once, as the model is)."""
    from model.index import model_fingerprint
    from model.onnx_export import export_onnx

    def build(out: Path) -> None:
        shutil.copytree(trained[1], out / "model")
        export_onnx(out / "model")

    return built_once(request, "demo-onnx", {"model": model_fingerprint(trained[1])}, build)[0] / "model"


@pytest.fixture
def app_settings(demo_catalog_dir: Path, onnx_model_dir: Path, index_dir: Path, tmp_path: Path) -> dict:
    """The test app's settings: the demo catalog, its model's ONNX export (what the app serves: no TensorFlow in the
    test process for it) and index, and a new SQLite database."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test",
        "CATALOG": str(demo_catalog_dir),
        "MODEL": str(onnx_model_dir),
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


# ---------------------------------------------------------------- a recommendation's key


def key_for(app, recommendation_id: int) -> str:
    """The key the app gives a saved recommendation (app.recommendations.recommendation_key: its id and its row's
    salt, by the app's SECRET_KEY); for an id with no row, a key of the right shape."""
    from app.db import get_db
    from app.recommendations import find_recommendation, row_key

    with app.app_context():
        shown = find_recommendation(get_db(), recommendation_id)
        return "A" * 22 if shown is None else row_key(app.config["SECRET_KEY"], shown)


def results_path(app, recommendation_id: int, suffix: str = "") -> str:
    """/results/ID[SUFFIX]?key=KEY: a recommendation's page (or its feedback, query.jpg, scatter.svg), with its key."""
    return f"/results/{recommendation_id}{suffix}?key={key_for(app, recommendation_id)}"


def vote_body(app, recommendation_id: int, rating: object) -> dict:
    """The JSON body of POST /api/feedback: the recommendation's id and key, and the rating."""
    return {"id": recommendation_id, "key": key_for(app, recommendation_id), "rating": rating}


def under_results(location: str, suffix: str) -> str:
    """A results page's address (/results/ID?key=KEY, as a redirect gives it) with `suffix` (/feedback, /query.jpg,
    /scatter.svg) after the id, its key kept."""
    path, _, query = location.partition("?")
    return f"{path}{suffix}?{query}"


def recommendation_id_of(location: str) -> int:
    """The id in a results page's address."""
    return int(location.split("?", 1)[0].rsplit("/", 1)[1])


# -- a thread held at one point, as a debugger's breakpoint holds it ---------------------------------------------------

HOLD_TIMEOUT_S = 120


class HeldThread(threading.Thread):
    """Runs `work` in a thread that stops just before the call that `stops_at(frame, event, arg)` picks (a
    sys.setprofile event: "call" for a Python function, "c_call" for a built-in one), until `release`."""

    def __init__(self, work: Callable[[], object], stops_at: Callable[[FrameType, str, object], bool]) -> None:
        super().__init__(daemon=True)
        self.work, self.stops_at = work, stops_at
        self.held, self.released = threading.Event(), threading.Event()
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        sys.setprofile(self.hook)
        try:
            self.result = self.work()
        except BaseException as error:
            self.error = error
        finally:
            sys.setprofile(None)
            self.held.set()  # a thread that ended before its stop: wait_held reports its error at once

    def hook(self, frame: FrameType, event: str, arg: object) -> None:
        if not self.held.is_set() and self.stops_at(frame, event, arg):
            self.held.set()
            self.released.wait(HOLD_TIMEOUT_S)

    def wait_held(self) -> None:
        assert self.held.wait(HOLD_TIMEOUT_S), "the thread never reached its stop"
        assert self.error is None, repr(self.error)

    def release(self) -> None:
        self.released.set()
        self.join(HOLD_TIMEOUT_S)
        assert not self.is_alive()


@pytest.fixture(scope="module")
def served_model_loaded_once(onnx_model_dir: Path) -> Iterator[None]:
    """Every test still builds its own app (its own database, rate limits and sessions), but what the apps of a module
    only read (the catalog, the ONNX session of the trained demo model, the index) is loaded once for the same
    directories, as a gunicorn worker loads it once for all its requests: that load is most of create_app's time.
    Apps of another model directory or with CLEMS load theirs as before, so start-up checks still run."""
    import app.resources as resources

    real_load = resources.load
    loaded: dict[tuple, resources.Resources] = {}

    def load_once(catalog_dir, model_dir, index_dir, clems_dir=None, *args, **kwargs) -> resources.Resources:
        if str(model_dir) != str(onnx_model_dir) or clems_dir:
            return real_load(catalog_dir, model_dir, index_dir, clems_dir, *args, **kwargs)
        key = (str(catalog_dir), str(model_dir), str(index_dir), args, tuple(sorted(kwargs.items())))
        if key not in loaded:
            loaded[key] = real_load(catalog_dir, model_dir, index_dir, clems_dir, *args, **kwargs)
        return loaded[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resources, "load", load_once)
        yield
