"""tools/slow_files_first.py, the plugin that orders the suite: a run records its tests' durations in pytest's cache,
and the next run, in one process or under pytest-xdist, starts with the file whose tests took longest, each file's
tests kept together and in their own order; a run without a record keeps the collection order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]

QUICK = """
def test_one():
    pass

def test_two():
    pass
"""
SLOW = """
import time

def test_slow():
    time.sleep(0.3)

def test_after_it():
    pass
"""


def run_order(pytester: pytest.Pytester, *options: str, passed: int = 4) -> list[str]:
    """The tests in the order they ran (-v prints each as it ends; one process, or one xdist worker)."""
    result = pytester.runpytest_subprocess("-p", "tools.slow_files_first", "-v", *options)
    result.assert_outcomes(passed=passed)
    return [re.search(r"test_\w+\.py::test_\w+", line)[0] for line in result.outlines if "PASSED" in line]


@pytest.mark.parametrize("processes", [[], ["-p", "xdist.plugin", "-n", "1"]], ids=["one process", "xdist"])
def test_the_file_that_took_longest_runs_first_the_next_time(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, processes: list[str]
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # only the plugins named (see tests/test_test_cpu.py)
    pytester.makepyfile(test_a_quick=QUICK, test_b_slow=SLOW)
    collected = ["test_a_quick.py::test_one", "test_a_quick.py::test_two"]
    collected += ["test_b_slow.py::test_slow", "test_b_slow.py::test_after_it"]
    assert run_order(pytester, *processes) == collected  # no record yet
    slow_first = collected[2:] + collected[:2]
    assert run_order(pytester, *processes) == slow_first
    assert run_order(pytester, *processes, "test_a_quick.py", passed=2) == collected[:2]
    assert run_order(pytester, *processes) == slow_first  # a run of one file kept the other's record
    assert run_order(pytester, *processes, "-p", "no:cacheprovider") == collected  # no cache, no record
