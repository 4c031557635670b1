"""Apply rulesets to URLs and cookies, as HTTPS Everywhere's `rewriteURI` and `shouldSecureCookie` did. Pure.

`rewrite_url` is the proxy's hot path: one canonicalisation, a few dict lookups, and regexes compiled once.
Every lookup runs within the bounds of `pattern_base` (URL length, RE2 work, backtracking time, first-use
compiling); one that cannot says so with its outcome instead of stalling, and the caller decides otherwise.
"""

from __future__ import annotations

import random
from enum import Enum
from typing import NamedTuple

from port443.engine.canon import canonicalize, restore_userinfo
from port443.engine.index import CompiledRuleset, RuleIndex
from port443.engine.pattern_base import MAX_URL_LENGTH, Budget, Undecided

_COOKIE_MEMO_SIZE = 250  # the reference engine's cookieHostCache holds about this many hosts


class Outcome(Enum):
    """What the rulesets decided for a URL."""

    NO_MATCH = "no-match"
    """No active ruleset rewrote the URL (none covers the host, or no rule matched)."""
    EXCLUDED = "excluded"
    """An active ruleset covers the host but one of its exclusions keeps this URL on plain HTTP."""
    UPGRADED = "upgraded"
    """A rule rewrote the URL."""
    TOO_LONG = "too-long"
    """The URL is longer than rules are run over (`pattern_base.MAX_URL_LENGTH`, less for a very complex pattern):
    the rules did not decide. HSTS, learned results or a probe still may; nothing may downgrade."""
    TIMED_OUT = "timed-out"
    """The lookup spent its budget (backtracking time, RE2 work, compiling rulesets on first use) before the
    rules decided: as undecided as TOO_LONG. `ruleset` names the ruleset it was working on."""

    @property
    def decided(self) -> bool:
        """Whether the rules gave an answer (a rewrite, an exclusion or "no rule applies")."""
        return self not in (Outcome.TOO_LONG, Outcome.TIMED_OUT)


class Rewrite(NamedTuple):
    """The rule engine's answer for one URL."""

    outcome: Outcome
    url: str | None
    """The rewritten URL (credentials put back) when UPGRADED, else None."""
    ruleset: str | None
    """The ruleset that rewrote (UPGRADED) or excluded (EXCLUDED) the URL, or could not decide in time."""


_NO_MATCH = Rewrite(Outcome.NO_MATCH, None, None)
_TOO_LONG = Rewrite(Outcome.TOO_LONG, None, None)


def rewrite_url(url: str, index: RuleIndex) -> Rewrite:
    """Rewrite `url` with the first active candidate ruleset that changes it; a single pass, never re-fed."""
    if len(url) > 2 * MAX_URL_LENGTH:
        # Not even canonicalised (5 ms a megabyte): only tabs, newlines and dot segments could shrink it enough.
        return _TOO_LONG
    canon = canonicalize(url)
    if canon is None:
        return _NO_MATCH
    href, host, userinfo = canon
    if not host:
        return _NO_MATCH
    if len(href) > MAX_URL_LENGTH:
        return _TOO_LONG
    rulesets = index.host_rulesets.get(host)
    if rulesets is None:
        rulesets = index.rulesets_for(host)
    if not rulesets:  # most URLs of most sessions: no ruleset covers the host
        return _NO_MATCH
    first = rulesets[0]
    if first.trivial and href.startswith("http:"):  # the most common rule, inline: no call, no regex
        outcome = _new_rewrite(Rewrite, (_UPGRADED, "https:" + href[5:], first.name))
    else:
        outcome = _run(href, rulesets)
    if userinfo and outcome.url is not None:
        return outcome._replace(url=restore_userinfo(outcome.url, userinfo))
    return outcome


def apply_rulesets(href: str, host: str, index: RuleIndex) -> Rewrite:
    """Run the candidate rulesets of `host` over an already canonical `href` (no userinfo)."""
    if len(href) > MAX_URL_LENGTH:
        return _TOO_LONG
    return _run(href, index.rulesets_for(host))


