"""Capture the `bearerguard` logger's lines while a command runs, to print them with its results.

`bearerguard check` and `bearerguard demo` show what the library logged beside what it answered;
the lines hold no token or secret (configured URLs reach them through `safe_url`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class LogLines(logging.Handler):
    """The records of INFO and above, as (level name, message), until taken."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:  # handle() holds self.lock
        # The message is rendered now: its arguments may change after the call that logged it.
        self._lines.append((record.levelname, record.getMessage()))

    def take(self) -> list[tuple[str, str]]:
        """The lines captured since the last call, oldest first."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            lines, self._lines = self._lines, []
        return lines


@contextmanager
def captured_log() -> Iterator[LogLines]:
    """Send the `bearerguard` logger's INFO and above to a `LogLines`, and to it only (not on to
    the root logger's handlers, which would print them twice), until the block ends."""
    logger, handler = logging.getLogger("bearerguard"), LogLines()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
