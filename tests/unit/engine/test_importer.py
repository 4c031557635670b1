"""HTTPS Everywhere XML import: golden files, errors with their locations, sources, and the real corpus.

The real corpus is a sample of its XML files (tests/data/importer/corpus/, chosen for its oddities) checked
against the shipped YAML that `port443 rules import` made of the whole corpus (rules/https-everywhere/).
"""

from __future__ import annotations

import shutil
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

import pytest

from port443.engine import jsregex
from port443.engine.importer import import_rules, parse_xml
from port443.engine.index import Activation
from port443.engine.ruleset import load_ruleset
from port443.engine.shipped import shipped_rules_path
from port443.errors import RulesetError

DATA = Path(__file__).resolve().parents[2] / "data" / "importer"
GOLDEN = sorted(p.stem for p in DATA.glob("*.yaml"))
CORPUS = DATA / "corpus"


@pytest.fixture
def xml_dir(tmp_path: Path) -> Path:
    """A copy of the XML inputs only, so the golden YAML beside them is never read as input."""
    folder = tmp_path / "xml"
    folder.mkdir()
    for path in DATA.glob("*.xml"):
        shutil.copy(path, folder)
    return folder


def ruleset_xml(body: str, attributes: str = 'name="Test"') -> bytes:
    return f"<ruleset {attributes}>{body}</ruleset>".encode()


MINIMAL = '<target host="a.example"/><rule from="^http:" to="https:"/>'


# --- golden files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", GOLDEN)
def test_import_matches_golden(xml_dir: Path, tmp_path: Path, stem: str) -> None:
    import_rules(xml_dir, tmp_path / "out")
    written = (tmp_path / "out" / f"{stem}.yaml").read_text(encoding="utf-8")
    assert written == (DATA / f"{stem}.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("stem", GOLDEN)
def test_golden_files_load(stem: str) -> None:
    assert load_ruleset(DATA / f"{stem}.yaml").name


def test_import_directory_reports_bad_file_and_keeps_going(xml_dir: Path, tmp_path: Path) -> None:
    report = import_rules(xml_dir, tmp_path / "out")
    assert (report.files, report.written) == (len(GOLDEN) + 1, len(GOLDEN))
    assert [str(e) for e in report.errors] == [
        f"{xml_dir / 'Malformed.xml'}:4: malformed XML (mismatched tag)"
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{stem}.yaml" for stem in GOLDEN]
    assert report.summary() == "imported 3 of 4 XML rulesets (1 errors, 12 warnings)"


@pytest.mark.parametrize(
    ("stem", "field", "message"),
    [
        (
            "Dollar",
            "rule[1]/@to",
            "'https://$12dialog.dollar.example/$2' written as 'https://$012dialog.dollar.example/$2'",
        ),
        (
            "Dollar",
            "rule[2]/@to",
            "'https://www.dollar.example/$2/' written as 'https://www.dollar.example/$$2/'",
        ),
        (
            "Dollar",
            "rule[3]/@to",
            "'https://www.$dollar.example/' written as 'https://www.$$dollar.example/'",
        ),
        ("Quirks", "rule[1]/@downgrade", "unknown attribute ignored: downgrade='1'"),
        ("Quirks", "ruleset/@comment", "unknown attribute ignored: comment='not in the schema'"),
        ("Quirks", "ruleset/@platform", "empty, so left out"),
        ("Quirks", "ruleset/@name", "leading or trailing space kept: 'yes '"),
        ("Quirks", "redirect[1]", "unknown element <redirect> ignored"),
        ("Quirks", "", "element <target> nested in <redirect> ignored"),
        ("Quirks", "", "text 'stray text' ignored"),
    ],
)
def test_warnings(stem: str, field: str, message: str) -> None:
    warnings = parse_xml((DATA / f"{stem}.xml").read_bytes(), f"{stem}.xml").warnings
    assert any(w.field == field and message in w.message for w in warnings), warnings


def test_clean_file_has_no_warnings() -> None:
    assert parse_xml((DATA / "Example.com.xml").read_bytes(), "Example.com.xml").warnings == ()


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"<ruleset name='x'>\n<target host='a'>\n</ruleset>",
            r"^x\.xml:3: malformed XML \(mismatched tag\)$",
        ),
        (b"", r"^x\.xml:1: malformed XML \(no element found\)$"),
        (b"<rules/>", r"^x\.xml: the root element must be <ruleset>, not <rules>$"),
        (ruleset_xml(MINIMAL, ""), r"^x\.xml: ruleset: missing attribute 'name'$"),
        (
            ruleset_xml('<target host="a.example"/><rule from="^http:"/>'),
            r"^x\.xml: rule\[1\]: missing attribute 'to'$",
        ),
        (
            ruleset_xml('<rule from="^http:" to="https:"/>'),
            r"^x\.xml: a ruleset needs at least one <target>$",
        ),
        (ruleset_xml('<target host="a.example"/>'), r"^x\.xml: a ruleset needs at least one <rule>$"),
        (
            ruleset_xml(MINIMAL + '<target host="B.example"/>'),
            r"^x\.xml: target\[2\]/@host: targets must be lower-case",
        ),
        (
            ruleset_xml('<target host="a.example"/><rule from="(" to="https:"/>'),
            r"^x\.xml: rule\[1\]/@from: invalid regex '\('",
        ),
        (
            ruleset_xml('<target host="a.example"/><rule from="^https:" to="http:"/>'),
            r"^x\.xml: rule\[1\]/@to: must start with 'https:'",
        ),
        (
            ruleset_xml(MINIMAL + '<exclusion pattern="[a"/>'),
            r"^x\.xml: exclusion\[1\]/@pattern: invalid regex",
        ),
        (
            ruleset_xml(MINIMAL + '<securecookie host=".+" name="("/>'),
            r"^x\.xml: securecookie\[1\]/@name: invalid regex",
        ),
        (
            ruleset_xml(MINIMAL + '<test url="ftp://a.example/"/>'),
            r"^x\.xml: test\[1\]/@url: a test is an http:// URL",
        ),
        (ruleset_xml(MINIMAL, 'name=" "'), r"^x\.xml: ruleset/@name: must not be empty$"),
    ],
)
def test_errors(data: bytes, expected: str) -> None:
    with pytest.raises(RulesetError, match=expected):
        parse_xml(data, "x.xml")


