"""The one exception type that stage scripts turn into a clear message and a non-zero exit."""

from __future__ import annotations

from os import PathLike


class InputError(Exception):
    """Bad user input: names the offending file (or parameter) and the problem."""

    def __init__(self, source: str | PathLike[str], problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")
