"""Bounded-time patterns: RE2 for what it can run, `regex` with a time budget for lookaround, work limits."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from port443.engine import jsregex, pattern
from port443.engine.cache import LoadedRules
from port443.engine.index import compile_record
from port443.engine.pattern import (
    MAX_URL_LENGTH,
    BacktrackingPattern,
    Budget,
    Re2Pattern,
    Undecided,
    compile_any,
    compile_js,
)

LAG_BOUND = 0.050  # no single lookup may hold the event loop longer than this


def search(source: str, text: str, budget: Budget | None = None) -> bool:
    return compile_js(source, capture=False).search(text, text.encode(), budget or Budget())


def replace(source: str, to: str, text: str) -> str | None:
    compiled = compile_js(source)
    template = jsregex.replacement_parts(to, compiled.groups)
    return compiled.replace_first(template, text, text.encode(), Budget())


@pytest.mark.parametrize(
    ("source", "text", "matches"),
    [
        (r"^http://a\.com/$", "http://a.com/\n", False),  # JS `$` is the very end (RE2 spells it \z)
        (r"^http://a\.com/$", "http://a.com/", True),
        (r"a.b", "a\rb", False),  # JS `.` stops at \r, \u2028, \u2029
        (r"a.b", "a\u2028b", False),
        (r"a.b", "a-b", True),
        (r"^\d+$", "\u0661\u0662", False),  # ASCII digits only
        (r"^\w+$", "é", False),
        (r"\s", "\u00a0", True),  # ... but \s is Unicode
        (r"^\S$", "\u3000", False),
        (r"a{,2}", "a{,2}", True),
        (r"\e\/", "e/", True),
        (r"[\w-.]+", "a-.b", True),
        (r"x[]", "x", False),
        (r"x[^]", "x\n", True),
        (r"\x41\u0042", "AB", True),
        (r"\u00e9", "é", True),
        (r"(?!www\.)", "abc", True),  # lookahead: the backtracking engine
        (r"^(?!www\.)\w", "www.a", False),
        (r"(?<w>a)\k<w>", "aa", True),  # backreference: the backtracking engine
    ],
)
def test_both_engines_follow_javascript(source: str, text: str, matches: bool) -> None:
    assert search(source, text) is matches


@pytest.mark.parametrize(
    ("source", "engine"),
    [
        (r"^http://(www\.)?example\.com/", Re2Pattern),
        (r"^http://x\.test/(a+)+b", Re2Pattern),  # nested, but RE2 runs it in linear time
        (r"^http://(?!auth\.)(\w+)\.360buy\.com/+", BacktrackingPattern),
        (r"(a)\1", BacktrackingPattern),
    ],
)
def test_the_engine_is_chosen_by_syntax(source: str, engine: type) -> None:
    assert type(compile_js(source)) is engine


@pytest.mark.parametrize(
    ("source", "to", "text", "result"),
    [
        (r"^http://(www\.)?a\.com/", "https://$1a.com/", "http://www.a.com/x", "https://www.a.com/x"),
        (r"^http://(www\.)?a\.com/", "https://$1a.com/", "http://a.com/x", "https://a.com/x"),  # unset: empty
        (r"^http://a\.com/", "https://a.com/$&", "http://a.com/x", "https://a.com/http://a.com/x"),
        (r"^http://a\.com/(é)", "https://a.com/$1!", "http://a.com/éx", "https://a.com/é!x"),  # not ASCII
        (r"^http://(?!b\.)(\w+)\.c\.com/", "https://$1.c.com/", "http://a.c.com/", "https://a.c.com/"),
        (r"^http://(?!b\.)(\w+)\.c\.com/", "https://$1.c.com/", "http://b.c.com/", None),
        (r"^http://z\.com/", "https://z.com/", "http://a.com/", None),
    ],
)
def test_replace_first(source: str, to: str, text: str, result: str | None) -> None:
    assert replace(source, to, text) == result


def test_joined_exclusions_keep_anchored_ones_anchored() -> None:
    sources = [r"^http://a\.com/x", r"\.pdf$", r"^http://a\.com/(?!y)", r"^http://b\.com/"]
    joined = compile_any(sources)
    assert [type(p) for p in joined] == [Re2Pattern, Re2Pattern, BacktrackingPattern]
    for text, hit in [("http://b.com/", True), ("http://q.com/a.pdf", True), ("http://a.com/z", True)]:
        assert any(p.search(text, text.encode(), Budget()) for p in joined) is hit
    text = "http://a.com/y"
    assert not any(p.search(text, text.encode(), Budget()) for p in joined)


def test_a_text_beyond_the_bound_is_undecided() -> None:
    text = "http://a.com/" + "a" * MAX_URL_LENGTH
    for source in (r"^http://a\.com/", r"^http://a\.com/(?!b)"):
        with pytest.raises(Undecided) as info:
            search(source, text)
        assert info.value.too_long


def test_a_complex_pattern_runs_over_fewer_characters() -> None:
    # Nested counted repetition keeps RE2's work per character high: it gets a shorter text limit.
    compiled = compile_js(r"((a{1,30}){1,30})+b", capture=False)
    assert isinstance(compiled, Re2Pattern)
    assert compiled.text_limit < 1000 < MAX_URL_LENGTH
    with pytest.raises(Undecided, match="text too long"):
        search(r"((a{1,30}){1,30})+b", "a" * 2000)
    assert compile_js(r"^http://a\.com/.*", capture=False).text_limit == MAX_URL_LENGTH  # type: ignore[attr-defined]


def test_the_lookup_budget_is_shared() -> None:
    budget = Budget(work=1000)
    search(r"a", "a" * 10, budget)
    with pytest.raises(Undecided, match="budget"):
        search(r"b", "a" * 1000, budget)
    with pytest.raises(Undecided, match="budget"):
        search(r"(?!b)a", "a", Budget(seconds=0.0))


@pytest.mark.parametrize(
    "source",
    [
        r"(?!x)((a{100}){100}){100}",  # the `regex` package would unroll it into gigabytes
        r"((a{100}){100}){100}",  # RE2 refuses it too
        r"^(?:" + "|".join(f"{i}a{i}" for i in range(3000)) + r")" + "x" * 300,  # too complex for its reach
    ],
)
def test_patterns_too_costly_to_compile_or_run_are_refused(source: str) -> None:
    started = time.perf_counter()
    with pytest.raises(jsregex.TranslateError):
        compile_js(source)
    assert time.perf_counter() - started < 1


def hostile() -> Iterator[tuple[str, str]]:
    n = MAX_URL_LENGTH - 40
    yield r"^http://(www\.)?amazon\.in/+(.+/)?(b|dp|e|s)($|[?/])", "http://amazon.in/" + "/" * n
    yield r"^http://x\.test/(a+)+b", "http://x.test/" + "a" * n
    yield r"^http://x\.test/(?!z)(a+)+b", "http://x.test/" + "a" * n  # backtracking, under the budget
    yield r"^http://x\.test/(?!z)(a+)+b", "http://x.test/" + "a" * 28  # exponential on 30 characters
    yield r"((a{1,30}){1,30})+b", "a" * 300
    yield r"http://.+\..+\.appspot\.com/", "http://www.appspot.com/" + "." * n
    yield (
        r"^http://(?:www\.)?northamptonshire\.gov\.uk/(?!/*(?:.*/)?(?:_layouts|FooterImages)/)",
        "http://northamptonshire.gov.uk/" + "/" * n,
    )


@pytest.mark.parametrize(("source", "text"), list(hostile()))
def test_hostile_inputs_take_bounded_time(source: str, text: str) -> None:
    """The event-loop lag probe at unit level: any call, finished or undecided, returns within the bound."""
    compiled = compile_js(source)
    template = jsregex.replacement_parts("https://x.test/", compiled.groups)
    for run in (
        lambda: compiled.search(text, text.encode(), Budget()),
        lambda: compiled.replace_first(template, text, text.encode(), Budget()),
    ):
        started = time.perf_counter()
        try:
            run()
        except Undecided:
            pass
        assert time.perf_counter() - started < LAG_BOUND


def test_facts_survive_packing() -> None:
    for facts in (pattern.Facts(True, False, 0, 0), pattern.Facts(False, True, 1234, 56789)):
        assert pattern.unpack_facts(pattern.pack_facts(facts)) == facts


def test_compile_costs_follow_the_engines() -> None:
    plain, look = r"^http://a\.com/", r"^http://a\.com/(?!b)"
    facts = [pattern.facts_of(plain), pattern.facts_of(look)]
    assert pattern.compile_cost([plain], facts[:1]) < pattern.compile_cost([look], facts[1:])
    many = [plain] * 50
    assert pattern.compile_cost(many, facts[:1] * 50, joined=True) < pattern.compile_cost(
        many, facts[:1] * 50
    )


# --- over the shipped corpus ----------------------------------------------------------------------------------

_TAILS = ("/", "a", "a/", ".", "-", "1", "/.", "%2F", "a.", "w.")


def _hostile_urls(host: str) -> Iterator[str]:
    prefix = f"http://{host}/"
    for tail in _TAILS:
        yield prefix + tail * ((MAX_URL_LENGTH - len(prefix)) // len(tail))
        yield prefix + tail * ((MAX_URL_LENGTH - len(prefix)) // len(tail) - 1) + "x"


@pytest.mark.slow
def test_no_shipped_ruleset_is_slow_on_hostile_urls(shipped: LoadedRules) -> None:
    index = shipped.index
    worst: list[tuple[float, str, str]] = []
    for i in range(len(index)):
        record = index.records[i]
        ruleset = compile_record(record)
        hosts = [t.replace("*.", "www.").replace(".*", ".com") for t in record[7][:2]]
        for url in (u for h in hosts for u in _hostile_urls(h)):
            data, budget = url.encode(), Budget()
            started = time.perf_counter()
            try:
                for p in ruleset.exclusions:
                    p.search(url, data, budget)
                for rule in ruleset.rules:
                    if rule.pattern is not None:
                        rule.pattern.replace_first(rule.template, url, data, budget)
            except Undecided:
                pass
            worst.append((time.perf_counter() - started, ruleset.name, url[:60]))
    worst.sort(reverse=True)
    assert worst[0][0] < LAG_BOUND, worst[:5]


@pytest.mark.slow
def test_the_engines_agree_with_python_re_on_the_corpus_tests(shipped: LoadedRules) -> None:
    """RE2 and `regex` give what the translated `re` pattern gives, on every test URL of every ruleset."""
    from port443.engine.ruleset import load_ruleset

    mismatches = []
    sources = {shipped.index.records[i][6] for i in range(len(shipped.index))}
    for source in sorted(sources)[::7]:  # a seventh of the corpus keeps this under a minute
        ruleset = load_ruleset(source)
        for rule in ruleset.rules:
            if rule.trivial:
                continue
            reference = jsregex.compile_pattern(rule.from_)
            template = jsregex.translate_replacement(rule.to, reference.groups)
            for url in ruleset.tests:
                want = reference.sub(template, url, count=1)
                got = replace(rule.from_, rule.to, url)
                if (got or url) != want:
                    mismatches.append((source, rule.from_, url, want, got))
        for exclusion in ruleset.exclusions:
            reference = re.compile(jsregex.translate_pattern(exclusion), jsregex.FLAGS)
            for url in ruleset.tests:
                if bool(reference.search(url)) != search(exclusion, url):
                    mismatches.append((source, exclusion, url, "", ""))
    assert not mismatches, mismatches[:10]
