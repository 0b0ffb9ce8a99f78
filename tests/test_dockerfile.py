"""What can be checked of the Dockerfile and .dockerignore without a Docker engine: the image installs the serving
lock only (hashes checked) and then the project without dependencies, runs the same gunicorn command as the browser
tests (tools/serving.py) and `posterbench serve`, copies every package the app imports and nothing of var/, instance/,
tests/ or data, runs as a non-root user, sets only settings the app or app/gunicorn_conf.py read, and its HEALTHCHECK
command works against a /healthz server."""

from __future__ import annotations

import ast
import http.server
import json
import os
import re
import runpy
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_SETTINGS = ROOT / "app/gunicorn_conf.py"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
# Variables for Python and pip themselves, not settings of the app.
TOOL_VARIABLES = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
FORBIDDEN = {"var", "instance", "tests", "bench", ".git", ".venv", "data", "shared"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    result, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    return result


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), arguments
    return value


def env_assignments(arguments: str) -> dict[str, str]:
    pairs = shlex.split(arguments)
    assert all("=" in pair for pair in pairs), f"ENV must use NAME=value pairs: {arguments}"
    return dict(pair.split("=", 1) for pair in pairs)


def copies(parsed: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY/ADD, flags such as --chown dropped."""
    result = []
    for keyword, arguments in parsed:
        if keyword in {"COPY", "ADD"}:
            words = [word for word in shlex.split(arguments) if not word.startswith("--")]
            result.append((words[:-1], words[-1]))
    return result


def top_level(path: str) -> str:
    return Path(path).parts[0]


def docker_pattern(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as a regex: `*` and `?` stay within one path element, `**` spans any number."""
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            regex, i = regex + pattern[i : end + 1], end + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.compile(regex + r"\Z")


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule for a path relative to the context: the last matching pattern wins, and a pattern matching
    a parent directory matches what it holds."""
    parts = Path(path).parts
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = docker_pattern(pattern.lstrip("!").strip("/"))
        if any(regex.match("/".join(parts[:depth])) for depth in range(1, len(parts) + 1)):
            excluded = not negated
    return excluded


def ignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def imported_top_level(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def local_packages_needed(start: str, root: Path = ROOT) -> set[str]:
    """The project's own top-level packages reachable from `start` through imports (any import, even lazy)."""
    needed, queue = set(), [start]
    while queue:
        package = queue.pop()
        if package in needed:
            continue
        needed.add(package)
        for source in (root / package).rglob("*.py"):
            for name in imported_top_level(source):
                if (root / name / "__init__.py").is_file() and name not in needed:
                    queue.append(name)
    return needed


def app_config_keys() -> set[str]:
    """Keys of the app.config.from_mapping defaults in create_app (what POSTERBENCH_<KEY> can set)."""
    tree = ast.parse((ROOT / "app/__init__.py").read_text())
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_mapping":
            keys |= {keyword.arg for keyword in node.keywords if keyword.arg}
    assert {"CATALOG", "MODEL", "INDEX", "DATABASE", "SECRET_KEY"} <= keys, keys
    return keys


def gunicorn_variables() -> set[str]:
    text = GUNICORN_SETTINGS.read_text()
    tree = ast.parse(text)
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and str(node.args[0].value).startswith("GUNICORN_")
    }


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def environment(parsed) -> dict[str, str]:
    result = {}
    for keyword, arguments in parsed:
        if keyword == "ENV":
            result.update(env_assignments(arguments))
    return result


def test_base_image_is_slim_python_311_pinned_by_tag(parsed):
    images = [arguments.split()[0] for keyword, arguments in parsed if keyword == "FROM"]
    assert len(images) == 1
    name, _, tag = images[0].partition(":")
    assert name == "python" and tag.startswith("3.11") and "slim" in tag, images[0]


def test_cmd_is_the_gunicorn_command_the_tests_run(parsed):
    from posterbench.cli import APP_TARGET, GUNICORN_CONFIG

    commands = [exec_form(arguments) for keyword, arguments in parsed if keyword == "CMD"]
    assert commands == [["gunicorn", "-c", "python:app.gunicorn_conf", "app:create_app()"]]
    assert not any(keyword == "ENTRYPOINT" for keyword, _ in parsed)
    # tools/serving.py (browser tests, load benchmark) and `posterbench serve` run the same settings and app factory.
    serving = (ROOT / "tools/serving.py").read_text()
    assert '"-c", "python:app.gunicorn_conf"' in serving and '"app:create_app()"' in serving
    assert (GUNICORN_CONFIG, APP_TARGET) == ("python:app.gunicorn_conf", "app:create_app()")


