"""`posterbench`: one command line for every stage, in pipeline order. The stages' own click commands are mounted
as they are (`python -m catalog|model|embedding|scraper ...` still work); `serve` starts gunicorn and the job worker
(`worker`), and the benchmarks and the IMDb replica, which live in the checkout's `bench/` and `tools/` and are not
installed, are run from the repository's root.

Importing this module imports no TensorFlow, Keras or Selenium: each stage imports what it needs when it runs, so
`posterbench --help`, `serve` and `init-db` work on the serving install (no `train` or `scrape` extra)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path

try:  # the stages' imports take a while (NumPy): Ctrl-C meanwhile ends as click ends an interrupted command
    import click
    from click.core import ParameterSource

    from catalog.__main__ import cli as catalog_cli
    from embedding.__main__ import cli as embedding_cli
    from model.__main__ import cli as model_cli
    from model.command_checks import Stage
    from scraper.__main__ import cli as scraper_cli
except KeyboardInterrupt:
    print("\nAborted!", file=sys.stderr)
    sys.exit(1)

# What `serve` runs: the same gunicorn settings module and app factory as the Docker image and tools/serving.py.
GUNICORN_CONFIG = "python:app.gunicorn_conf"
APP_TARGET = "app:create_app()"
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


EXTRA_OF_MODULE = {"keras": "train", "tensorflow": "train", "onnx": "train", "selenium": "scrape", "redis": "redis"}
"""The top-level modules that only an extra of the package installs (pyproject.toml), and that extra."""


CLOSED_STDOUT_STATUS = 141
"""The exit status of a command whose reader closed its standard output (`posterbench ... | head`): 128 + SIGPIPE, as
a shell reports a Unix tool that SIGPIPE stopped."""


def silence_closed_stdout() -> None:
    """Point standard output at /dev/null once its reader is gone, so that what is left in its buffer goes nowhere
    instead of failing again when Python flushes it at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor: output captured in memory (tests)
        pass
    finally:
        os.close(devnull)


