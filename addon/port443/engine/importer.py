"""Import HTTPS Everywhere XML rulesets into port443's model and write them as YAML files (`rules import`).

`parse_xml` is pure (bytes in, model out) and validates through `ruleset.parse_ruleset`, so what it accepts
loads. `import_rules` reads a directory, one file or a tar archive and writes one YAML file per ruleset; a bad
file is reported and skipped, never fatal for the rest. One module, past the usual size, because the XML
quirks it absorbs (comments kept as notes, odd `$` replacements respelt) only make sense next to each other.
"""

from __future__ import annotations

import lzma
import os
import re
import tarfile
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from textwrap import dedent

from port443.engine import jsregex
from port443.engine.ruleset import Rule, Ruleset, SecureCookie, parse_ruleset
from port443.engine.yaml_out import format_ruleset
from port443.errors import Problem, RulesetError

#: Called as `progress(done, total)`: once with done=0 before the first file, then after each file.
Progress = Callable[[int, int], None]

# The attributes port443 carries over from each element. HTTPS Everywhere's schema (utils/relaxng.xml) also
# allows `match_rule` on <ruleset> and `downgrade` on https-to-http rules; neither is used by the 2021 corpus.
_ATTRIBUTES = {
    "ruleset": ("name", "default_off", "platform"),
    "target": ("host",),
    "rule": ("from", "to"),
    "exclusion": ("pattern",),
    "securecookie": ("host", "name"),
    "test": ("url",),
}
# Our YAML list for each XML element, and the attribute that a plain list item stands for.
_ELEMENT_OF = {
    "targets": "target",
    "rules": "rule",
    "exclusions": "exclusion",
    "securecookies": "securecookie",
    "tests": "test",
}
_ITEM_ATTRIBUTE = {"target": "host", "exclusion": "pattern", "test": "url"}
_FIELD = re.compile(r"(\w+)(?:\[(\d+)\])?(?:\.(\w+))?")
_POSITION_SUFFIX = re.compile(r": line \d+, column \d+$")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2")
# Decompression failures surface while reading a member, and not all of them are OSError.
_READ_ERRORS = (OSError, EOFError, tarfile.TarError, lzma.LZMAError, zlib.error)

