"""The exception tree. Outcomes that are not errors (a probe that failed, a URL left alone) are values, not these.

Port443Error
├── RulesetError(Port443Error, ValueError)   .problems: every problem of one file
├── ProbeError                               programming/config errors only
├── StoreError
└── UsageError                               a command-line value is wrong: exit 2, naming the value
"""

from __future__ import annotations

from dataclasses import dataclass


class Port443Error(Exception):
    """Base of every error port443 raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a ruleset file, located as precisely as the file allows."""

    source: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class RulesetError(Port443Error, ValueError):
    """A ruleset file is invalid; carries all of its problems so a user can fix them in one go."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("RulesetError needs at least one problem")
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    @property
    def source(self) -> str:
        """The file the problems are in."""
        return self.problems[0].source

    @property
    def line(self) -> int | None:
        """The line of the first problem."""
        return self.problems[0].line

    @property
    def field(self) -> str:
        """The field of the first problem."""
        return self.problems[0].field


class ProbeError(Port443Error):
    """A probe was asked for something impossible (bad arguments); network failures are ProbeResults."""


class StoreError(Port443Error):
    """The insecure-site store cannot be opened or written."""


class UsageError(Port443Error):
    """A command-line value cannot be used (a malformed --connect-to, a missing --ca-bundle); exit code 2."""
