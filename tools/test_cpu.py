"""A pytest plugin that counts the CPU seconds each test file takes (its tests' setup, call and teardown, in the
test process and the children it has waited for) and prints them, largest first, at the end of the run; with
pytest-xdist each worker counts its own tests and the controller adds them up. Where the suite's time goes
(bench/README.md, "Test suite time"):

    PYTEST_ADDOPTS='-p tools.test_cpu' make test

pytest's --durations gives wall-clock time, which on a loaded machine says more about the other processes than about
the test; CPU time is what 3 processes on 2 cores share."""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

DIRECTORY_VARIABLE = "POSTERBENCH_TEST_CPU_DIR"  # where each process writes its counts; set by the controller
SHOWN_FILES = 15


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist: workers inherit the variable
        os.environ[DIRECTORY_VARIABLE] = tempfile.mkdtemp(prefix="posterbench-test-cpu-")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Each test's count is written as soon as it ends (a line per test, a file per process), before its process
    tells the controller that it is done: the controller's summary never waits for a file still being written."""
    start = cpu_seconds()
    yield
    line = json.dumps([item.nodeid.split("::")[0], cpu_seconds() - start])
    with (Path(os.environ[DIRECTORY_VARIABLE]) / f"{os.getpid()}.jsonl").open("a") as counts:
        counts.write(line + "\n")


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    total: Counter = Counter()
    directory = Path(os.environ[DIRECTORY_VARIABLE])
    for path in directory.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            file, seconds = json.loads(line)
            total[file] += seconds
    shutil.rmtree(directory, ignore_errors=True)
    terminalreporter.section("CPU seconds by test file")
    terminalreporter.write_line(f"{sum(total.values()):8.1f}  all {len(total)} files")
    for file, seconds in total.most_common(SHOWN_FILES):
        terminalreporter.write_line(f"{seconds:8.1f}  {file}")
