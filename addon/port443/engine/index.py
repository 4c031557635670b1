"""RuleIndex: host -> candidate rulesets, exactly as HTTPS Everywhere's `potentiallyApplicableRulesets`.

The only module that knows the storage layout. The index is immutable: a reload builds a new one and swaps a
reference (what it fills in as it goes, prepared rulesets and a host memo, never changes an answer). It is
kept compact (plain tuples that marshal quickly into the compiled cache) and prepares a ruleset only when
one of its hosts is first seen, as HTTPS Everywhere did to save start-up time. Preparing compiles nothing
(`pattern.prepare_js`): the trivial rule is a flag, literal patterns are string operations, and any other
pattern compiles when a URL first gets past its literal prefix. That compilation is bounded: validation caps
what one ruleset costs, and a lookup compiles at most LOOKUP_COMPILE_COST of patterns (the first always), so
many patterns on one host are compiled over several lookups rather than in one long stall of the event loop.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, overload

from port443.engine import jsregex
from port443.engine.pattern import compile_cost, facts_of, pack_facts, prepare_js, unpack_facts
from port443.engine.pattern_base import Pattern
from port443.engine.ruleset import USER_RULE, Ruleset
from port443.engine.string_pattern import AnyLiteral, LiteralPattern

# Marshal-friendly ruleset record; see `record_of`. Trivial rules are stored as None (no regex needed).
Record = tuple[
    str,  # name
    str,  # default_off ("" when on)
    str,  # platform ("" when none)
    tuple[tuple[str, str] | None, ...],  # rules: (from, to) or None for "^http:" -> "https:"
    tuple[str, ...],  # exclusions
    tuple[tuple[str, str], ...],  # securecookies: (host, name)
    str,  # source file
    tuple[str, ...],  # targets
    tuple[int, ...],  # packed Facts of every regex: rules' `from`, exclusions, securecookies' host and name
]
TargetMap = dict[str, int | tuple[int, ...]]

_MAX_HOST = 255
_HOST_MEMO_SIZE = 1000


def record_of(ruleset: Ruleset) -> Record:
    """Flatten a validated Ruleset into the index's compact record (tests and notes are not needed live)."""
    rules = tuple(None if r.trivial else (r.from_, r.to) for r in ruleset.rules)
    cookies = tuple((c.host, c.name) for c in ruleset.securecookies)
    regexes = _regexes(rules, ruleset.exclusions, cookies)
    return (
        ruleset.name,
        ruleset.default_off or "",
        ruleset.platform or "",
        rules,
        ruleset.exclusions,
        cookies,
        ruleset.source,
        ruleset.targets,
        tuple(pack_facts(facts_of(r)) for r in regexes),
    )


def _regexes(
    rules: Sequence[tuple[str, str] | None], exclusions: Sequence[str], cookies: Sequence[tuple[str, str]]
) -> list[str]:
    """A ruleset's regexes in the order their facts are stored."""
    return [r[0] for r in rules if r is not None] + list(exclusions) + [p for pair in cookies for p in pair]


def record_cost(record: Record) -> int:
    """Estimated microseconds compiling every pattern of this record takes (validation bounds it)."""
    _n, _o, _p, rules, exclusions, cookies, _s, _t, packed = record
    facts = [unpack_facts(f) for f in packed]
    n_rules = sum(1 for r in rules if r is not None)
    n_excl = n_rules + len(exclusions)
    return (
        compile_cost([r[0] for r in rules if r is not None], facts[:n_rules])
        + compile_cost(exclusions, facts[n_rules:n_excl], joined=True)
        + compile_cost([p for pair in cookies for p in pair], facts[n_excl:])
    )


class CompiledRule(NamedTuple):
    """A rule ready to apply: `pattern` None means the trivial scheme upgrade."""

    pattern: Pattern | None
    template: tuple[str | int, ...]
    """The replacement: literal text and group numbers."""


class CompiledRuleset(NamedTuple):
    """A ruleset's rules and exclusions, ready to run: prepared on first use and kept for the life of the index.

    A NamedTuple, not a frozen dataclass: 12,000 of them are made in a session's first minutes, and a frozen
    dataclass sets each field through `object.__setattr__`.
    """

    name: str
    source: str
    rules: tuple[CompiledRule, ...]
    exclusions: tuple[Pattern, ...]
    """A match of any excludes the URL (the literal ones come first: they cost no regex)."""
    trivial: bool = False
    """Every rule is the trivial upgrade and there is no exclusion: the common case, decided by the scheme."""
    plain: bool = False
    """No pattern needs a regex engine (all literal), so no budget is spent."""


