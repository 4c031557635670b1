"""Reading a ruleset file's YAML: safe, all text, no anchors, and every problem placed on its line.

Its own module so that only parsing loads PyYAML: a start from the compiled cache or the shipped seed never
does (ruleset.py imports this when it first parses a file).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml

from port443.errors import Problem, RulesetError

try:  # the C loader is several times faster on the 23k-file corpus
    _Base: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader

FieldPath = tuple[str | int, ...]
"""Where in a file's data a problem is: ("rules", 2, "from")."""


class _Loader(_Base):  # type: ignore[misc]
    """Safe loading where every plain scalar is text, except an empty value (null).

    Every field of a ruleset is text, and YAML 1.1 would silently turn a ruleset named `Off` or `No` into a
    boolean, or `1.10` into a number.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }


def load(text: str, source: str) -> Any:
    """The data of one file's text.

    Raises:
        RulesetError: for invalid YAML or an anchor, with the line in `source`.
    """
    try:
        _refuse_anchors(text, source)
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(e, "problem", None) or str(e)
        if "mapping values are not allowed" in reason:
            reason += "; quote a value that contains ': ' or ends with ':', such as \"^http:\""
        raise RulesetError([Problem(source, line, "", f"invalid YAML ({reason})")]) from e


def locate(text: str, source: str, found: Sequence[tuple[FieldPath, str]]) -> list[Problem]:
    """Problems found in the data of `text`, each with the line its field is on, in line order."""
    lines = _line_finder(text)
    located = [Problem(source, lines(path), field_name(path), msg) for path, msg in found]
    return sorted(located, key=lambda p: p.line or 0)


def field_name(path: Sequence[str | int]) -> str:
    """Render ('rules', 2, 'from') as 'rules[2].from'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _refuse_anchors(text: str, source: str) -> None:
    """Refuse YAML anchors and aliases before anything expands them (a 450-byte file can stand for gigabytes).

    Raises:
        RulesetError: at the first anchor or alias, with its line.
    """
    if "&" not in text:
        return  # no anchor, so no alias can resolve either (an unknown alias is a YAML error)
    for event in yaml.parse(text, Loader=_Loader):
        name = getattr(event, "anchor", None)
        if name is not None:
            kind = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            shown = name if len(name) <= 100 else name[:97] + "..."
            why = "YAML anchors and aliases are not allowed in rulesets (they have no use there, and a few bytes of them can expand to gigabytes)"
            raise RulesetError([Problem(source, line, "", f"{kind}{shown}: {why}")])


def _line_finder(text: str) -> Callable[[Sequence[str | int]], int | None]:
    """Path -> 1-based line, from PyYAML's node marks. Only used once a file is known to be bad."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:  # pragma: no cover - the text already parsed once
        root = None

    def line_of(path: Sequence[str | int]) -> int | None:
        node = root
        if node is None:
            return None
        best: int = node.start_mark.line + 1
        for part in path:
            node = _child(node, part)
            if node is None:
                break
            best = node.start_mark.line + 1
        return best

    return line_of


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                # A bad key is reported where the key is; a bad value where the value starts.
                found: yaml.Node = (
                    value if value.start_mark.line == key.start_mark.line or value.value else key
                )
                return found
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        child: yaml.Node = node.value[part]
        return child
    return None
