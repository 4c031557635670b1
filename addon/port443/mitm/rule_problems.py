"""RuleProblems: keeps the rule-file problems the proxy logged while loading its rules, for the dashboard.

mitm/state.py reports each problem of a skipped file as a warning and ends every load with an info line;
this handler on that logger keeps the problems of the last load that finished (at most MAX_PROBLEMS), so
the dashboard shows the same `file:line: field: problem` lines the log has. No mitmproxy.
"""

from __future__ import annotations

import logging

LOGGER = "port443.mitm.state"
MAX_PROBLEMS = 50
_PROBLEM = "ruleset problem"
_PREFIX = "kept): "
_LOADED = "rulesets loaded"


class RuleProblems(logging.Handler):
    """The problems of the last rules load, as logged."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.shown: tuple[str, ...] = ()
        self._pending: list[str] = []

    def attach(self) -> None:
        """Start listening (once; attaching again does nothing)."""
        logger = logging.getLogger(LOGGER)
        if self not in logger.handlers:
            logger.addHandler(self)

    def detach(self) -> None:
        """Stop listening."""
        logging.getLogger(LOGGER).removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if _PROBLEM in message:
            if len(self._pending) < MAX_PROBLEMS:
                self._pending.append(message.partition(_PREFIX)[2] or message)
        elif _LOADED in message:  # a load finished: its problems are the ones in force
            self.shown, self._pending = tuple(self._pending), []

    def current(self, failed: int) -> tuple[str, ...]:
        """The problems to show for rules with `failed` skipped files (none when every file loaded).

        Where info lines are not logged (a quieter log level), the load's end goes unseen: then the
        problems gathered so far are the best answer.
        """
        if not failed:
            return ()
        return self.shown or tuple(self._pending)
