"""RuleProblems keeps the rule-file problems of the last load, as mitm/state.py logged them."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from port443.mitm.rule_problems import LOGGER, MAX_PROBLEMS, RuleProblems

PROBLEM = "port443: ruleset problem (file skipped, or its last good version kept): %s"


@pytest.fixture
def problems() -> Iterator[RuleProblems]:
    handler = RuleProblems()
    handler.attach()
    handler.attach()  # once only
    logger = logging.getLogger(LOGGER)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.setLevel(old)
    handler.detach()


def test_the_last_finished_load_is_shown(problems: RuleProblems) -> None:
    logger = logging.getLogger(LOGGER)
    logger.warning(PROBLEM, "bad.yaml:3: rules[0].from: invalid regex '('")
    assert problems.current(1) == ("bad.yaml:3: rules[0].from: invalid regex '('",)  # before the end line
    logger.info("port443: 4 rulesets loaded from 5 files in 0.01s")
    logger.warning(PROBLEM, "other.yaml:1: name: missing")
    assert problems.current(1) == ("bad.yaml:3: rules[0].from: invalid regex '('",)
    logger.info("port443: 4 rulesets loaded from 5 files in 0.01s")
    assert problems.current(1) == ("other.yaml:1: name: missing",)
    assert problems.current(0) == ()
    assert logging.getLogger(LOGGER).handlers.count(problems) == 1


def test_problems_are_bounded(problems: RuleProblems) -> None:
    for n in range(MAX_PROBLEMS * 3):
        logging.getLogger(LOGGER).warning(PROBLEM, f"f{n}.yaml:1: x: y")
    logging.getLogger(LOGGER).info("port443: 0 rulesets loaded from 150 files in 0.01s")
    assert len(problems.current(150)) == MAX_PROBLEMS
