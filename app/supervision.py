"""Keep one child process running: `posterbench worker --restart` (what `posterbench serve` starts) runs the job worker
as a child and starts it again when a signal it did not send ends it (SIGKILL, the out-of-memory killer, a crash in
native code), waiting longer after each quick death. A worker that exits by itself (stopped cleanly: 0; a setting
it cannot start with: 1) is not restarted, and the supervisor exits with its status.

Hand-written rather than supervisord or circus: one child and three rules need no daemon or configuration file of
their own, and gunicorn stays the process that owns the port and the container's signals."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

FIRST_DELAY_SECONDS = 1.0
"""How long to wait before starting the child again after it was killed; doubled after each death that came within
STEADY_SECONDS of its start, up to MAX_DELAY_SECONDS."""
MAX_DELAY_SECONDS = 30.0
STEADY_SECONDS = 60.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

logger = logging.getLogger(__name__)


def stop_with_parent(parent: int) -> Callable[[], None]:
    """What a child runs before its program: ask the kernel to send it SIGTERM when its parent dies (Linux), and
    exit at once if the parent is already gone."""

    def prepare() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(0)

    return prepare


def describe(status: int) -> str:
    """A child's return code in words: "exited with 1", "killed by SIGKILL"."""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exited with {status}"


def supervise(
    command: Sequence[str],
    environment: Mapping[str, str],
    name: str = "job worker",
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run `command` until it exits by itself or this process is told to stop (SIGTERM, SIGINT: passed on to the
    child, whose status is then returned, 0 for a child that stopped on it); a child ended by any other signal is
    started again after a delay. Returns the status to exit with."""
    stopping: list[int] = []
    child: subprocess.Popen | None = None

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    delay = FIRST_DELAY_SECONDS
    try:
        while not stopping:
            started = time.monotonic()
            child = subprocess.Popen(list(command), env=dict(environment), preexec_fn=stop_with_parent(os.getpid()))
            if stopping and child.poll() is None:  # told to stop while the child was being started
                child.send_signal(stopping[0])
            status = child.wait()
            if stopping:
                return 0 if status in (0, *(-signum for signum in STOP_SIGNALS)) else status
            if status >= 0:
                (logger.info if status == 0 else logger.error)("%s %d %s", name, child.pid, describe(status))
                return status
            if time.monotonic() - started >= STEADY_SECONDS:
                delay = FIRST_DELAY_SECONDS
            logger.warning("%s %d %s; starting another in %g s", name, child.pid, describe(status), delay)
            sleep(delay)
            delay = min(MAX_DELAY_SECONDS, delay * 2)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
