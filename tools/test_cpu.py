"""A pytest plugin that counts the CPU seconds each test file takes (its tests' setup, call and teardown, in the
test process and the children it has waited for) and prints them, largest first, at the end of the run, then the
busiest tests. Each phase's
count rides on its test's report as a user property, which pytest-xdist carries from the workers to the controller,
where they are added up. Where the suite's time goes (bench/README.md, "Test suite time"):

    PYTEST_ADDOPTS='-p tools.test_cpu' make test

pytest's --durations gives wall-clock time, which on a loaded machine says more about the other processes than about
the test; CPU time is what 3 processes on 2 cores share."""

from __future__ import annotations

import resource
from collections import Counter
from collections.abc import Iterator

import pytest

PROPERTY = "cpu_seconds"
SHOWN_FILES = 15
SHOWN_TESTS = 30
totals: Counter = Counter()  # the CPU seconds by test file, in the process that prints the summary
test_totals: Counter = Counter()  # the same by test


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def counted(item: pytest.Item) -> Iterator[None]:
    """Around one phase of a test: its CPU seconds, added to the test's user properties before its report is made."""
    start = cpu_seconds()
    yield
    item.user_properties.append((PROPERTY, cpu_seconds() - start))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from counted(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from counted(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from counted(item)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """The teardown report carries all three phases' counts (the workers' reports reach the controller here too)."""
    if report.when == "teardown":
        seconds = sum(value for name, value in report.user_properties if name == PROPERTY)
        totals[report.nodeid.split("::")[0]] += seconds
        test_totals[report.nodeid] += seconds


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    terminalreporter.section("CPU seconds by test file")
    terminalreporter.write_line(f"{sum(totals.values()):8.1f}  all {len(totals)} files")
    for file, seconds in totals.most_common(SHOWN_FILES):
        terminalreporter.write_line(f"{seconds:8.1f}  {file}")
    terminalreporter.section("CPU seconds by test (setup and teardown included)")
    for nodeid, seconds in test_totals.most_common(SHOWN_TESTS):
        terminalreporter.write_line(f"{seconds:8.1f}  {nodeid}")
