"""User-facing errors.

Anything a researcher can cause by pointing histvq at bad input (malformed raw files, a
broken prepared folder, an unknown config value) raises a :class:`HistvqError`. Entry
points print its message as a single line and exit non-zero instead of showing a
traceback, because the message (file, key and problem) is what the user needs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn


class HistvqError(Exception):
    """Base class of errors caused by input or configuration, not by a bug."""


class LayoutError(HistvqError):
    """A prepared dataset folder (features/groundTruth/mapping) is missing or malformed."""


class RawFormatError(HistvqError):
    """A raw recording (HuGaDB text, LARa CSV, BABEL pickle, ...) cannot be parsed."""


class ConfigError(HistvqError):
    """A configuration value is unknown or inconsistent."""


EXIT_USER_ERROR = 2


def exit_with_error(error: HistvqError) -> NoReturn:
    """Print ``error`` as one line on stderr and exit with :data:`EXIT_USER_ERROR`."""
    print(f"error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_USER_ERROR)


def run_reporting_errors(main: Callable[[], int | None]) -> int | None:
    """Run ``main``; a :class:`HistvqError` becomes a one-line message and exit code 2.

    Output piped into a reader that stops early (``| head``) ends quietly, as shell tools do.
    """
    try:
        return main()
    except HistvqError as error:
        exit_with_error(error)
    except BrokenPipeError:
        import os

        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