@dataclass(frozen=True, slots=True)
class Activation:
    """Which rulesets are on: HTTPS Everywhere's defaults plus the user's choices."""

    platforms: frozenset[str] = frozenset()
    """Platforms the user enabled, e.g. "mixedcontent"; rulesets limited to others stay off."""
    overrides: Mapping[str, bool] | None = None
    """Ruleset name -> on/off; wins over default_off and platform (rulesets sharing a name share it)."""

    def is_active(self, name: str, default_off: str, platform: str) -> bool:
        """Decide one ruleset.

        A ruleset with a platform is on only when every platform it names is enabled and it is not also
        default_off: that is what HTTPS Everywhere's wasm engine does (its JS path also turned on
        default_off mixedcontent rulesets, which would enable known-broken rules).
        """
        if self.overrides and name in self.overrides:
            return self.overrides[name]
        if default_off and default_off != USER_RULE:
            return False
        return not platform or set(platform.split()) <= self.platforms


class RecordTable(Sequence[Record]):
    """All rulesets' records, each kept marshalled until it is needed.

    Most rulesets are never consulted in a session, so the index holds them as bytes (cheap to load from the
    cache and small in memory) and keeps names and on/off states apart, which activation needs for all.
    """

    __slots__ = ("blobs", "names", "states")

    def __init__(self, blobs: list[bytes], names: list[str], states: dict[int, tuple[str, str]]) -> None:
        self.blobs = blobs
        self.names = names
        self.states = states
        """id -> (default_off, platform), only for the rulesets that have either."""

    @classmethod
    def from_records(cls, records: Iterable[Record]) -> RecordTable:
        """Pack records."""
        blobs, names, states = [], [], {}
        for i, record in enumerate(records):
            blobs.append(marshal.dumps(record))
            names.append(record[0])
            if record[1] or record[2]:
                states[i] = (record[1], record[2])
        return cls(blobs, names, states)

    def __len__(self) -> int:
        return len(self.blobs)

    @overload
    def __getitem__(self, i: int) -> Record: ...
    @overload
    def __getitem__(self, i: slice) -> list[Record]: ...
    def __getitem__(self, i: int | slice) -> Record | list[Record]:
        if isinstance(i, slice):
            return [marshal.loads(b) for b in self.blobs[i]]
        record: Record = marshal.loads(self.blobs[i])
        return record

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecordTable) and self.blobs == other.blobs

    __hash__ = None  # type: ignore[assignment]