_Element = tuple[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Imported:
    """One converted ruleset, its YAML text, and what the conversion ignored or changed (for review)."""

    ruleset: Ruleset
    text: str
    warnings: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What `import_rules` did: XML files seen, YAML files written, one error per skipped file, all warnings."""

    files: int
    written: int
    errors: tuple[RulesetError, ...]
    warnings: tuple[Problem, ...]

    def summary(self) -> str:
        """One line for a person, such as `imported 23764 of 23764 XML rulesets (0 errors, 22 warnings)`."""
        counts = f"{len(self.errors)} errors, {len(self.warnings)} warnings"
        return f"imported {self.written} of {self.files} XML rulesets ({counts})"


class _Document:
    """An `ET.XMLParser` target that keeps the elements and every comment, also those outside the root.

    `ET.TreeBuilder(insert_comments=True)` drops comments before and after the root element, and that is
    where most rulesets say which hosts were left out and why.
    """

    def __init__(self) -> None:
        self.elements: list[_Element] = []  # the root, then its direct children
        self.comments: list[str] = []
        self.ignored: list[str] = []
        self._depth = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self._depth += 1
        if self._depth <= 2:
            self.elements.append((tag, attrib))
        else:
            self.ignored.append(f"element <{tag}> nested in <{self.elements[-1][0]}> ignored")

    def end(self, tag: str) -> None:
        self._depth -= 1

    def data(self, text: str) -> None:
        if text.strip():
            self.ignored.append(f"text {text.strip()!r} ignored")

    def comment(self, text: str) -> None:
        self.comments.append(text)

    def close(self) -> None:
        pass


@dataclass
class _Log:
    """Problems (which reject the file) and warnings (which do not) found while converting one file."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, where: str, message: str) -> None:
        self.problems.append(Problem(self.source, None, where, message))

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(Problem(self.source, None, where, message))


def parse_xml(data: bytes, source: str) -> Imported:
    """Convert one HTTPS Everywhere XML ruleset, keeping element order, comments (as notes) and quirks.

    A `to` whose `$N` JavaScript reads in a non-obvious way is respelt as our validator wants it, with the
    same meaning (`jsregex.normalize_replacement`); each such change is reported as a warning.

    Raises:
        RulesetError: for malformed XML (with its line), a missing attribute, or a ruleset that is invalid.
    """
    document = _read(data, source)
    log = _Log(source)
    for message in document.ignored:
        log.warn("", message)
    ruleset = _build(document, log)
    text = format_ruleset(ruleset)
    try:
        checked = parse_ruleset(text, source)
    except RulesetError as e:
        raise RulesetError([_xml_problem(p) for p in e.problems]) from e
    if checked != ruleset:  # pragma: no cover - an emit bug; the corpus round-trip test guards against it
        raise RulesetError([Problem(source, None, "", "its YAML form does not read back the same")])
    return Imported(ruleset, text, tuple(log.warnings))


def _read(data: bytes, source: str) -> _Document:
    document = _Document()
    error = _parse(document, data)
    if error is not None:
        reason = _POSITION_SUFFIX.sub("", str(error))  # the position goes where Problem puts lines
        raise RulesetError([Problem(source, error.position[0], "", f"malformed XML ({reason})")]) from error
    root = document.elements[0][0]
    if root != "ruleset":
        raise RulesetError([Problem(source, None, "", f"the root element must be <ruleset>, not <{root}>")])
    return document


def _parse(document: _Document, data: bytes) -> ET.ParseError | None:
    """Feed `data` to an XML parser that reports to `document`; return the parse error, if any.

    The parser is deleted before anything leaves this frame: an exception's traceback keeps the frame's
    locals alive, and Python 3.12.0 and 3.12.1 crash at exit when an XMLParser is still alive then
    (CPython gh-111784, fixed in 3.12.2).
    """
    parser = ET.XMLParser(target=document)
    try:
        parser.feed(data)
        parser.close()
    except ET.ParseError as e:
        return e
    finally:
        del parser
    return None


def _build(document: _Document, log: _Log) -> Ruleset:
    """Sort the elements by kind; a missing attribute is an error, an unknown element or attribute a warning."""
    found: dict[str, list[dict[str, str]]] = {tag: [] for tag in _ATTRIBUTES}
    seen: Counter[str] = Counter()
    for tag, attrib in document.elements:
        seen[tag] += 1
        where = "ruleset" if tag == "ruleset" and seen[tag] == 1 else f"{tag}[{seen[tag]}]"
        if tag not in _ATTRIBUTES or (tag == "ruleset" and found[tag]):
            log.warn(where, f"unknown element <{tag}> ignored")
            continue
        _check_attributes(tag, attrib, where, log)
        found[tag].append(attrib)
    for tag in ("target", "rule"):
        if not found[tag]:
            log.error("", f"a ruleset needs at least one <{tag}>")
    if log.problems:
        raise RulesetError(log.problems)
    return _ruleset(found, _notes(document.comments), log)


def _check_attributes(tag: str, attrib: dict[str, str], where: str, log: _Log) -> None:
    for name, value in attrib.items():
        if name not in _ATTRIBUTES[tag]:
            log.warn(f"{where}/@{name}", f"unknown attribute ignored: {name}={value!r}")
        elif value != value.strip():
            log.warn(f"{where}/@{name}", f"leading or trailing space kept: {value!r}")
        elif not value and name in ("default_off", "platform"):
            log.warn(f"{where}/@{name}", "empty, so left out (HTTPS Everywhere ignores it too)")
    for name in _ATTRIBUTES[tag] if tag != "ruleset" else ("name",):
        if name not in attrib:
            log.error(where, f"missing attribute {name!r}")


def _ruleset(found: dict[str, list[dict[str, str]]], notes: str | None, log: _Log) -> Ruleset:
    attrib = found["ruleset"][0]
    return Ruleset(
        name=attrib["name"],
        targets=tuple(a["host"] for a in found["target"]),
        rules=tuple(_rule(a, i, log) for i, a in enumerate(found["rule"], 1)),
        exclusions=tuple(a["pattern"] for a in found["exclusion"]),
        securecookies=tuple(SecureCookie(a["host"], a["name"]) for a in found["securecookie"]),
        tests=tuple(a["url"] for a in found["test"]),
        # An empty default_off or platform counts as absent in HTTPS Everywhere (rules.js tests for truth).
        default_off=attrib.get("default_off") or None,
        platform=attrib.get("platform") or None,
        notes=notes,
        source=log.source,
    )


def _rule(attrib: dict[str, str], index: int, log: _Log) -> Rule:
    rule = Rule(attrib["from"], attrib["to"])
    if rule.trivial or "$" not in rule.to:
        return rule
    try:
        groups = jsregex.compile_pattern(rule.from_).groups
    except jsregex.TranslateError:
        return rule  # parse_ruleset reports the bad regex
    to = jsregex.normalize_replacement(rule.to, groups)
    if to != rule.to:
        log.warn(
            f"rule[{index}]/@to", f"{rule.to!r} written as {to!r}, the same in JavaScript ({groups} group(s))"
        )
    return Rule(rule.from_, to)


def _notes(comments: list[str]) -> str | None:
    """Join the comments, each trimmed and dedented, with a blank line between; None when there are none."""
    texts = [text for text in map(_tidy_comment, comments) if text]
    return "\n\n".join(texts) + "\n" if texts else None


def _tidy_comment(text: str) -> str:
    # Text on the `<!--` line has lost its indentation, so only the lines after it are dedented (together).
    # Tabs become spaces at 8 columns, the width that the corpus's aligned columns assume (Cato-Institute.xml).
    lines = [line.rstrip() for line in text.expandtabs().split("\n")]
    return (lines[0].strip() + "\n" + dedent("\n".join(lines[1:]))).strip("\n")


def _xml_problem(problem: Problem) -> Problem:
    """Restate a problem of the YAML form in the XML's terms: `rules[2].to` becomes `rule[3]/@to`."""
    m = _FIELD.fullmatch(problem.field)
    if not m:
        return Problem(problem.source, None, problem.field, problem.message)
    key, index, attribute = m.groups()
    if key not in _ELEMENT_OF:
        return Problem(problem.source, None, f"ruleset/@{key}", problem.message)
    tag = _ELEMENT_OF[key]
    element = f"{tag}[{int(index) + 1}]" if index is not None else tag
    attribute = attribute or _ITEM_ATTRIBUTE.get(tag)
    return Problem(problem.source, None, f"{element}/@{attribute}" if attribute else element, problem.message)


# --- reading sources and writing files ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Input:
    """One XML file to convert: its name for messages, its file name stem, and how to read its bytes."""

    name: str
    stem: str
    read: Callable[[], bytes]


def import_rules(
    source: str | os.PathLike[str], dest: str | os.PathLike[str], *, progress: Progress | None = None
) -> ImportReport:
    """Convert every `*.xml` ruleset under `source`, writing `<dest>/<stem>.yaml` for each valid one.

    `source` is a directory (searched recursively), a single XML file, or a tar archive in any compression
    `tarfile` reads; archive members are read in place, never extracted. The upstream file name stem is
    kept because rulesets load in file-name order, and so keep HTTPS Everywhere's order. Existing files in
    `dest` with the same names are overwritten; others are left alone.

    Raises:
        RulesetError: when `source` cannot be read at all or `dest` cannot be created. Problems with single
            files do not raise; they are in the report.
    """
    out = Path(dest)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RulesetError([Problem(os.fspath(out), None, "", f"cannot create directory ({e})")]) from e
    written = 0
    errors: list[RulesetError] = []
    warnings: list[Problem] = []
    with ExitStack() as stack:
        inputs = _inputs(Path(source), stack)
        if progress:
            progress(0, len(inputs))
        claimed: dict[str, tuple[str, str]] = {}
        for done, item in enumerate(inputs, 1):
            try:
                imported = _import_one(item, out, claimed)
                written += 1
                warnings.extend(imported.warnings)
            except RulesetError as e:
                errors.append(e)
            if progress:
                progress(done, len(inputs))
    return ImportReport(len(inputs), written, tuple(errors), tuple(warnings))


def _import_one(item: _Input, out: Path, claimed: dict[str, tuple[str, str]]) -> Imported:
    """Convert and write one file; `claimed` maps each name written so far, case-folded, to (name, source)."""
    try:
        data = item.read()
    except _READ_ERRORS as e:
        raise RulesetError([Problem(item.name, None, "", f"cannot read ({e})")]) from e
    imported = parse_xml(data, item.name)
    target = out / f"{item.stem}.yaml"
    # Names that differ only in case would overwrite each other on macOS and Windows file systems.
    first_name, first_source = claimed.setdefault(target.name.casefold(), (target.name, item.name))
    if first_source != item.name:
        message = f"not written: {target.name} would overwrite {first_name} (from {first_source})"
        raise RulesetError([Problem(item.name, None, "", message)])
    try:
        target.write_text(imported.text, encoding="utf-8", newline="\n")
    except OSError as e:
        raise RulesetError([Problem(os.fspath(target), None, "", f"cannot write ({e})")]) from e
    return imported


def _inputs(source: Path, stack: ExitStack) -> list[_Input]:
    """List the XML files of a directory, a file or a tar archive; `stack` keeps an archive open for reading.

    Raises:
        RulesetError: when `source` does not exist or is an unreadable archive.
    """
    if not source.exists():
        raise RulesetError([Problem(os.fspath(source), None, "", "no such file or directory")])
    try:
        if source.is_dir():
            files = sorted(source.rglob("*.xml"), key=lambda p: p.relative_to(source).as_posix())
            return [_Input(os.fspath(p), p.stem, p.read_bytes) for p in files if p.is_file()]
        if source.name.endswith(_ARCHIVE_SUFFIXES) or tarfile.is_tarfile(source):
            archive = stack.enter_context(tarfile.open(source, "r:*"))
            return list(_members(archive, os.fspath(source)))
    except _READ_ERRORS as e:
        raise RulesetError([Problem(os.fspath(source), None, "", f"cannot read ({e})")]) from e
    return [_Input(os.fspath(source), source.stem, source.read_bytes)]


def _members(archive: tarfile.TarFile, name: str) -> Iterator[_Input]:
    # Archive order, not sorted: a compressed archive can only be read forward without starting over.
    for member in archive.getmembers():
        stem = PurePosixPath(member.name).stem
        if member.isfile() and member.name.endswith(".xml") and not stem.startswith("."):
            yield _Input(f"{name}/{member.name}", stem, partial(_extract, archive, member))


def _extract(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    reader = archive.extractfile(member)
    if reader is None:  # pragma: no cover - only regular files are listed
        raise OSError(f"{member.name} is not a regular file")
    with reader:
        return reader.read()
