"""app/supervision.py: the supervisor that `posterbench serve` runs the job worker under starts its child
again when a signal it did not send ends it, waiting longer after each quick death; passes SIGTERM on and exits with
the child; does not restart a child that exits by itself; and its child does not outlive it. The children here are
small Python programs: tests/test_jobs.py runs the real worker under it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.supervision import describe, supervise
from tools.serving import is_running, wait_until_gone

SUPERVISOR = "import os, sys\nfrom app.supervision import supervise\nsys.exit(supervise({command!r}, os.environ))\n"


def child_command(pids: Path, then: str = "import time; time.sleep(60)") -> list[str]:
    """A child that appends its pid to `pids`, then does `then`."""
    program = f"import os\nwith open({str(pids)!r}, 'a') as f: f.write(f'{{os.getpid()}}\\n')\n{then}\n"
    return [sys.executable, "-c", program]


def start_supervisor(command: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR.format(command=command)], stdout=output, stderr=subprocess.STDOUT
        )


def started_children(pids: Path, count: int, seconds: float = 20) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [int(line) for line in pids.read_text().split()] if pids.exists() else []
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(
        f"{count} children not started within {seconds} s: {pids.read_text() if pids.exists() else ''}"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and the parent-death signal")
def test_a_killed_child_is_started_again_and_sigterm_stops_both(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    supervisor = start_supervisor(child_command(pids), tmp_path / "log")
    try:
        (first,) = started_children(pids, 1)
        os.kill(first, signal.SIGKILL)
        second = started_children(pids, 2)[1]
        assert second != first and is_running(second)
        os.kill(second, signal.SIGSEGV)  # a crash in native code
        third = started_children(pids, 3)[2]
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=20) == 0  # the child stopped on the SIGTERM passed on
        assert wait_until_gone(third, 10)
    finally:
        supervisor.kill()
    log = (tmp_path / "log").read_text()
    assert f"job worker {first} killed by SIGKILL; starting another in 1 s" in log
    assert f"job worker {second} killed by SIGSEGV; starting another in 2 s" in log  # quick deaths: longer waits


def test_a_child_that_exits_by_itself_is_not_started_again(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = child_command(pids, "raise SystemExit(3)")
    supervisor = start_supervisor(command, tmp_path / "log")
    assert supervisor.wait(timeout=30) == 3
    assert len(started_children(pids, 1)) == 1
    assert "exited with 3" in (tmp_path / "log").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and the parent-death signal")
def test_the_child_does_not_outlive_a_killed_supervisor(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    supervisor = start_supervisor(child_command(pids), tmp_path / "log")
    (child,) = started_children(pids, 1)
    supervisor.kill()
    supervisor.wait(timeout=20)
    assert wait_until_gone(child, 10), "the child outlived its supervisor"


def test_waits_double_after_quick_deaths_up_to_the_limit() -> None:
    """In-process, with a fake sleep: children that kill themselves at once, until the supervisor is told to stop."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 7:
            signal.raise_signal(signal.SIGTERM)  # the supervisor's handler, not the default: the test goes on

    command = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    handler = signal.getsignal(signal.SIGTERM)
    assert supervise(command, os.environ, sleep=sleep) == 0
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert signal.getsignal(signal.SIGTERM) == handler  # put back


@pytest.mark.parametrize(("status", "words"), [(0, "exited with 0"), (1, "exited with 1"), (-9, "killed by SIGKILL")])
def test_describe(status: int, words: str) -> None:
    assert describe(status) == words
