"""The installable package: the wheel carries every package the app serves from with its templates, static files,
migrations and gunicorn settings (and no tests or benchmarks); the base install serves without the training or
scraping stack (serving a prediction imports no TensorFlow, Keras, ONNX or Selenium, and every library it loads
comes from the base dependencies); the two locks pin every dependency with hashes and agree with each other; each
package imports only the packages before it in the pipeline, and no module is over 500 lines."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = ("app", "bandit", "catalog", "embedding", "model", "posterbench", "recommend", "scraper")
APP_FOLDERS = ("templates", "static")  # top-level folders of the checkout that install inside app/
# The training and scraping stacks (extras train and scrape) and what only they bring: modules, and distributions.
HEAVY = ("tensorflow", "keras", "onnx", "h5py", "selenium", "trio")
HEAVY_DISTRIBUTIONS = {"tensorflow", "tensorflow-cpu", "keras", "onnx", "h5py", "selenium", "trio", "trio-websocket"}


def dependency_closure(distribution: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Canonical names of `distribution` and everything its installed metadata requires, with `extras`."""
    seen: set[tuple[str, frozenset[str]]] = set()
    queue = [(distribution, extras)]
    while queue:
        name, wanted = queue.pop()
        if (canonicalize_name(name), wanted) in seen:
            continue
        seen.add((canonicalize_name(name), wanted))
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            environments = [default_environment() | {"extra": extra} for extra in wanted or {""}]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                queue.append((requirement.name, frozenset(requirement.extras)))
    return {name for name, _ in seen}


def locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a lock file written by `make lock`."""
    pins = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", path.read_text()):
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if match:
            pins[canonicalize_name(match[1])] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return pins


def test_the_base_install_serves_without_training_or_scraping() -> None:
    base = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    names = {canonicalize_name(requirement.name) for requirement in base}
    assert {"flask", "gunicorn", "onnxruntime", "numpy", "pillow", "matplotlib", "scikit-learn", "psycopg"} <= names
    assert not names & HEAVY_DISTRIBUTIONS, names
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"train", "scrape", "dev"} <= set(extras)
    assert any(text.startswith("tensorflow") for text in extras["train"]) and "selenium" in " ".join(extras["scrape"])
    assert PYPROJECT["project"]["scripts"] == {"posterbench": "posterbench.cli:main"}


def test_both_locks_pin_every_dependency_with_hashes_and_agree() -> None:
    serving, full = locked(ROOT / "requirements.txt"), locked(ROOT / "requirements-dev.txt")
    for pins in (serving, full):
        assert all(hashes for _, hashes in pins.values()), [name for name, (_, h) in pins.items() if not h]
        assert "setuptools" in pins  # what builds the project with --no-build-isolation
    assert not set(serving) & HEAVY_DISTRIBUTIONS, "the serving lock installs a training or scraping library"
    # Everything the installed project needs, with all its extras, is pinned in the full lock; the base in both.
    assert dependency_closure("posterbench") - {"posterbench"} <= set(serving)
    assert dependency_closure("posterbench", frozenset({"dev"})) - {"posterbench"} <= set(full)
    assert {name: serving[name][0] for name in serving} == {name: full[name][0] for name in serving}


def test_the_wheel_carries_the_packages_and_their_files(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    for package in PACKAGES + APP_FOLDERS:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", "dist", "."],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (source / "dist").glob("posterbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "app/templates/base.html",
        "app/templates/results.html",
        "app/static/style.css",
        "app/static/upload.js",
        "app/openapi.json",
        "app/migrations/sqlite/0001_recommendations_and_feedback.sql",
        "app/migrations/postgresql/0001_recommendations_and_feedback.sql",
        "app/gunicorn_conf.py",
        "posterbench/cli.py",
        "catalog/demo/__init__.py",
    ):
        assert expected in names, f"{expected} is not in the wheel"
    # exactly the product packages: no tests/, bench/ or tools/ (the IMDb replica, the gunicorn launcher)
    assert {name.split("/")[0] for name in names if "/" in name and ".dist-info/" not in name} == set(PACKAGES)
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "posterbench = posterbench.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


# Run in a fresh interpreter as if on the serving install: a meta-path hook refuses every module that only a
# distribution outside the base install provides (the extras, and what they bring: TensorFlow, Keras, ONNX,
# Selenium, pandas...) and records the attempts; the app serves an upload, its results page, the API, the bandit
# page and a static file from an ONNX export, and then reports every library loaded since start-up.
SERVE_WITHOUT_EXTRAS = """
import importlib.abc, io, json, sys
before = set(sys.modules)
ABSENT = set(json.loads(sys.argv[1]))
refused = []

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            refused.append(name.split(".")[0])
            raise ImportError(f"{name} is not part of the serving install")
        return None

sys.meta_path.insert(0, Refuse())
from app import create_app
from app.resources import get_resources

catalog_dir, model_dir, index_dir, database, poster = sys.argv[2:]
app = create_app({"TESTING": True, "SECRET_KEY": "t", "CATALOG": catalog_dir, "MODEL": model_dir,
                  "INDEX": index_dir, "DATABASE": database})
