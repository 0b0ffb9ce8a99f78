"""What the model and embedding command lines (`python -m model`, `python -m embedding`, and `posterbench` through
them) check before their work, and how they import TensorFlow: a stage's group that says what the file system refuses
in one line, the checks that need no TensorFlow, and TensorFlow's import without its start-up log on stderr."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import click

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the commands' default: TensorFlow's warnings and information off

TENSORFLOW_LOG_LINE = re.compile(
    r"(?:([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) )\S+:\d+\] "
)
"""The head of a line of TensorFlow's C++ log (absl's format, and TensorFlow's older one), its severity captured."""
ABSL_BEFORE_INIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
PYTHON_MESSAGE = re.compile(r"\S.*:\d+: \w*(?:Warning|Error): |Traceback |\w*(?:Warning|Error): ")
"""The head of what Python itself writes (a warning, a traceback): never part of the log line before it."""
SEVERITIES = "IWEF"


def import_tensorflow() -> None:
    """Import TensorFlow, keeping its start-up log off stderr: since TensorFlow 2.19 its C++ libraries log through
    absl before anything can set absl up, so TF_CPP_MIN_LOG_LEVEL no longer hides the "oneDNN custom operations are
    on" lines (twice) and absl's "All log messages before absl::InitializeLog()" line, and absl's Python logging
    cannot reach them. What the import writes to the stderr file descriptor is held meanwhile and written back without
    the log lines below TF_CPP_MIN_LOG_LEVEL (2 unless set: warnings and information) and absl's line; all of it when
    the import fails. A no-op once TensorFlow is imported."""
    if "tensorflow" in sys.modules:
        return
    for stream in (sys.stderr, sys.__stderr__):
        if stream is not None:
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to keep clean
        import tensorflow  # noqa: F401

        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            import tensorflow  # noqa: F401

            failed = False
        finally:
            for stream in (sys.stderr, sys.__stderr__):
                if stream is not None:
                    stream.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            written = held.read().decode("utf-8", "replace")
            kept = written if failed else without_start_up_log(written)
            if kept:
                os.write(2, kept.encode("utf-8", "replace"))


def without_start_up_log(text: str) -> str:
    """`text` without TensorFlow's log lines below TF_CPP_MIN_LOG_LEVEL (with the lines that continue them: a line
    that starts no log line and no Python warning or traceback is taken as part of the message before it), and, at
    level 1 or more, without absl's line about the log before its initialisation."""
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        level = 0
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        head = TENSORFLOW_LOG_LINE.match(line)
        if head:
            dropping = SEVERITIES.index(head.group(1) or head.group(2)) < level
        elif line.rstrip("\r\n") == ABSL_BEFORE_INIT:
            dropping = level >= 1
        elif PYTHON_MESSAGE.match(line):
            dropping = False
        if not dropping:
            kept.append(line)
    return "".join(kept)


def check_weights_file(weights: str) -> None:
    """A weights file named must exist: said before TensorFlow's import, not after (model.network.check_weights, which
    imports Keras, judges the rest)."""
    if weights.strip() and weights != "imagenet" and not Path(weights).is_file():
        problem = "is a directory, not a file" if Path(weights).is_dir() else "does not exist"
        raise click.ClickException(f"VGG-16 weights file {weights} {problem} (POSTERBENCH_WEIGHTS / --weights)")


def check_keras_model(model_dir: Path) -> None:
    """A model directory's description reads and its weights are there: said before TensorFlow's import, which
    GenreModel.load starts with."""
    from model.artifacts import DESCRIPTION_FILE, WEIGHTS_FILE, ModelArtifactError, read_description

    for name in (DESCRIPTION_FILE, WEIGHTS_FILE):  # in GenreModel.load's order, with the command a person types
        if not (model_dir / name).is_file():
            raise ModelArtifactError(
                f"{model_dir / name} is missing: train a model first (make train / posterbench train)"
            )
        if name == DESCRIPTION_FILE:
            read_description(model_dir)  # says what is wrong with it


class Stage(click.Group):
    """A stage's group of commands (`python -m model`, `python -m embedding`): what the file system refuses (a path
    that cannot be written, a file where a directory belongs) where a command has no message of its own for it is one
    line, not a traceback, as `posterbench` says it (posterbench.cli.Stages)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # a closed standard output (`| head`) is no error to report: click ends the command quietly
        except OSError as error:
            raise click.ClickException(str(error)) from error