class Stages(Stage):
    """A group that lists its commands in the order they were added (the pipeline's), not alphabetically, and says
    in one line, instead of a traceback, what a file system refused (model.command_checks.Stage) and which extra a
    stage needs that this install lacks; a closed standard output (`| head`) ends it quietly."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            silence_closed_stdout()
            ctx.exit(CLOSED_STDOUT_STATUS)
        except ModuleNotFoundError as error:
            extra = EXTRA_OF_MODULE.get((error.name or "").split(".")[0])
            if extra is None:
                raise
            raise click.ClickException(
                f"this command needs {error.name}, which the serving install leaves out: pip install "
                f"'posterbench[{extra}]' (or `make venv` for a checkout's full environment)"
            ) from error


@click.group(cls=Stages, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="posterbench")
def main() -> None:
    """PosterBench: predict a poster's genres and recommend similar movies. One subcommand per stage, in pipeline
    order; `posterbench COMMAND --help` describes each."""


main.add_command(scraper_cli.commands["scrape"], "scrape")


@main.command("replica", context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def replica(context: click.Context, arguments: tuple[str, ...]) -> None:
    """DIRECTORY [--port N] [--movies N]: write (if missing) and serve the offline IMDb replica to scrape
    (tools/replica, a test tool: run from the repository's root)."""
    if asks_help_outside_checkout(context, arguments, "tools/replica"):
        return
    checkout_path("tools/replica")
    exec_module("tools.replica", arguments, "posterbench replica")


@main.command("datasets", context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def datasets(arguments: tuple[str, ...]) -> None:
    """check|fill CATALOG --basics F [--ratings F]: compare a catalog with IMDb's datasets, or fill its gaps."""
    from scraper.datasets import main as datasets_main

    sys.exit(datasets_main(list(arguments), prog="posterbench datasets"))


main.add_command(catalog_cli.commands["demo"], "demo-catalog")


@main.command("check")
@click.argument("directory", type=click.Path(path_type=Path))
def check(directory: Path) -> None:
    """Validate a catalog, decode every poster as training, indexing and the app read them, and summarise it."""
    from catalog.__main__ import read_and_summarise
    from model.images import DamagedPostersError, check_posters

    try:
        check_posters(read_and_summarise(directory))
    except DamagedPostersError as error:
        raise click.ClickException(str(error)) from error
    click.echo("  every poster decodes")


for _name in ("train", "evaluate", "tune-thresholds", "export-onnx", "index"):
    main.add_command(model_cli.commands[_name], _name)
main.add_command(embedding_cli, "embed")


class DatabaseFile(click.Path):
    """A SQLite file's path, which may not be empty (click would take "" for ".", the working directory)."""

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        if isinstance(value, str) and not value.strip():
            self.fail("the path is empty: name a SQLite file", param, ctx)
        return super().convert(value, param, ctx)


URL_VARIABLES = ("POSTERBENCH_DATABASE_URL", "DATABASE_URL")
"""The environment variables of the database's URL, which the app prefers to its SQLite file (POSTERBENCH_DATABASE)."""
DATABASE_HELP = (
    "SQLite file (POSTERBENCH_DATABASE); given on the command line, it wins over a URL that POSTERBENCH_DATABASE_URL "
    "or DATABASE_URL sets"
)


def given_on_command_line(name: str) -> bool:
    """Whether the current command's parameter `name` was typed on its command line (not an environment variable's or
    a default)."""
    return click.get_current_context().get_parameter_source(name) is ParameterSource.COMMANDLINE


def file_wins_over_url(environment: MutableMapping[str, str]) -> None:
    """When --database was given on the command line, make the app use that file rather than a URL from the
    environment (or from instance/config.py): no URL variable is passed on, and an empty POSTERBENCH_DATABASE_URL
    overrides the configuration file's DATABASE_URL."""
    if given_on_command_line("database"):
        environment.pop("DATABASE_URL", None)
        environment["POSTERBENCH_DATABASE_URL"] = ""


@main.command("init-db")
@click.option("--database", envvar="POSTERBENCH_DATABASE", type=DatabaseFile(path_type=Path), help=DATABASE_HELP)
@click.option(
    "--database-url",
    envvar=list(URL_VARIABLES),
    help="postgresql://user:password@host/name (POSTERBENCH_DATABASE_URL, DATABASE_URL); from the environment, it wins "
    "over POSTERBENCH_DATABASE but not over --database on the command line; not to be given with --database",
)
def init_db(database: Path | None, database_url: str | None) -> None:
    """Create the database tables or bring them up to date (existing data is kept); the app also does it at start."""
    from app.db import StorageUnavailableError, redacted
    from app.db import init_db as migrate
    from app.migrations import MigrationError, latest_version

    if given_on_command_line("database"):
        if given_on_command_line("database_url"):
            raise click.UsageError("give --database FILE or --database-url URL, not both")
        database_url = None  # the file typed here, not a URL from the environment
    target = database_url or (str(database) if database else None)
    if not target:
        raise click.UsageError("give --database FILE or --database-url URL (or POSTERBENCH_DATABASE / DATABASE_URL)")
    if database_url and "://" not in database_url:
        raise click.UsageError(
            f"--database-url {redacted(database_url)!r} is no URL: postgresql://... or sqlite:///path"
        )
    try:
        applied = migrate(target)
    except (StorageUnavailableError, MigrationError, ValueError, OSError) as error:
        raise click.ClickException(f"cannot prepare the database at {redacted(target)}: {error}") from error
    done = f"applied migration(s) {', '.join(map(str, applied))}" if applied else "it was up to date"
    click.echo(f"database ready at {redacted(target)}: schema version {latest_version()}, {done}")


def _setting(name: str, value: object | None) -> dict[str, str]:
    return {} if value is None else {f"POSTERBENCH_{name}": str(value)}


SERVED_SETTINGS = ("catalog", "model", "index", "clems", "database")
"""The options of what the app serves, which `serve` and `worker` both take, as POSTERBENCH_* settings."""


def served_options(command: Callable) -> Callable:
    """The --catalog, --model, --index, --clems and --database options (SERVED_SETTINGS)."""
    for option in reversed(
        (
            click.option(
                "--catalog", envvar="POSTERBENCH_CATALOG", type=click.Path(path_type=Path), help="catalog directory"
            ),
            click.option(
                "--model", envvar="POSTERBENCH_MODEL", type=click.Path(path_type=Path), help="model directory"
            ),
            click.option(
                "--index", envvar="POSTERBENCH_INDEX", type=click.Path(path_type=Path), help="index directory"
            ),
            click.option(
                "--clems", envvar="POSTERBENCH_CLEMS", help="CLEMS directory whose genres to serve (empty: the model's)"
            ),
            click.option(
                "--database", envvar="POSTERBENCH_DATABASE", type=DatabaseFile(path_type=Path), help=DATABASE_HELP
            ),
        )
    ):
        command = option(command)
    return command


def served_settings(values: Mapping[str, object | None]) -> dict[str, str]:
    """The POSTERBENCH_* variables of the served options given (SERVED_SETTINGS)."""
    return {key: value for name in SERVED_SETTINGS for key, value in _setting(name.upper(), values[name]).items()}


def nonblank_address(context: click.Context, parameter: click.Parameter, value: str) -> str:
    """--host's value, refused when blank: gunicorn would listen on every interface, which 0.0.0.0 says openly."""
    if not value.strip():
        raise click.BadParameter("the address is empty: name one (0.0.0.0 listens on every interface)", param=parameter)
    return value


@main.command()
@served_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    callback=nonblank_address,
    help="address to listen on (0.0.0.0: every interface)",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers", envvar="GUNICORN_WORKERS", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--job-worker/--no-job-worker",
    envvar="GUNICORN_JOB_WORKER",
    default=True,
    show_default=True,
    help="also start the job worker (comparisons, heatmaps; GUNICORN_JOB_WORKER), stopped with the server",
)
def serve(
    catalog: Path | None,
    model: Path | None,
    index: Path | None,
    clems: str | None,
    database: Path | None,
    host: str,
    port: int,
    workers: int,
    job_worker: bool,
) -> None:
    """Serve the app with gunicorn (app/gunicorn_conf.py), as `make serve` and the Docker image do; its master starts
    the job worker beside it (`posterbench worker --restart`, unless --no-job-worker: another host runs it). The
    options set the app's POSTERBENCH_* settings; the rest (POSTERBENCH_SECRET_KEY, DATABASE_URL, ...) come from the
    environment. A model directory holding its ONNX export is served with ONNX Runtime, without TensorFlow."""
    from app import create_app
    from app.gunicorn_conf import JOB_WORKER_VARIABLE

    environment = {**os.environ, **served_settings(locals()), JOB_WORKER_VARIABLE: "yes" if job_worker else "no"}
    file_wins_over_url(environment)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)
    try:  # once here, so that a setting it cannot start with is one line, not a traceback from every worker
        create_app()
    except (RuntimeError, ValueError) as error:
        raise click.ClickException(f"the app cannot start: {error}") from error
    except OSError as error:  # the database's directory or lock file: a path the file system refuses
        raise click.ClickException(f"the app cannot start: {unopenable(error)}") from error
    finally:
        os.environ.clear()
        os.environ.update(saved)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    command = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONFIG, "--bind", bind, "--workers", str(workers)]
    sys.stdout.flush()
    os.execve(sys.executable, [*command, APP_TARGET], environment)  # gunicorn takes this process (and its signals)


