"""RuleIndex: host -> candidate rulesets, exactly as HTTPS Everywhere's `potentiallyApplicableRulesets`.

The only module that knows the storage layout. The index is immutable: a reload builds a new one and swaps a
reference. It is kept compact (plain tuples that marshal quickly into the compiled cache) and compiles a
ruleset's regexes only when one of its hosts is first seen, as HTTPS Everywhere did to save start-up time.
That compilation is bounded: validation caps what one ruleset costs, and a lookup compiles at most
LOOKUP_COMPILE_COST of rulesets (the first always), so many rulesets on one host are compiled over several
lookups rather than in one long stall of the event loop.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, overload

from port443.engine import jsregex
from port443.engine.pattern import (
    LOOKUP_COMPILE_COST,
    Budget,
    Facts,
    Pattern,
    Undecided,
    compile_any,
    compile_cost,
    compile_js,
    facts_of,
    pack_facts,
    unpack_facts,
)
from port443.engine.ruleset import USER_RULE, Ruleset

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
    """Estimated microseconds `compile_record` takes for this record."""
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


@dataclass(frozen=True, slots=True)
class CompiledRuleset:
    """A ruleset's regexes, compiled on first use and kept for the life of the index."""

    name: str
    source: str
    rules: tuple[CompiledRule, ...]
    exclusions: tuple[Pattern, ...]
    """Searched together: a match of any excludes the URL (joined: anchored, unanchored, backtracking ones)."""
    cookies: tuple[tuple[Pattern, Pattern], ...]


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

    __slots__ = ("_targets", "records", "active", "_compiled", "cookie_memo")

    def __init__(
        self, targets: TargetMap, records: RecordTable, activation: Activation | None = None
    ) -> None:
        self._targets = targets
        self.records = records
        self.active = _activate(records, activation or Activation())
        self._compiled: list[CompiledRuleset | None] = [None] * len(records)
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

    def compiled(self, i: int, budget: Budget | None = None) -> CompiledRuleset:
        """Ruleset `i` with its regexes compiled (once).

        Raises:
            Undecided: when `budget` has already paid for compiling other rulesets and cannot pay for this one.
        """
        done = self._compiled[i]
        if done is None:
            record = self.records[i]
            if budget is not None:
                cost = record_cost(record)
                if budget.compile < LOOKUP_COMPILE_COST and cost > budget.compile:
                    raise Undecided(too_long=False)
                budget.compile -= cost
            done = self._compiled[i] = compile_record(record)
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


def compile_record(record: Record) -> CompiledRuleset:
    """Compile one ruleset's regexes. Records come from validated rulesets, so this does not fail."""
    name, _off, _platform, rules, exclusions, cookies, source, _targets, packed = record
    facts = iter([unpack_facts(f) for f in packed])
    compiled_rules = []
    for rule in rules:
        if rule is None:
            compiled_rules.append(CompiledRule(None, ("https:",)))
            continue
        pattern = compile_js(rule[0], next(facts))
        compiled_rules.append(CompiledRule(pattern, jsregex.replacement_parts(rule[1], pattern.groups)))
    # HTTPS Everywhere joins a ruleset's exclusions into one alternation and searches anywhere in the URL.
    excluded: list[Facts] = [next(facts) for _ in exclusions]
    compiled_exclusions = tuple(compile_any(exclusions, excluded)) if exclusions else ()
    compiled_cookies = tuple(
        (compile_js(h, next(facts), capture=False), compile_js(n, next(facts), capture=False))
        for h, n in cookies
    )
    return CompiledRuleset(name, source, tuple(compiled_rules), compiled_exclusions, compiled_cookies)