def test_every_problem_of_a_file_is_reported() -> None:
    data = ruleset_xml('<target/><rule from="^http:"/><securecookie host=".+"/>')
    with pytest.raises(RulesetError) as caught:
        parse_xml(data, "x.xml")
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("target[1]", "missing attribute 'host'"),
        ("rule[1]", "missing attribute 'to'"),
        ("securecookie[1]", "missing attribute 'name'"),
    ]


# --- model details ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("comments", "notes"),
    [
        ([], None),
        (["<!---->", "<!--   -->"], None),
        (["<!-- one line -->"], "one line\n"),
        (["<!-- a -->", "<!-- b -->"], "a\n\nb\n"),
        (["<!--\n\tlist:\n\t\t- x\n-->"], "list:\n        - x\n"),
        (["<!--\theading\n\t\t- x\n\t\t- y\n\t-->"], "heading\n- x\n- y\n"),
        (["<!--\n  a\n\n\n  b   \n-->"], "a\n\n\nb\n"),
        (["<!--\n \tmixed\n\t\tindent\n-->"], "mixed\n        indent\n"),
    ],
)
def test_comments_become_notes(comments: list[str], notes: str | None) -> None:
    before, inside = comments[:1], comments[1:]
    data = "".join(before) + f'<ruleset name="x">{"".join(inside)}{MINIMAL}</ruleset>'
    assert parse_xml(data.encode(), "x.xml").ruleset.notes == notes


def test_comments_keep_their_document_order() -> None:
    data = f'<!-- 1 --><ruleset name="x"><!-- 2 -->{MINIMAL}<!-- 3 --></ruleset><!-- 4 -->'
    assert parse_xml(data.encode(), "x.xml").ruleset.notes == "1\n\n2\n\n3\n\n4\n"


def test_empty_default_off_means_active() -> None:
    ruleset = parse_xml(ruleset_xml(MINIMAL, 'name="x" default_off=""'), "x.xml").ruleset
    assert ruleset.default_off is None and Activation().is_active(ruleset.name, "", ruleset.platform or "")


# --- sources ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["w:gz", "w:xz"])
def test_archive_gives_the_same_files_as_a_folder(
    xml_dir: Path, tmp_path: Path, mode: Literal["w:gz", "w:xz"]
) -> None:
    archive = tmp_path / f"rules.tar.{mode[2:]}"
    with tarfile.open(archive, mode) as tar:
        tar.add(xml_dir, arcname="rules")
    report = import_rules(archive, tmp_path / "from-tar")
    import_rules(xml_dir, tmp_path / "from-dir")
    assert (report.files, report.written) == (len(GOLDEN) + 1, len(GOLDEN))
    assert str(report.errors[0]).startswith(f"{archive}/rules/Malformed.xml:4: malformed XML")
    for stem in GOLDEN:
        name = f"{stem}.yaml"
        assert (tmp_path / "from-tar" / name).read_bytes() == (tmp_path / "from-dir" / name).read_bytes()