def test_gunicorn_binds_where_the_image_exposes_and_checks(environment, parsed, monkeypatch):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = runpy.run_path(str(GUNICORN_SETTINGS))
    port = settings["bind"].rsplit(":", 1)[1]
    assert settings["bind"].startswith("0.0.0.0:"), "inside a container gunicorn must listen on every interface"
    exposed = [arguments.split("/")[0] for keyword, arguments in parsed if keyword == "EXPOSE"]
    assert exposed == [port]


def test_every_copied_path_exists_and_nothing_private_is_copied(parsed):
    copied = copies(parsed)
    assert copied
    for sources, _ in copied:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
            assert not any(char in source for char in "*?["), f"COPY {source}: name paths, not patterns"
            assert source not in {".", "./"}, "COPY . would bake the whole context (var/, data) into the image"
            assert top_level(source) not in FORBIDDEN, f"COPY {source}: never in the image"
            assert not source.endswith((".sqlite", ".csv", ".h5", "secret_key")), f"COPY {source}: data"
    assert not any(keyword == "ADD" for keyword, _ in parsed), "use COPY"


def test_requirements_are_installed_before_the_source_is_copied(parsed):
    order = [(keyword, arguments) for keyword, arguments in parsed if keyword in {"COPY", "RUN"}]
    install = next(i for i, (k, a) in enumerate(order) if k == "RUN" and "-r requirements.txt" in a)
    before = [a for k, a in order[:install] if k == "COPY"]
    assert before == ["requirements.txt ."], "only requirements.txt may be copied before pip install (layer cache)"
    assert "--require-hashes" in order[install][1], "the serving lock is installed with its hashes checked"
    assert any(k == "COPY" and a.startswith("app ") for k, a in order[install:])


def test_the_image_installs_the_serving_lock_and_the_project_without_extras(parsed):
    installs = [a for k, a in parsed if k == "RUN" and "pip install" in a]
    assert len(installs) == 2, installs
    assert re.fullmatch(r"pip install --require-hashes -r requirements\.txt", installs[0])
    # The project itself: no dependencies (all locked), no extras (train, scrape, dev), from the copied sources.
    project = installs[1].split("&&")[0].split()
    assert project[:2] == ["pip", "install"] and "--no-deps" in project and not any("[" in word for word in project)
    source = project[-1]
    copied = {destination for _, destination in copies(parsed)}
    assert f"{source}/" in copied and f"{source}/app" in copied, "the project is built from what was copied"
    lock = (ROOT / "requirements.txt").read_text().lower()
    for heavy in ("tensorflow", "keras", "selenium", "trio"):
        assert f"\n{heavy}" not in lock and not lock.startswith(heavy), f"the serving lock installs {heavy}"


def test_every_package_the_app_imports_is_copied(parsed):
    needed = local_packages_needed("app")
    assert {"app", "bandit", "catalog", "embedding", "model", "recommend", "scraper"} <= needed  # the walk finds them
    copied = {top_level(source) for sources, _ in copies(parsed) for source in sources}
    assert needed - copied == set(), f"imported by the app but not in the image: {needed - copied}"
    assert {"pyproject.toml", "posterbench"} <= copied  # the build's own files and the `posterbench` command
    for folder in ("templates", "static"):  # top-level folders that the wheel installs inside app/
        assert folder in copied


def test_import_walk_sees_a_missing_package(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app/__init__.py").write_text("def f():\n    from extra.sub import thing\n")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra/__init__.py").write_text("import numpy\nimport deeper\n")
    (tmp_path / "deeper").mkdir()
    (tmp_path / "deeper/__init__.py").write_text("")
    assert local_packages_needed("app", tmp_path) == {"app", "extra", "deeper"}


def test_runs_as_a_fixed_non_root_user(parsed):
    users = [arguments for keyword, arguments in parsed if keyword == "USER"]
    assert users, "no USER: the app would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) >= 1000, f"USER {users[-1]}: a fixed numeric uid, not root"
    setup = " ".join(arguments for keyword, arguments in parsed if keyword == "RUN")
    assert f"--uid {user}" in setup and f"chown -R {user}:" in setup


def test_data_lives_on_volumes_owned_by_the_user(parsed, environment):
    volumes = [exec_form(arguments) for keyword, arguments in parsed if keyword == "VOLUME"]
    assert volumes == [["/data/catalog", "/data/runs", "/data/db"]]
    assert environment["POSTERBENCH_CATALOG"] == "/data/catalog"
    assert environment["POSTERBENCH_DATABASE"].startswith("/data/db/")