class RuleIndex:
    """Immutable host -> rulesets map with lazily compiled rulesets."""

    __slots__ = (
        "_targets",
        "records",
        "active",
        "_compiled",
        "_cookies",
        "_wildcards",
        "host_rulesets",
        "cookie_memo",
    )

    def __init__(
        self, targets: TargetMap, records: RecordTable, activation: Activation | None = None
    ) -> None:
        self._targets = targets
        self.records = records
        self.active = _activate(records, activation or Activation())
        self._compiled: list[CompiledRuleset | None] = [None] * len(records)
        self._cookies: dict[int, tuple[tuple[Pattern, Pattern], ...]] = {}
        self._wildcards: tuple[frozenset[str], frozenset[str]] | None = None
        self.host_rulesets: dict[str, tuple[CompiledRuleset, ...]] = {}
        """Memo of `rulesets_for`, which fills it (read it first on a hot path: a probe costs less than a call).

        HTTPS Everywhere's ruleCache (rules.js keeps 1000 hosts): a page's requests mostly go to a few hosts.
        """
        # Memo of the securecookie safety probe per host (HTTPS Everywhere keeps one too); bounded by the caller.
        self.cookie_memo: dict[str, bool] = {}

    @classmethod
    def build(cls, rulesets: Iterable[Ruleset], activation: Activation | None = None) -> RuleIndex:
        """Index validated rulesets in load order."""
        records = [record_of(r) for r in rulesets]
        return cls(build_targets(records), RecordTable.from_records(records), activation)

    def with_activation(self, activation: Activation) -> RuleIndex:
        """A new index over the same rulesets with other rulesets switched on or off."""
        return RuleIndex(self._targets, self.records, activation)

    @property
    def targets(self) -> TargetMap:
        """The target string -> ruleset id map (for the compiled cache)."""
        return self._targets

    def __len__(self) -> int:
        return len(self.records)

    def name(self, i: int) -> str:
        """Ruleset `i`'s name."""
        return self.records.names[i]

    def candidates(self, host: str) -> list[int]:
        """Ids of the rulesets that may apply to `host`, active or not, in the reference engine's order."""
        targets = self._targets
        hit = targets.get(host)
        found: list[int] = [] if hit is None else [hit] if isinstance(hit, int) else list(hit)
        if not host or len(host) > _MAX_HOST or ".." in host or "*" in host:
            return found
        last = host.rfind(".")
        if last < 0:
            return found
        # The same keys as lookup_keys(), inlined: this runs for every request.
        hit = targets.get(host[:last] + ".*")
        dot = host.find(".")
        while True:
            if hit is not None:
                for i in (hit,) if isinstance(hit, int) else hit:
                    if i not in found:
                        found.append(i)
            if dot >= last:
                return found
            hit = targets.get("*." + host[dot + 1 :])
            dot = host.find(".", dot + 1)

    def rulesets_for(self, host: str) -> tuple[CompiledRuleset, ...]:
        """The active rulesets that may apply to `host`, in the reference engine's order, ready to run."""
        memo = self.host_rulesets
        found = memo.get(host)
        if found is None:
            ids = self.active_candidates(host)
            found = tuple([self.compiled(i) for i in ids]) if ids else ()
            if len(memo) >= _HOST_MEMO_SIZE:
                memo.clear()  # all at once: evicting one by one from a dict costs more than it keeps
            memo[host] = found
        return found

    def active_candidates(self, host: str) -> list[int]:
        """`candidates(host)` that are active: what a lookup runs (the same keys, for the hot path).

        Of the corpus's 162k targets only about 1,450 are wildcards, so the wildcard keys are first looked for
        in two small sets (`_find_wildcards`): most hosts then cost one probe of the big map.
        """
        targets = self._targets
        hit = targets.get(host)
        found = [] if hit is None else [hit] if isinstance(hit, int) else list(hit)
        last = host.rfind(".")
        if last >= 0 and len(host) <= _MAX_HOST and ".." not in host and "*" not in host:
            right, left = self._wildcards or self._find_wildcards()
            keys = [host[:last] + ".*"] if host[:last] in right else []
            dot = host.find(".")
            while dot < last:
                if host[dot + 1 :] in left:
                    keys.append("*." + host[dot + 1 :])
                dot = host.find(".", dot + 1)
            for key in keys:
                hit = targets[key]
                found.extend((hit,) if isinstance(hit, int) else hit)
        active = self.active
        if len(found) == 1:
            return found if active[found[0]] else []
        return [i for i in dict.fromkeys(found) if active[i]]

    def _find_wildcards(self) -> tuple[frozenset[str], frozenset[str]]:
        """What the wildcard targets leave of a host: `x` of every `x.*`, and of every `*.x`.

        Found by a scan of the targets, once (~5 ms, what one compile on first use may cost too).
        """
        right = frozenset(key[:-2] for key in self._targets if key.endswith(".*"))
        left = frozenset(key[2:] for key in self._targets if key.startswith("*."))
        self._wildcards = (right, left)
        return right, left

    def candidate_keys(self, host: str) -> list[tuple[str, int]]:
        """(matching target, ruleset id) pairs for `host`: exact, then `x.*`, then `*.x` most specific first.

        The host is not matched against patterns: it is turned into lookup keys, each looked up exactly. So
        `*.example.com` covers any number of extra labels but never `example.com`, `www.example.*` covers one
        last label only, and a malformed host (empty, over 255 characters, `..`, `*`) gets no wildcard keys.
        """
        found: list[tuple[str, int]] = []
        seen: set[int] = set()
        for key in lookup_keys(host):
            hit = self._targets.get(key)
            if hit is None:
                continue
            for i in (hit,) if isinstance(hit, int) else hit:
                if i not in seen:
                    seen.add(i)
                    found.append((key, i))
        return found

    def compiled(self, i: int) -> CompiledRuleset:
        """Ruleset `i` ready to run (prepared once; its patterns compile on first use, see `compile_record`)."""
        done = self._compiled[i]
        if done is None:
            done = self._compiled[i] = compile_record(self.records[i])
        return done

    def cookies(self, i: int) -> tuple[tuple[Pattern, Pattern], ...]:
        """Ruleset `i`'s securecookie (host, name) patterns, prepared once (see `compile_cookies`)."""
        done = self._cookies.get(i)
        if done is None:
            done = self._cookies[i] = compile_cookies(self.records[i])
        return done