def _run(href: str, rulesets: tuple[CompiledRuleset, ...]) -> Rewrite:
    """The first ruleset's rewrite, else the first exclusion, else no match; `href` fits MAX_URL_LENGTH."""
    excluded_by: str | None = None
    budget: Budget | None = None
    data = b""
    ruleset: CompiledRuleset | None = None
    try:
        for ruleset in rulesets:
            if ruleset.trivial:  # most rulesets: no regex, no budget
                if href.startswith("http:"):
                    return _new_rewrite(Rewrite, (_UPGRADED, "https:" + href[5:], ruleset.name))
                continue
            if ruleset.plain:
                result = _apply(ruleset, href, b"", _NO_BUDGET)
            else:
                if budget is None:  # only patterns that run a regex engine spend it
                    budget, data = Budget(), href.encode()
                result = _apply(ruleset, href, data, budget)
            if result is True:
                if excluded_by is None:
                    excluded_by = ruleset.name
            elif result is not False:
                return _new_rewrite(Rewrite, (_UPGRADED, result, ruleset.name))
    except Undecided as e:
        name = ruleset.name if ruleset is not None else None
        return Rewrite(Outcome.TOO_LONG if e.too_long else Outcome.TIMED_OUT, None, name)
    if excluded_by is not None:
        return _new_rewrite(Rewrite, (Outcome.EXCLUDED, None, excluded_by))
    return _NO_MATCH


_NO_BUDGET = Budget(0, 0.0, 0)  # what `plain` rulesets are given: literal patterns spend nothing
_UPGRADED = Outcome.UPGRADED
_new_rewrite = tuple.__new__  # a NamedTuple's own __new__ is a Python function: this skips a call


def apply_ruleset(ruleset: CompiledRuleset, href: str) -> str | None:
    """One ruleset's result: None when an exclusion matches anywhere, no rule changes the URL, or the URL is
    beyond what the rules run over (see `Outcome.TOO_LONG`)."""
    try:
        result = _apply(ruleset, href, href.encode(), Budget())
    except Undecided:
        return None
    return result if isinstance(result, str) else None


def _apply(ruleset: CompiledRuleset, href: str, data: bytes, budget: Budget) -> str | bool:
    """The rewritten URL; True when an exclusion matches anywhere; False when no rule changes the URL.

    Raises:
        Undecided: when a pattern cannot run within the lookup's bounds.
    """
    for exclusion in ruleset.exclusions:
        if exclusion.search(href, data, budget):
            return True
    for pattern, template in ruleset.rules:
        if pattern is None:
            if href.startswith("http:"):
                return "https:" + href[5:]
            continue
        # JavaScript's non-global String.replace: the first match only. A rule wins only if it changed the URL.
        result = pattern.replace_first(template, href, data, budget)
        if result is not None and result != href:
            return result
    return False


class CookieDecision(NamedTuple):
    """Whether a cookie should get the Secure flag, and which ruleset asked for it."""

    secure: bool
    ruleset: str | None
    """The first active ruleset with a matching securecookie rule, even when the safety probe then said no."""


_LEAVE = CookieDecision(False, None)


def secure_cookie(domain: str, name: str, index: RuleIndex) -> CookieDecision:
    """Decide whether to add Secure to a cookie set for `domain` (leading dot = domain cookie) named `name`.

    The host regex is searched in the domain *with* its leading dot, as the reference engine does. A matching
    rule is only trusted if the host really is upgraded: some active candidate ruleset must rewrite a random
    path on it (the safety probe), so a Secure cookie is never set for a host that stays on plain HTTP. A
    cookie the rules cannot decide on within their bounds is left as it is.
    """
    if len(domain) > MAX_URL_LENGTH or len(name) > MAX_URL_LENGTH:
        return _LEAVE
    host = domain.lstrip(".")
    domain_data, name_data = domain.encode(), name.encode()
    budget = Budget()
    active = index.active
    try:
        for i in index.candidates(host):
            if not active[i]:
                continue
            for host_re, name_re in index.cookies(i):
                if host_re.search(domain, domain_data, budget) and name_re.search(name, name_data, budget):
                    return CookieDecision(_host_is_upgraded(host, index), index.name(i))
    except Undecided:
        return _LEAVE
    return _LEAVE


def _host_is_upgraded(host: str, index: RuleIndex) -> bool:
    memo = index.cookie_memo
    known = memo.get(host)
    if known is None:
        # Like the reference: a fresh random path, so a rule that only covers some paths does not pass by luck
        # of a fixed one. The answer is memoised per host, first in first out (an undecided one is not).
        path = f"{random.random()}/{random.random()}"
        outcome = apply_rulesets(f"http://{host}/{path}", host, index).outcome
        if not outcome.decided:
            return False
        known = outcome is Outcome.UPGRADED
        if len(memo) >= _COOKIE_MEMO_SIZE:
            del memo[next(iter(memo))]
        memo[host] = known
    return known
