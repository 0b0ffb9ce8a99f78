"""`posterbench`, the one command line: every stage is a subcommand with its own --help, in pipeline order; the
command imports no training or scraping library until a stage needs it; `serve` hands the process to gunicorn with
the app's settings; `init-db` prepares a database; the benchmarks run from the checkout (a clear error elsewhere)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner

from posterbench import cli
from tests.conftest import popen_interruptible
from tools.serving import wait_until_gone

ROOT = Path(__file__).resolve().parents[1]
STAGES = [
    "scrape",
    "replica",
    "datasets",
    "demo-catalog",
    "check",
    "train",
    "evaluate",
    "tune-thresholds",
    "export-onnx",
    "index",
    "embed",
    "init-db",
    "serve",
    "worker",
    "recommend-eval",
    "bench",
]


def installed_command() -> str:
    command = Path(sys.executable).with_name("posterbench")
    return (
        str(command) if command.exists() else shutil.which("posterbench") or pytest.fail("posterbench is not installed")
    )


def test_every_stage_is_a_subcommand_in_pipeline_order() -> None:
    assert list(cli.main.commands) == STAGES
    result = CliRunner().invoke(cli.main, ["--help"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == STAGES


def test_every_option_read_from_an_environment_variable_names_it_in_its_help() -> None:
    """POSTERBENCH_PRECISION=fp16 made `index` fail with "Invalid value for '--precision'", an option never typed,
    and no --help said which variable an option reads."""
    named = 0
    for name, command in cli.main.commands.items():
        for path, subcommand in [([name], command)] + [
            ([name, sub], c) for sub, c in getattr(command, "commands", {}).items()
        ]:
            options = [p for p in subcommand.params if isinstance(p, click.Option) and p.envvar]
            if not options:
                continue
            shown = CliRunner().invoke(cli.main, [*path, "--help"], terminal_width=400)
            assert shown.exit_code == 0, shown.output
            for option in options:
                variable = option.envvar if isinstance(option.envvar, str) else option.envvar[0]
                assert f"env var: {variable}" in shown.output, (path, option.name)
                named += 1
    assert named >= 20  # catalog, model, index, weights, precision, database... across the stages


@pytest.mark.parametrize(
    "arguments",
    [[name, "--help"] for name in STAGES if name not in {"replica", "datasets", "recommend-eval", "bench"}]
    + [["embed", "fit", "--help"], ["embed", "evaluate", "--help"]],
)
def test_each_stage_has_its_help(arguments: list[str]) -> None:
    result = CliRunner().invoke(cli.main, arguments)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ") and "--help" in result.output


def test_the_pass_through_stages_show_their_scripts_help() -> None:
    """replica, datasets, recommend-eval and bench hand --help to the tool or script they run, from the checkout's
    root. Each command runs once, however many parts of its help are checked."""
    for arguments, expected in (
        # its usage names `posterbench replica`, not python -m tools.replica
        (["replica", "--help"], ["Usage: posterbench replica [OPTIONS] DIRECTORY", "--result-cap"]),
        (["datasets", "--help"], ["usage: posterbench datasets [-h] {check,fill}"]),
        (["recommend-eval", "--help"], ["--queries-index"]),
        (["bench", "bandit_simulation", "--help"], ["--rounds"]),
    ):
        done = subprocess.run(
            [installed_command(), *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        for part in expected:
            assert part in done.stdout, done.stdout


def test_bench_lists_the_benchmarks_and_refuses_outside_the_checkout(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    listed = CliRunner().invoke(cli.main, ["bench"])
    assert listed.exit_code == 0 and "inference" in listed.output and "recommend_quality" in listed.output
    benchmarks = listed.output.split("Benchmarks here: ")[1]
    assert "mulan" not in benchmarks and "authors_app" not in benchmarks and "__init__" not in benchmarks
    helper = CliRunner().invoke(cli.main, ["bench", "mulan", "--help"])
    assert helper.exit_code != 0 and "bench/mulan.py is a helper" in helper.output
    unknown = CliRunner().invoke(cli.main, ["bench", "no_such_bench"])
    assert unknown.exit_code != 0 and "no benchmark 'no_such_bench'; the benchmarks are: " in unknown.output
    assert "inference" in unknown.output and "repository's root" not in unknown.output
    monkeypatch.chdir(tmp_path)
    for command in ("replica", "recommend-eval"):  # their help is at hand anywhere, and says where to run them
        helped = CliRunner().invoke(cli.main, [command, "--help"])
        assert helped.exit_code == 0 and f"Usage: main {command}" in helped.output, helped.output
        assert "repository's root" in " ".join(helped.output.split())
    refused = CliRunner().invoke(cli.main, ["recommend-eval", "--catalog", "x"])
    assert refused.exit_code != 0
    assert "bench/recommend_quality.py not found" in refused.output and "repository's root" in refused.output
    refused = CliRunner().invoke(cli.main, ["replica", "imdb"])
    assert refused.exit_code != 0
    assert "tools/replica not found" in refused.output and "repository's root" in refused.output


def test_the_command_line_imports_no_training_or_scraping_library() -> None:
    code = (
        "import json, sys\n"
        "from posterbench.cli import main\n"
        "print(json.dumps(sorted(m for m in ('tensorflow', 'keras', 'onnx', 'selenium', 'trio') if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_serve_hands_the_process_to_gunicorn_with_the_apps_settings(
    monkeypatch, tmp_path: Path, demo_catalog_dir: Path, onnx_model_dir: Path, index_dir: Path
) -> None:
    calls = []
    monkeypatch.setattr(cli.os, "execve", lambda path, argv, environment: calls.append((path, argv, environment)))
    monkeypatch.delenv("POSTERBENCH_CLEMS", raising=False)
    monkeypatch.setenv("POSTERBENCH_SECRET_KEY", "test")
    served = {"--catalog": demo_catalog_dir, "--model": onnx_model_dir, "--index": index_dir}
    arguments = [*(str(part) for pair in served.items() for part in pair), "--database", str(tmp_path / "d.sqlite")]
    result = CliRunner().invoke(cli.main, ["serve", *arguments, "--port", "8123", "--workers", "3"])
    assert result.exit_code == 0, result.output
    ((path, argv, environment),) = calls
    assert path == sys.executable
    assert argv[1:5] == ["-m", "gunicorn", "-c", "python:app.gunicorn_conf"] and argv[-1] == "app:create_app()"
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:8123" and argv[argv.index("--workers") + 1] == "3"
    assert (environment["POSTERBENCH_CATALOG"], environment["POSTERBENCH_MODEL"]) == (
        str(demo_catalog_dir),
        str(onnx_model_dir),
    )
    assert environment["POSTERBENCH_INDEX"] == str(index_dir) and environment["POSTERBENCH_DATABASE"] == str(
        tmp_path / "d.sqlite"
    )
    assert "POSTERBENCH_CLEMS" not in environment  # not given: the app serves the model's genres
    assert environment["GUNICORN_JOB_WORKER"] == "yes"  # gunicorn's master starts the job worker
    calls.clear()
    CliRunner().invoke(cli.main, ["serve", *arguments, "--host", "::1", "--clems", "", "--no-job-worker"])
    assert calls[0][1][calls[0][1].index("--bind") + 1] == "[::1]:8000" and calls[0][2]["POSTERBENCH_CLEMS"] == ""
    assert calls[0][2]["GUNICORN_JOB_WORKER"] == "no"
    calls.clear()
    CliRunner().invoke(cli.main, ["serve", *arguments], env={"GUNICORN_JOB_WORKER": "no"})  # as its --help says
    assert calls[0][2]["GUNICORN_JOB_WORKER"] == "no"
    assert "POSTERBENCH_CATALOG" not in os.environ  # the check of the settings left this process's as they were


def test_serve_says_in_one_line_why_the_app_cannot_start(
    monkeypatch, tmp_path: Path, demo_catalog_dir: Path, onnx_model_dir: Path, index_dir: Path
) -> None:
    """Every gunicorn worker used to print the same traceback, the reason buried in it, and the master exit."""
    calls = []
    monkeypatch.setattr(cli.os, "execve", lambda *arguments: calls.append(arguments))
    served = ["--model", str(onnx_model_dir), "--index", str(index_dir), "--database", str(tmp_path / "d.sqlite")]
    monkeypatch.delenv("POSTERBENCH_SECRET_KEY", raising=False)
    unkeyed = CliRunner().invoke(cli.main, ["serve", "--catalog", str(demo_catalog_dir), *served])
    assert unkeyed.exit_code == 1 and "the app cannot start: set POSTERBENCH_SECRET_KEY" in unkeyed.output
    monkeypatch.setenv("POSTERBENCH_SECRET_KEY", "test")
    nowhere = CliRunner().invoke(cli.main, ["serve", "--catalog", str(tmp_path / "nowhere"), *served])
    assert nowhere.exit_code == 1 and "catalog directory does not exist" in nowhere.output
    assert "Traceback" not in unkeyed.output + nowhere.output and calls == []
    blank = CliRunner().invoke(cli.main, ["serve", "--catalog", str(demo_catalog_dir), *served, "--host", " "])
    assert blank.exit_code == 2 and "'--host': the address is empty" in blank.output  # gunicorn: every interface
    assert calls == []
    unwritable = [*served[:-1], "/proc/posterbench/d.sqlite"]  # a directory that cannot be made, even by root
    refused = CliRunner().invoke(cli.main, ["serve", "--catalog", str(demo_catalog_dir), *unwritable])
    assert refused.exit_code == 1 and calls == [], refused.output
    assert refused.output.strip().splitlines()[-1].startswith("Error: the app cannot start: /proc/posterbench")


@pytest.mark.parametrize(("setting", "starts"), [(None, True), ("yes", True), ("1", True), ("no", False), ("0", False)])
def test_gunicorns_master_starts_the_job_worker_unless_told_not_to(
    setting: str | None, starts: bool, monkeypatch
) -> None:
    from app import gunicorn_conf

    if setting is None:
        monkeypatch.delenv(gunicorn_conf.JOB_WORKER_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(gunicorn_conf.JOB_WORKER_VARIABLE, setting)
    started = []
    monkeypatch.setattr(
        gunicorn_conf.subprocess, "Popen", lambda command, **options: started.append(command) or SimpleNamespace(pid=1)
    )
    logged = []
    gunicorn_conf.start_job_worker(SimpleNamespace(log=SimpleNamespace(info=lambda *args: logged.append(args))))
    assert started == ([gunicorn_conf.JOB_WORKER_COMMAND] if starts else [])
    assert gunicorn_conf.JOB_WORKER_COMMAND[-2:] == ("worker", "--restart")
    (message,) = [args[0] for args in logged]
    assert message.startswith("job worker started beside the web workers" if starts else "no job worker started")


def test_the_job_worker_stops_with_the_process_that_started_it(tmp_path: Path) -> None:
    """gunicorn's master starts the worker: when that process exits, the kernel stops the worker."""
    code = (
        "import sys, types\n"
        "from app import gunicorn_conf\n"
        "gunicorn_conf.JOB_WORKER_COMMAND = (sys.executable, '-c', 'import time; time.sleep(60)')\n"
        "server = types.SimpleNamespace(log=types.SimpleNamespace(info=lambda *args: None))\n"
        "child = gunicorn_conf.start_job_worker(server)\n"
        "print(child.pid, flush=True)\n"
    )
    environment = {**os.environ, "GUNICORN_JOB_WORKER": "yes"}
    parent = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=environment
    )
    child = int(parent.stdout.split()[0])
    assert wait_until_gone(child, 10), "the job worker outlived the process that started it"