def _activate(records: RecordTable, activation: Activation) -> bytearray:
    """One byte per ruleset, 1 when it is on; only rulesets with a state or an override need a decision."""
    active = bytearray(b"\x01") * len(records)
    for i, (default_off, platform) in records.states.items():
        active[i] = activation.is_active(records.names[i], default_off, platform)
    if activation.overrides:
        for i, name in enumerate(records.names):
            if name in activation.overrides:
                active[i] = activation.overrides[name]
    return active


def lookup_keys(host: str) -> list[str]:
    """The exact target strings to look up for `host`, in probe order."""
    keys = [host]
    if not host or len(host) > _MAX_HOST or ".." in host or "*" in host:
        return keys
    last = host.rfind(".")
    if last < 0:
        return keys
    keys.append(host[:last] + ".*")
    dot = host.find(".")
    while dot < last:
        keys.append("*." + host[dot + 1 :])
        dot = host.find(".", dot + 1)
    return keys


def build_targets(records: list[Record]) -> TargetMap:
    """Map every target string to the ids of the rulesets that list it, in load order."""
    targets: TargetMap = {}
    for i, record in enumerate(records):
        for target in record[7]:
            have = targets.get(target)
            if have is None:
                targets[target] = i
            elif isinstance(have, int):
                if have != i:
                    targets[target] = (have, i)
            elif i not in have:
                targets[target] = (*have, i)
    return targets


_TRIVIAL = CompiledRule(None, ("https:",))


def compile_record(record: Record) -> CompiledRuleset:
    """Make one ruleset's patterns ready to run. Records come from validated rulesets, so this does not fail.

    Nothing is compiled yet (see `pattern.prepare_js`): literal patterns become string operations, the
    others compile when a text first passes their literal prefix, charged to that lookup's budget.
    """
    name, _off, _platform, rules, exclusions, _cookies, source, _targets, packed = record
    if not exclusions and all(r is None for r in rules):
        return CompiledRuleset(name, source, (_TRIVIAL,) * len(rules), (), trivial=True, plain=True)
    facts = iter(packed)
    compiled_rules = []
    for rule in rules:
        if rule is None:
            compiled_rules.append(_TRIVIAL)
            continue
        pattern = prepare_js(rule[0], next(facts))
        compiled_rules.append(CompiledRule(pattern, jsregex.replacement_parts(rule[1], pattern.groups)))
    # HTTPS Everywhere joins a ruleset's exclusions into one alternation and searches anywhere in the URL:
    # any one matching excludes. The literal ones are searched first, all at once; the others one by one,
    # so that only those a URL gets past the literal prefix of are ever compiled.
    prepared = [prepare_js(e, next(facts), capture=False) for e in exclusions]
    literal = [p for p in prepared if isinstance(p, LiteralPattern)]
    others = tuple(p for p in prepared if not isinstance(p, LiteralPattern))
    searched = ((AnyLiteral(literal),) if literal else ()) + others
    plain = not others and all(
        r.pattern is None or isinstance(r.pattern, LiteralPattern) for r in compiled_rules
    )
    return CompiledRuleset(name, source, tuple(compiled_rules), searched, plain=plain)


def compile_cookies(record: Record) -> tuple[tuple[Pattern, Pattern], ...]:
    """One ruleset's securecookie rules ready to run, (host, name) pattern pairs, as `compile_record` does.

    Apart from the rules: only cookies need them, and a third of the rulesets have some.
    """
    _n, _o, _p, rules, exclusions, cookies, *_rest, packed = record
    facts = iter(packed[sum(1 for r in rules if r is not None) + len(exclusions) :])
    return tuple(
        (prepare_js(h, next(facts), capture=False), prepare_js(n, next(facts), capture=False))
        for h, n in cookies
    )
