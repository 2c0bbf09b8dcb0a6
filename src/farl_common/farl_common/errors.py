"""Errors an operator can act on.

Every problem with user input (config files, models, demo files) is raised as a
`FarlInputError` whose message is one line naming the file, the key and what to
do. Entry points print that line and exit non-zero instead of a traceback.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class FarlInputError(Exception):
    """Bad user input: the message is one line an operator can act on."""

    def __init__(self, path: str | Path | None, problem: str, key: str | None = None):
        self.path = str(path) if path is not None else None
        self.key = key
        self.problem = problem
        where = self.path or "<input>"
        if key:
            where = f"{where}: {key}"
        super().__init__(f"{where}: {problem}")


class ConfigError(FarlInputError):
    """A malformed, missing or inconsistent config file."""


@contextmanager
def exit_on_input_error(program: str) -> Iterator[None]:
    """Turn a `FarlInputError` into one `program: error: ...` line and exit code 2."""
    try:
        yield
    except FarlInputError as error:
        print(f"{program}: error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
