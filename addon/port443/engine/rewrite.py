"""Apply rulesets to URLs and cookies, as HTTPS Everywhere's `rewriteURI` and `shouldSecureCookie` did. Pure.

`rewrite_url` is the proxy's hot path: one canonicalisation, a few dict lookups, and regexes compiled once.
"""

from __future__ import annotations

import random
from enum import Enum
from typing import NamedTuple

from port443.engine.canon import canonicalize, restore_userinfo
from port443.engine.index import CompiledRuleset, RuleIndex

_COOKIE_MEMO_SIZE = 250  # the reference engine's cookieHostCache holds about this many hosts


class Outcome(Enum):
    """What the rulesets decided for a URL."""

    NO_MATCH = "no-match"
    """No active ruleset rewrote the URL (none covers the host, or no rule matched)."""
    EXCLUDED = "excluded"
    """An active ruleset covers the host but one of its exclusions keeps this URL on plain HTTP."""
    UPGRADED = "upgraded"
    """A rule rewrote the URL."""


class Rewrite(NamedTuple):
    """The rule engine's answer for one URL."""

    outcome: Outcome
    url: str | None
    """The rewritten URL (credentials put back) when UPGRADED, else None."""
    ruleset: str | None
    """The ruleset that rewrote (UPGRADED) or excluded (EXCLUDED) the URL."""


_NO_MATCH = Rewrite(Outcome.NO_MATCH, None, None)


def rewrite_url(url: str, index: RuleIndex) -> Rewrite:
    """Rewrite `url` with the first active candidate ruleset that changes it; a single pass, never re-fed."""
    canon = canonicalize(url)
    if canon is None or not canon.host:
        return _NO_MATCH
    outcome = apply_rulesets(canon.href, canon.host, index)
    if outcome.url is not None and canon.userinfo:
        return outcome._replace(url=restore_userinfo(outcome.url, canon.userinfo))
    return outcome


def apply_rulesets(href: str, host: str, index: RuleIndex) -> Rewrite:
    """Run the candidate rulesets of `host` over an already canonical `href` (no userinfo)."""
    excluded_by: str | None = None
    active = index.active
    for i in index.candidates(host):
        if not active[i]:
            continue
        ruleset = index.compiled(i)
        result = apply_ruleset(ruleset, href)
        if result is None:
            if excluded_by is None and ruleset.exclusion is not None and ruleset.exclusion.search(href):
                excluded_by = ruleset.name
            continue
        return Rewrite(Outcome.UPGRADED, result, ruleset.name)
    if excluded_by is not None:
        return Rewrite(Outcome.EXCLUDED, None, excluded_by)
    return _NO_MATCH


def apply_ruleset(ruleset: CompiledRuleset, href: str) -> str | None:
    """One ruleset's result: None when an exclusion matches anywhere, or no rule changes the URL."""
    if ruleset.exclusion is not None and ruleset.exclusion.search(href):
        return None
    for pattern, template in ruleset.rules:
        if pattern is None:
            if href.startswith("http:"):
                return "https:" + href[5:]
            continue
        # JavaScript's non-global String.replace: the first match only. A rule wins only if it changed the URL.
        result = pattern.sub(template, href, count=1)
        if result != href:
            return result
    return None


class CookieDecision(NamedTuple):
    """Whether a cookie should get the Secure flag, and which ruleset asked for it."""

    secure: bool
    ruleset: str | None
    """The first active ruleset with a matching securecookie rule, even when the safety probe then said no."""


def secure_cookie(domain: str, name: str, index: RuleIndex) -> CookieDecision:
    """Decide whether to add Secure to a cookie set for `domain` (leading dot = domain cookie) named `name`.

    The host regex is searched in the domain *with* its leading dot, as the reference engine does. A matching
    rule is only trusted if the host really is upgraded: some active candidate ruleset must rewrite a random
    path on it (the safety probe), so a Secure cookie is never set for a host that stays on plain HTTP.
    """
    host = domain.lstrip(".")
    active = index.active
    for i in index.candidates(host):
        if not active[i]:
            continue
        ruleset = index.compiled(i)
        for host_re, name_re in ruleset.cookies:
            if host_re.search(domain) and name_re.search(name):
                return CookieDecision(_host_is_upgraded(host, index), ruleset.name)
    return CookieDecision(False, None)


def _host_is_upgraded(host: str, index: RuleIndex) -> bool:
    memo = index.cookie_memo
    known = memo.get(host)
    if known is None:
        # Like the reference: a fresh random path, so a rule that only covers some paths does not pass by luck
        # of a fixed one. The answer is memoised per host, first in first out.
        path = f"{random.random()}/{random.random()}"
        known = apply_rulesets(f"http://{host}/{path}", host, index).outcome is Outcome.UPGRADED
        if len(memo) >= _COOKIE_MEMO_SIZE:
            del memo[next(iter(memo))]
        memo[host] = known
    return known