def test_env_sets_only_settings_that_are_read(environment):
    keys, gunicorn = app_config_keys(), gunicorn_variables()
    assert "GUNICORN_BIND" in gunicorn
    for name in environment:
        if name.startswith("POSTERBENCH_"):
            assert name.removeprefix("POSTERBENCH_") in keys, f"{name}: the app has no such setting"
        elif name.startswith("GUNICORN_"):
            assert name in gunicorn, f"{name}: app/gunicorn_conf.py does not read it"
        else:
            assert name in TOOL_VARIABLES, f"{name}: not a setting of the app, gunicorn or Python"
    assert {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR"} <= set(environment)


def test_no_secret_or_artifact_is_baked_in(parsed, environment):
    for secret in ("POSTERBENCH_SECRET_KEY", "POSTERBENCH_API_TOKEN"):
        assert secret not in environment
        assert not any(keyword == "ARG" and secret in arguments for keyword, arguments in parsed)
    for required in ("POSTERBENCH_MODEL", "POSTERBENCH_INDEX"):
        assert required not in environment, f"{required} names a mounted run, given at docker run time"
        assert f"-e {required}=" in DOCKERFILE.read_text(), f"the run example must show {required}"
    assert "-e POSTERBENCH_SECRET_KEY=" in DOCKERFILE.read_text()


class Healthz(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def run_healthcheck(command: list[str], bind: str) -> int:
    assert command[0] == "python"
    # A proxy in the environment must not be used for loopback.
    environment = {**os.environ, "GUNICORN_BIND": bind, "http_proxy": "http://127.0.0.1:9", "no_proxy": ""}
    return subprocess.run([sys.executable, *command[1:]], env=environment, timeout=30).returncode


def test_healthcheck_command_passes_on_a_healthy_server_and_fails_otherwise(parsed):
    checks = [arguments for keyword, arguments in parsed if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    command = exec_form(command.strip())
    assert "/healthz" in command[-1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert run_healthcheck(command, f"0.0.0.0:{port}") == 0
        Healthz.status = 503
        assert run_healthcheck(command, f"0.0.0.0:{port}") != 0
    finally:
        Healthz.status = 200
        server.shutdown()
        server.server_close()
    assert run_healthcheck(command, f"0.0.0.0:{port}") != 0  # nothing listening


def test_dockerignore_sends_only_what_the_image_copies(parsed):
    patterns = ignore_patterns(DOCKERIGNORE.read_text())
    for private in (".git", ".venv", "var", "instance", "tests", "bench", "var/posterbench.sqlite", "README.md"):
        assert ignored(private, patterns), f".dockerignore lets {private} into the build context"
    for cache in ("app/__pycache__/views.cpython-311.pyc", "model/x.sqlite", "catalog/posters/1.jpg"):
        assert ignored(cache, patterns), cache
    for sources, _ in copies(parsed):
        for source in sources:
            root = ROOT / source
            files = [root] if root.is_file() else [path for path in root.rglob("*") if path.is_file()]
            for path in files:
                relative = path.relative_to(ROOT).as_posix()
                if "__pycache__" in relative:
                    continue
                assert not ignored(relative, patterns), f"COPY {source} needs {relative}, which .dockerignore drops"


def test_ignore_matcher_follows_docker_rules():
    patterns = ["*", "!app", "**/__pycache__", "**/*.sqlite"]
    assert ignored("var", patterns) and ignored("var/x", patterns)
    assert not ignored("app/views.py", patterns)
    assert ignored("app/__pycache__/x.pyc", patterns) and ignored("app/a/b.sqlite", patterns)
    assert not ignored("anything", ["!anything"])
    assert not ignored("app/x.sqlite", ["*.sqlite"])  # `*` stays at the root, as in Docker
    assert ignored("x.sqlite", ["*.sqlite"])


def test_the_documented_layout_trusts_exactly_the_one_proxy_in_front(environment):
    """The image believes one proxy's X-Forwarded-For (tests/test_limits.py: a client's own entries do not count), so
    the documented run command publishes the port to that proxy's host alone, never to every interface."""
    assert environment["POSTERBENCH_TRUSTED_PROXIES"] == "1"
    documented = [DOCKERFILE.read_text(), (ROOT / "README.md").read_text()]
    for text in documented:
        published = re.findall(r"docker run [^\n]*?-p (\S+)", text)
        assert published and all(port.startswith("127.0.0.1:") for port in published), published