def test_init_db_prepares_a_database_once(tmp_path: Path, monkeypatch) -> None:
    for name in ("POSTERBENCH_DATABASE", "POSTERBENCH_DATABASE_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    database = tmp_path / "posterbench.sqlite"
    first = CliRunner().invoke(cli.main, ["init-db", "--database", str(database)])
    assert first.exit_code == 0 and "applied migration(s) 1" in first.output, first.output
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"recommendations", "feedback", "schema_migrations"} <= tables
    again = CliRunner().invoke(cli.main, ["init-db", "--database", str(database)])
    assert again.exit_code == 0 and "it was up to date" in again.output
    missing = CliRunner().invoke(cli.main, ["init-db"])
    assert missing.exit_code != 0 and "--database" in missing.output


@pytest.mark.parametrize(
    ("missing", "arguments", "extra"),
    [
        ("keras", ["train", "--catalog", "CATALOG", "--out", "OUT", "--preset", "demo"], "train"),
        ("selenium", ["scrape", "--out", "OUT", "--per-genre", "1"], "scrape"),
    ],
)
def test_a_stage_whose_extra_is_not_installed_names_the_extra(
    missing: str, arguments: list[str], extra: str, demo_catalog_dir: Path, tmp_path: Path
) -> None:
    """On the serving install (no `train` or `scrape` extra) a stage that needs one says which, in one line."""
    arguments = [{"CATALOG": str(demo_catalog_dir), "OUT": str(tmp_path / "out")}.get(a, a) for a in arguments]
    hide = f"import sys; sys.modules[{missing!r}] = None; from posterbench.cli import main; main({arguments!r})"
    done = subprocess.run([sys.executable, "-c", hide], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert f"pip install 'posterbench[{extra}]'" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def without_database_variables(monkeypatch) -> None:
    for name in ("POSTERBENCH_DATABASE", "POSTERBENCH_DATABASE_URL", "DATABASE_URL", "POSTERBENCH_JOBS_URL"):
        monkeypatch.delenv(name, raising=False)


def test_init_db_says_in_one_line_that_a_database_is_newer_than_the_code(tmp_path: Path, monkeypatch) -> None:
    without_database_variables(monkeypatch)
    database = tmp_path / "future.sqlite"
    assert CliRunner().invoke(cli.main, ["init-db", "--database", str(database)]).exit_code == 0
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'from_the_future')")
    connection.close()
    result = CliRunner().invoke(cli.main, ["init-db", "--database", str(database)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith("Error: cannot prepare the database at ") and "newer than this PosterBench" in (
        result.output
    )
    assert len(result.output.strip().splitlines()) == 1, result.output


def unrecorded_database(path: Path) -> Path:
    """A database at the latest version whose schema_migrations table was dropped."""
    assert CliRunner().invoke(cli.main, ["init-db", "--database", str(path)]).exit_code == 0
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE schema_migrations")
    connection.close()
    return path


@pytest.mark.parametrize("command", ["init-db", "serve", "worker"])
def test_a_database_without_the_record_of_its_migrations_stops_every_command_in_one_line(
    command: str, tmp_path: Path, monkeypatch
) -> None:
    """They ended in a traceback (sqlite3.OperationalError: duplicate column name: evoked)."""
    without_database_variables(monkeypatch)
    monkeypatch.setenv("POSTERBENCH_SECRET_KEY", "test")
    monkeypatch.setattr(cli.os, "execve", lambda *arguments: pytest.fail("serve went on to gunicorn"))
    saved = dict(os.environ)  # worker sets the app's settings in this process's environment
    try:
        result = CliRunner().invoke(cli.main, [command, "--database", str(unrecorded_database(tmp_path / "d.sqlite"))])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "holds PosterBench's tables without the record of their migrations" in result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1, result.output


def test_init_db_prefers_the_database_file_typed_to_a_url_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    """A URL in DATABASE_URL used to win over --database FILE, and could migrate another database than the one named."""
    without_database_variables(monkeypatch)
    database = tmp_path / "db1.sqlite"
    for variable in ("DATABASE_URL", "POSTERBENCH_DATABASE_URL"):
        result = CliRunner().invoke(
            cli.main, ["init-db", "--database", str(database)], env={variable: "redis://elsewhere"}
        )
        assert result.exit_code == 0 and f"database ready at {database}" in result.output, result.output
    both = CliRunner().invoke(cli.main, ["init-db", "--database", str(database), "--database-url", "redis://x"])
    assert both.exit_code == 2 and "Error: give --database FILE or --database-url URL, not both" in both.output
    from_the_environment = CliRunner().invoke(
        cli.main, ["init-db"], env={"POSTERBENCH_DATABASE": str(database), "DATABASE_URL": "redis://elsewhere"}
    )
    assert from_the_environment.exit_code == 1 and "redis://elsewhere" in from_the_environment.output  # as the app
    for command in ("init-db", "serve", "worker"):
        helped = CliRunner().invoke(cli.main, [command, "--help"])
        assert "given on the command line, it wins over a URL" in " ".join(helped.output.split())


def test_serve_and_worker_prefer_the_database_file_typed_to_a_url_from_the_environment(
    tmp_path: Path, monkeypatch
) -> None:
    without_database_variables(monkeypatch)
    monkeypatch.setenv("POSTERBENCH_SECRET_KEY", "test")
    monkeypatch.setenv("DATABASE_URL", "redis://elsewhere")
    monkeypatch.setenv("POSTERBENCH_DATABASE_URL", "redis://elsewhere")
    served = tmp_path / "served.sqlite"
    monkeypatch.setattr(cli.os, "execve", lambda *arguments: None)  # a configured app would go on to gunicorn here
    result = CliRunner().invoke(cli.main, ["serve", "--database", str(served)])
    assert "redis://elsewhere" not in result.output and served.exists(), result.output  # the app started on the file
    supervised = []
    monkeypatch.setattr("app.supervision.supervise", lambda command, environment: supervised.append(dict(environment)))
    saved = dict(os.environ)
    try:
        result = CliRunner().invoke(cli.main, ["worker", "--restart", "--database", str(tmp_path / "w.sqlite")])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert result.exit_code == 0, result.output
    ((environment),) = supervised
    assert "DATABASE_URL" not in environment and environment["POSTERBENCH_DATABASE_URL"] == ""
    assert environment["POSTERBENCH_DATABASE"] == str(tmp_path / "w.sqlite")


@pytest.mark.parametrize("command", ["init-db", "serve", "worker"])
def test_an_empty_database_path_is_refused(command: str, tmp_path: Path, monkeypatch) -> None:
    """init-db took "" for "." and left a "..init-lock" file in the working directory."""
    without_database_variables(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.os, "execve", lambda *arguments: pytest.fail("serve went on to gunicorn"))
    result = CliRunner().invoke(cli.main, [command, "--database", ""])
    assert result.exit_code == 2 and "the path is empty: name a SQLite file" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


SLOW_STAGE_IMPORT = """
import sys, time, types
slow = types.ModuleType("scraper.__main__")
def attribute(name):
    print("importing", flush=True)
    time.sleep(60)
slow.__getattr__ = attribute
sys.modules["scraper.__main__"] = slow
import posterbench.cli
"""


def test_ctrl_c_while_the_command_starts_ends_in_one_line() -> None:
    """`posterbench bench NAME` and `recommend-eval` spend their first moments importing the stages (NumPy): Ctrl-C
    then printed the import's traceback."""
    command = [sys.executable, "-c", SLOW_STAGE_IMPORT]
    running = popen_interruptible(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert running.stdout.readline() == "importing\n"
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=60)
    assert running.returncode == 1 and stderr.strip() == "Aborted!", stderr


def test_ctrl_c_ends_a_benchmark_run_through_posterbench_in_one_line(tmp_path: Path) -> None:
    command = [installed_command(), "bench", "bandit_simulation", "--rounds", "10000000", "--seeds", "50"]
    command += ["--jobs", "1", "--plot", str(tmp_path / "regret.png")]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    running = popen_interruptible(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )
    assert running.stdout.readline(), "the benchmark printed nothing"  # past its imports, into the simulation
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=60)
    assert running.returncode != 0 and stderr.strip() == "Aborted!", stderr


def test_a_closed_standard_output_ends_the_command_quietly() -> None:
    """`posterbench bench | head -1` said "Error: [Errno 32] Broken pipe" and exited with 1."""
    reader, writer = os.pipe()
    os.close(reader)  # as `head` does once it has its line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "posterbench.cli", "bench"],
            cwd=ROOT,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(writer)
    assert done.returncode == cli.CLOSED_STDOUT_STATUS == 141 and done.stderr == "", done.stderr