def test_single_file(tmp_path: Path) -> None:
    report = import_rules(DATA / "Dollar.xml", tmp_path)
    assert (report.files, report.written, report.errors) == (1, 1, ())
    assert (tmp_path / "Dollar.yaml").read_text(encoding="utf-8") == (DATA / "Dollar.yaml").read_text(
        encoding="utf-8"
    )


def test_progress_is_reported_before_and_after_each_file(xml_dir: Path, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    import_rules(xml_dir, tmp_path / "out", progress=lambda done, total: calls.append((done, total)))
    total = len(GOLDEN) + 1
    assert calls == [(done, total) for done in range(total + 1)]


def test_missing_source_raises(tmp_path: Path) -> None:
    with pytest.raises(RulesetError, match="nowhere: no such file or directory"):
        import_rules(tmp_path / "nowhere", tmp_path / "out")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_broken_archive_raises(xml_dir: Path, tmp_path: Path, damage: str) -> None:
    archive = tmp_path / "rules.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(xml_dir, arcname="rules")
    data = archive.read_bytes()
    archive.write_bytes(b"not an archive" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(RulesetError, match=r"rules\.tar\.gz: cannot read \("):
        import_rules(archive, tmp_path / "out")


def test_same_name_twice_is_an_error_not_an_overwrite(tmp_path: Path) -> None:
    for folder, name in (("a", "Same.xml"), ("b", "same.xml")):
        (tmp_path / "in" / folder).mkdir(parents=True)
        (tmp_path / "in" / folder / name).write_bytes(ruleset_xml(MINIMAL, f'name="{folder}"'))
    report = import_rules(tmp_path / "in", tmp_path / "out")
    assert report.written == 1
    assert str(report.errors[0]).endswith(
        f"same.yaml would overwrite Same.yaml (from {tmp_path / 'in/a/Same.xml'})"
    )
    assert load_ruleset(tmp_path / "out" / "Same.yaml").name == "a"


# --- the real corpus ----------------------------------------------------------------------------------------


def test_corpus_sample_keeps_every_element(corpus_sample: dict[str, bytes]) -> None:
    """Compare the model with a plain ElementTree reading of the same XML, for a spread of real files."""
    for name, data in corpus_sample.items():
        ruleset = parse_xml(data, name).ruleset
        root = ET.fromstring(data)
        attributes = {
            tag: [child.attrib for child in root.iter(tag)]
            for tag in ("target", "rule", "exclusion", "securecookie", "test")
        }
        assert ruleset.name == root.get("name")
        assert (ruleset.default_off, ruleset.platform) == (root.get("default_off"), root.get("platform"))
        assert list(ruleset.targets) == [a["host"] for a in attributes["target"]]
        assert [(r.from_, r.to) for r in ruleset.rules] == [
            (a["from"], normalized(a["from"], a["to"])) for a in attributes["rule"]
        ]
        assert list(ruleset.exclusions) == [a["pattern"] for a in attributes["exclusion"]]
        assert [(c.host, c.name) for c in ruleset.securecookies] == [
            (a["host"], a["name"]) for a in attributes["securecookie"]
        ]
        assert list(ruleset.tests) == [a["url"] for a in attributes["test"]]


def normalized(from_: str, to: str) -> str:
    return (
        to
        if (from_, to) == ("^http:", "https:")
        else jsregex.normalize_replacement(to, jsregex.compile_pattern(from_).groups)
    )


@pytest.fixture(scope="module")
def corpus_sample() -> dict[str, bytes]:
    return read_corpus_sample()


#: Files with the corpus's oddities: `$` references respelt, comments before and after the root, spaces.
ODD_FILES = {
    "2Dialog.com.xml",
    "DEMO.xml",
    "University_of_Mainz.xml",
    "Cato-Institute.xml",
    "Tesco.xml",
    "Constant-Contact.xml",
}


def read_corpus_sample() -> dict[str, bytes]:
    """The sample of real rulesets (a spread over the corpus, plus the odd ones), by file name."""
    return {path.name: path.read_bytes() for path in sorted(CORPUS.glob("*.xml"))}


def test_corpus_sample_holds_the_odd_files(corpus_sample: dict[str, bytes]) -> None:
    assert ODD_FILES <= corpus_sample.keys()
    assert len(corpus_sample) >= 40


def test_corpus_sample_imports_to_the_shipped_files(tmp_path: Path) -> None:
    """The shipped YAML is this importer's output for the whole corpus: the sample gives those files back."""
    report = import_rules(CORPUS, tmp_path)
    assert (report.errors, report.written) == ((), report.files)
    written = list(tmp_path.iterdir())
    assert sorted(p.stem for p in written) == sorted(Path(name).stem for name in read_corpus_sample())
    shipped = shipped_rules_path()
    for path in written:
        assert path.read_bytes() == (shipped / path.name).read_bytes(), path.name
