"""User-facing errors: one class, one message that names the problem and the fix."""

from __future__ import annotations

import sys
from collections.abc import Callable


class RobustError(Exception):
    """An error caused by the user's input (path, format, parameter), not by a bug.

    The message always says what is wrong and how to fix it; the CLI prints it on one
    line without a traceback and exits with status 2.
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} Fix: {fix}" if fix else problem)


class DataError(RobustError):
    """A dataset is missing, in the wrong layout, or holds an unreadable image."""


class ParamError(RobustError):
    """A parameter in params.yaml (or on the command line) is invalid."""


class BadImageError(DataError):
    """One image file cannot be decoded; ``data.on_bad_image: skip`` leaves it out."""


def _reduce(self: RobustError) -> tuple:
    return (self.__class__, (self.problem, self.fix))


# keep problem and fix when an error crosses a process boundary (pickling)
RobustError.__reduce__ = _reduce  # type: ignore[method-assign,assignment]


def run_step(step: Callable[[], object]) -> int:
    """Run a command or stage step; a :class:`RobustError` prints one line (no traceback) and
    gives exit status 2, an interruption 130. Returns the exit status."""
    try:
        step()
    except RobustError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was kept (a training resumes from its last epoch)", file=sys.stderr)
        return 130
    return 0
