"""The engine benchmark's baseline, PyPI https-everywhere 0.2.2: its rules file, and the package wired to it.

https-everywhere normally downloads `default.rulesets.<ts>` from https-rulesets.org into
`appdirs.user_cache_dir("https-everywhere-py")`. Here that file is written from the same YAML rules port443
loads (the shipped ones by default), the way HTTPS Everywhere's `utils/merge-rulesets.py` turned its XML
into the JSON it bundled, so both engines answer from the same rules and nothing leaves the clone. The
network is never used: `import_baseline` pins the timestamp and replaces `requests.get` with a function
that raises. The file equals what merge-rulesets.py made of the XML corpus but for the 12 `to` values the
importer respells with the same meaning in JavaScript (`$12dialog` with two groups is `$012dialog`); the
baseline reads a few of them differently, which moves its oracle agreement by 2 of 32,052 URLs.

This module is imported by the measured processes too, so it imports nothing beyond the standard library
at the top: port443 is imported only by the function that builds the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from port443.engine.ruleset import Ruleset

# The baseline looks for `default.rulesets.<timestamp>` in its cache dir. 2021-06-09, the corpus's date.
BASELINE_TS = 1623196800
BASELINE_CACHE_APP = "https-everywhere-py"  # the appdirs.user_cache_dir() name of https_everywhere._fetch
BUILDER_VERSION = 2  # bump when ruleset_object() changes its output (1 read the XML archive)


def ruleset_object(ruleset: Ruleset) -> dict[str, Any]:
    """One ruleset as `merge-rulesets.py` wrote it into `default.rulesets`.

    Attributes `name`, `default_off`, `platform` and the children `target` (hosts), `rule` ({from, to}),
    `exclusion` and `securecookie` ({host, name}), each key only when present; tests are left out. All
    exclusions are joined with `|` into one pattern, and every securecookie with `name=".+"` is folded into
    one rule, placed first, whose host is the `|`-join of their hosts.
    """
    obj: dict[str, Any] = {"name": ruleset.name}
    if ruleset.default_off is not None:
        obj["default_off"] = ruleset.default_off
    if ruleset.platform is not None:
        obj["platform"] = ruleset.platform
    obj["target"] = list(ruleset.targets)
    obj["rule"] = [{"from": rule.from_, "to": rule.to} for rule in ruleset.rules]
    if ruleset.exclusions:
        obj["exclusion"] = ["|".join(ruleset.exclusions)]
    if ruleset.securecookies:
        any_name = [c.host for c in ruleset.securecookies if c.name == ".+"]
        folded = [{"host": "|".join(any_name), "name": ".+"}] if any_name else []
        others = [{"host": c.host, "name": c.name} for c in ruleset.securecookies if c.name != ".+"]
        obj["securecookie"] = folded + others
    return obj


def _merge_order(path: str) -> str:
    """merge-rulesets.py sorted the XML file names (NFC, code point order); `X.yaml` came from `X.xml`."""
    return unicodedata.normalize("NFC", Path(path).stem + ".xml")


def build_default_rulesets(rules: Path, out: Path) -> int:
    """Write the `default.rulesets` JSON for every ruleset under `rules` to `out`; return how many.

    Raises:
        RulesetError: when a ruleset file is invalid (the baseline must see every rule port443 sees).
    """
    from port443.engine.ruleset import load_ruleset, ruleset_files

    files = sorted(ruleset_files([rules]), key=_merge_order)
    library = [ruleset_object(load_ruleset(path)) for path in files]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(library), encoding="utf-8")
    os.replace(tmp, out)
    return len(library)


def rules_digest(rules: Path) -> str:
    """A digest of every YAML file under `rules`: its path relative to `rules`, and its content."""
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(p for p in rules.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        digest.update(path.relative_to(rules).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def rules_file(home: Path) -> Path:
    """Where the baseline reads its rules when XDG_CACHE_HOME is `home`."""
    return home / BASELINE_CACHE_APP / f"default.rulesets.{BASELINE_TS}"


def baseline_home(rules: Path) -> tuple[Path, bool]:
    """The XDG_CACHE_HOME holding the baseline's rules file for `rules`, and whether it was built now.

    The file lives under `$XDG_CACHE_HOME/port443-bench/` (default `~/.cache`, never the repository), keyed
    by the rules' digest, so later runs on the same rules reuse it.
    """
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "port443-bench"
    home = cache_root / f"https-everywhere-{rules_digest(rules)}-v{BUILDER_VERSION}"
    if rules_file(home).is_file():
        return home, False
    build_default_rulesets(rules, rules_file(home))
    return home, True


Loader = Callable[[], Any]
Rewriter = Callable[[str], Any]


def import_baseline(via_requests: bool = False) -> tuple[Loader, Rewriter]:
    """Import https-everywhere wired to the local rules file, with the network disabled.

    The subprocess's XDG_CACHE_HOME must point at `baseline_home()`, which appdirs honours on Linux. Returns
    the loader (`_get_rulesets`) and the URL rewriter: `https_url_rewrite`, or with `via_requests` the path
    a requests session takes, `PreparedRequest.prepare_url` (requests' URL canonicalisation) then
    `HTTPSEverywhereOnlyAdapter.get_redirect`.
    """
    import https_everywhere._fetch as fetch
    from https_everywhere import _rules

    fetch._ts = BASELINE_TS  # skips fetch_channel_ts(), the "latest timestamp" download

    def no_network(*args: object, **kwargs: object) -> None:
        expected = fetch._storage_location(timestamp=BASELINE_TS)
        raise RuntimeError(f"bench.engine: network disabled; expected {expected}")

    fetch.requests.get = no_network
    if not via_requests:
        return _rules._get_rulesets, _rules.https_url_rewrite
    return _via_requests(_rules)


def _via_requests(rules_module: Any) -> tuple[Loader, Rewriter]:
    """The baseline as a requests session drives it; the adapter is made by the loader, as the session would."""
    import requests
    from https_everywhere.adapter import HTTPSEverywhereOnlyAdapter

    adapters: list[Any] = []

    def load() -> Any:
        adapters.append(HTTPSEverywhereOnlyAdapter())  # its __init__ loads the rules
        return rules_module._get_rulesets()

    def rewrite(url: str) -> str | None:
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, None)
        result: str | None = adapters[0].get_redirect(prepared.url)
        return result

    return load, rewrite