@main.command()
@served_options
@click.option("--threads", type=click.IntRange(min=1), help="threads per job (POSTERBENCH_JOB_THREADS; default: all)")
@click.option("--nice", type=click.IntRange(0, 19), help="the worker's niceness (POSTERBENCH_JOB_NICE; default 10)")
@click.option("--jobs", type=click.IntRange(min=1), help="jobs run at once (POSTERBENCH_JOB_WORKERS; default 1)")
@click.option(
    "--restart/--no-restart",
    default=False,
    show_default=True,
    help="run the worker as a child process, started again when it is killed (SIGKILL, out of memory), as gunicorn's "
    "master (serve, the Docker image) runs it",
)
def worker(
    catalog: Path | None,
    model: Path | None,
    index: Path | None,
    clems: str | None,
    database: Path | None,
    threads: int | None,
    nice: int | None,
    jobs: int | None,
    restart: bool,
) -> None:
    """Run the background jobs (comparisons of drafts, heatmaps) until SIGINT or SIGTERM: Huey's consumer on the
    queue that POSTERBENCH_JOBS_URL names (default: beside the database), with the app's settings, as `serve`
    starts it. Several workers, on one host or several, may share one queue."""
    os.environ.update(
        {
            **served_settings(locals()),
            **_setting("JOB_THREADS", threads),
            **_setting("JOB_NICE", nice),
            **_setting("JOB_WORKERS", jobs),
        }
    )
    file_wins_over_url(os.environ)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    if restart:
        from app.supervision import supervise

        command = [sys.executable, "-m", "posterbench.cli", "worker", "--no-restart"]
        sys.exit(supervise(command, os.environ))
    from app import create_app
    from app.jobs import run_worker

    try:
        run_worker(create_app(job_worker=True))
    except (RuntimeError, ValueError) as error:  # a setting, a catalog, a model or an index it cannot serve
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(f"the worker cannot start: {unopenable(error)}") from error