client = app.test_client()
with client.session_transaction() as session:
    session["csrf_token"] = "t"
with open(poster, "rb") as handle:
    image = handle.read()
statuses = []
answer = client.post("/recommend", data={"csrf_token": "t", "poster": (io.BytesIO(image), "p.jpg")},
                     content_type="multipart/form-data")
statuses.append(answer.status_code)
statuses.append(client.get(answer.headers["Location"]).status_code)
api = client.post("/api/recommend", data={"image": (io.BytesIO(image), "p.jpg")}, headers={"X-Requested-With": "t"},
                  content_type="multipart/form-data")
statuses.append(api.status_code)
statuses.append(client.get("/bandit").status_code)
statuses.append(client.get("/static/style.css").status_code)
with app.app_context():
    model = type(get_resources().model).__name__
loaded = sorted({name.split(".")[0] for name in set(sys.modules) - before} - set(sys.stdlib_module_names))
print(json.dumps({"statuses": statuses, "model": model, "loaded": loaded, "refused": refused,
                  "recommendations": len(api.get_json()["recommendations"])}))
"""


def test_serving_a_prediction_imports_no_training_or_scraping_library(
    onnx_model_dir: Path, demo_catalog_dir: Path, demo_catalog, index_dir: Path, tmp_path: Path
) -> None:
    poster = demo_catalog.poster_path(demo_catalog.movies[3])
    arguments = [
        str(demo_catalog_dir),
        str(onnx_model_dir),
        str(index_dir),
        str(tmp_path / "s.sqlite"),
        str(poster),
    ]
    providers = metadata.packages_distributions()
    base = dependency_closure("posterbench")
    absent = sorted(
        module
        for module, names in providers.items()
        if not {canonicalize_name(name) for name in names} & base or module in HEAVY
    )
    assert set(HEAVY) <= set(absent)
    done = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_EXTRAS, json.dumps(absent), *arguments],
        cwd=tmp_path,  # not the checkout: the installed packages
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["statuses"] == [303, 200, 201, 200, 200] and report["recommendations"] == 5
    assert report["model"] == "OnnxGenreModel"
    # Not even tried (other libraries may look for optional ones, such as pandas, and go on without them).
    assert not set(report["refused"]) & set(HEAVY), f"the serving path tried to import {report['refused']}"
    # Every third-party library it loaded is one the base install brings.
    outside = {
        module
        for module in report["loaded"]
        if module in providers and not {canonicalize_name(name) for name in providers[module]} & base
    }
    assert outside == set(), f"loaded from outside the base install: {outside}"
    used = {canonicalize_name(name) for module in report["loaded"] for name in providers.get(module, [])}
    assert {"flask", "onnxruntime", "numpy", "posterbench"} <= used
    # Without CLEMS configured, no scikit-learn and no SciPy: a second of each worker's start (bench/README.md).
    assert not {"sklearn", "scipy"} & set(report["loaded"]), "the serving path loaded CLEMS's libraries"


def test_the_app_finds_its_templates_and_static_files_in_a_checkout() -> None:
    from app import resource_folder

    assert (resource_folder("templates") / "results.html").is_file()
    assert (resource_folder("static") / "style.css").is_file()
    assert resource_folder("templates") == ROOT / "templates"  # the top-level folders of the project's layout


MAX_MODULE_LINES = 500
"""Issue 16's layout rule: no module outside tests/ longer than this; past it, a module holds more than one job."""


def test_no_module_outside_the_tests_is_over_500_lines() -> None:
    skipped = {"tests", "var", "node_modules"}
    folders = [
        path for path in ROOT.iterdir() if path.is_dir() and not path.name.startswith(".") and path.name not in skipped
    ]
    modules = [*ROOT.glob("*.py"), *(path for folder in folders for path in folder.rglob("*.py"))]
    assert len(modules) > 50 and ROOT / "model" / "train.py" in modules
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in modules}
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}


IMPORT_ORDER = {
    "catalog": 0,
    "recommend": 0,
    "scraper": 1,
    "model": 1,
    "embedding": 2,
    "bandit": 3,
    "app": 4,
    "posterbench": 5,
}
"""The README's import order ("The pipeline"): a product package imports only the packages of a lower rank."""


def imported_packages(path: Path) -> set[str]:
    """The project's packages that the module at `path` imports, at its top or inside functions."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    return imported & set(IMPORT_ORDER)


def test_each_package_imports_only_the_packages_before_it() -> None:
    assert set(IMPORT_ORDER) == set(PACKAGES)
    against_the_flow = {
        f"{path.relative_to(ROOT)} imports {other}"
        for package, rank in IMPORT_ORDER.items()
        for path in (ROOT / package).rglob("*.py")
        for other in imported_packages(path)
        if other != package and IMPORT_ORDER[other] >= rank
    }
    assert against_the_flow == set()
    assert "catalog" in imported_packages(ROOT / "model" / "train.py")  # the walk sees the imports it must