def unopenable(error: OSError) -> str:
    """An OSError in words: "/proc/x.sqlite.init-lock: No such file or directory"."""
    return f"{error.filename}: {error.strerror}" if error.filename and error.strerror else str(error)


def checkout_path(relative: str) -> Path:
    """RELATIVE (tools/NAME, bench/NAME.py) in the working directory, which must be the checkout's root: the test
    tools and the benchmarks are not installed."""
    path = Path.cwd() / relative
    if not path.exists():
        raise click.ClickException(
            f"{path} not found: the benchmarks and test tools live in the repository's bench/ and tools/ (they are not "
            "installed); run this from the repository's root"
        )
    return path


PROG_VARIABLE = "POSTERBENCH_PROG"
"""Names the command in the usage line of a tool run through `posterbench` (tools.replica reads it)."""


def exec_module(module: str, arguments: tuple[str, ...], prog: str | None = None) -> None:
    """Run `python -m MODULE ARGUMENTS` in this process's place; a click tool's usage line names `prog`."""
    sys.stdout.flush()
    environment = os.environ if prog is None else {**os.environ, PROG_VARIABLE: prog}
    os.execve(sys.executable, [sys.executable, "-m", module, *arguments], environment)


def is_benchmark(script: Path) -> bool:
    """A script of bench/ that runs by itself; the others (mulan.py, authors_app.py) are helpers the benchmarks
    import."""
    return 'if __name__ == "__main__":' in script.read_text(encoding="utf-8")


def asks_help_outside_checkout(context: click.Context, arguments: tuple[str, ...], relative: str) -> bool:
    """Whether `arguments` only ask for help where `relative` (tools/NAME, bench/NAME.py) is not at hand: then the
    command's own help is shown, which says where to run it (the tool's full --help needs the checkout)."""
    if set(arguments) & {"-h", "--help"} and len(arguments) == 1 and not (Path.cwd() / relative).exists():
        click.echo(context.get_help())
        return True
    return False


def benchmarks() -> list[str]:
    """The benchmark names of bench/ in the working directory (none outside the checkout's root)."""
    return sorted(path.stem for path in (Path.cwd() / "bench").glob("*.py") if is_benchmark(path))


def run_bench(name: str, arguments: tuple[str, ...]) -> None:
    """Run bench/NAME.py as the module bench.NAME (its imports of sibling scripts need that) in this process's place
    (its usage line names the script: `python -m` sets the script's path as the program's name)."""
    relative = f"bench/{name.removesuffix('.py')}.py"
    if (Path.cwd() / "bench").is_dir() and not (Path.cwd() / relative).exists():
        raise click.ClickException(f"no benchmark {name!r}; the benchmarks are: {', '.join(benchmarks())}")
    script = checkout_path(relative)
    if not is_benchmark(script):
        raise click.ClickException(f"bench/{script.name} is a helper that other benchmarks import, not a benchmark")
    exec_module(f"bench.{script.stem}", arguments)


@main.command("recommend-eval", context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def recommend_eval(context: click.Context, arguments: tuple[str, ...]) -> None:
    """Offline quality of the recommendations per distance (bench/recommend_quality.py; its --help lists the
    options). Run from the repository's root."""
    if asks_help_outside_checkout(context, arguments, "bench/recommend_quality.py"):
        return
    run_bench("recommend_quality", arguments)


@main.command("bench", context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def bench(context: click.Context, arguments: tuple[str, ...]) -> None:
    """NAME [ARGS]: run the benchmark bench/NAME.py (`posterbench bench NAME --help`: its options). Run from the
    repository's root."""
    if not arguments or arguments[0] in {"-h", "--help"}:
        click.echo(context.get_help())
        scripts = benchmarks()
        click.echo("\nBenchmarks here: " + (", ".join(scripts) if scripts else "none (not in the repository's root)"))
        return
    run_bench(arguments[0], arguments[1:])


def show_environment_variables(command: click.Command) -> None:
    """Every option that reads an environment variable says which in its --help ("[env var: POSTERBENCH_MODEL]"):
    a variable set and forgotten otherwise surprises as an "Invalid value for '--precision'" never typed."""
    for parameter in command.params:
        if isinstance(parameter, click.Option) and parameter.envvar:
            parameter.show_envvar = True
    for subcommand in getattr(command, "commands", {}).values():
        show_environment_variables(subcommand)


show_environment_variables(main)

if __name__ == "__main__":
    main()
