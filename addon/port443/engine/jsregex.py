"""Translate HTTPS Everywhere's JavaScript regexes and `$N` replacements into Python `re` and RE2 syntax.

Rulesets are written in the dialect HTTPS Everywhere used (ECMAScript regexes without flags, Annex B syntax),
so that rules can be copied between the two. Python's `re` (and the `regex` package) and RE2 read some of that
syntax differently; this module rewrites those spots once, at compile time, so that a search gives the
JavaScript answer. Rewriting a pattern into forms without lookaround (a final lookahead as RE2 runs it,
the texts string operations answer) is `spelling`'s job. The engine that runs the result is chosen in
`pattern`. Pure: no I/O.
"""

from __future__ import annotations

import re

# ECMAScript WhiteSpace and LineTerminator code points: what `\s` means in JavaScript.
_JS_SPACE = "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
# JavaScript's `.` stops at every line terminator, Python's only at "\n".
_JS_DOT = "[^\\n\\r\\u2028\\u2029]"
# RE2 spells code points \x{...}, not \uXXXX, and has no \Z: its end of text is \z.
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-f]{4})")
_RE2_SPACE = _UNICODE_ESCAPE.sub(r"\\x{\1}", _JS_SPACE)
_RE2_DOT = _UNICODE_ESCAPE.sub(r"\\x{\1}", _JS_DOT)
# What `translate_pattern` copies as it is: everything but the characters it looks at.
_SAME_RUN = re.compile(r"[^\\\[(.${}]+")
# `{` starts a quantifier in JavaScript only in these shapes; otherwise it is a literal brace.
JS_QUANTIFIER = re.compile(r"\{\d+(?:,\d*)?\}")
HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_DIGITS = re.compile(r"\d+")
GROUP_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# Letters whose escape means the same in both dialects (with re.ASCII for \d \w \b).
_SHARED_ESCAPES = frozenset("dDwWbBnrtfv")
_CLASS_ESCAPES = "dDwWsS"
_CLASS_ESCAPE_AT = re.compile(r"\\[dDwWsS]")

#: Flags every translated pattern is compiled with: JavaScript's \d, \w and \b are ASCII-only.
FLAGS = re.ASCII


class TranslateError(ValueError):
    """The JavaScript pattern or replacement uses something with no faithful Python equivalent."""


def translate_pattern(source: str, *, re2: bool = False) -> str:
    """Return a Python `re` (or, with `re2`, an RE2) pattern that matches what the JavaScript regex matches.

    The RE2 form is only meaningful for patterns without lookaround and backreferences, which RE2 lacks.

    Raises:
        TranslateError: for syntax JavaScript itself rejects, or that cannot be carried over.
    """
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c == "\\":
            piece, i = _escape(source, i, in_class=False, re2=re2)
        elif c == "[":
            piece, i = _char_class(source, i, re2=re2)
        elif c == "(":
            piece, i = _group_open(source, i)
        elif c == ".":
            piece, i = (_RE2_DOT if re2 else _JS_DOT), i + 1
        elif c == "$":
            # Without the m flag, JavaScript's `$` is the very end; Python's `$` also matches before a final "\n".
            piece, i = (r"\z" if re2 else r"\Z"), i + 1
        elif c == "{":
            m = JS_QUANTIFIER.match(source, i)
            piece, i = (m.group(), m.end()) if m else (r"\{", i + 1)
        elif c == "}":
            piece, i = r"\}", i + 1
        else:  # a run of characters that mean the same in every dialect, copied at once
            m = _SAME_RUN.match(source, i)
            assert m is not None  # `c` itself is one
            piece, i = m.group(), m.end()
        out.append(piece)
    return "".join(out)


def _escape(source: str, i: int, *, in_class: bool, re2: bool) -> tuple[str, int]:
    """Translate the escape starting at the backslash `source[i]`; return the Python text and the next index."""
    if i + 1 >= len(source):
        raise TranslateError("pattern ends with a lone backslash")
    c = source[i + 1]
    nxt = i + 2
    space = _RE2_SPACE if re2 else _JS_SPACE
    if c == "s":
        return (space if in_class else f"[{space}]"), nxt
    if c == "S":
        if in_class:
            raise TranslateError(r"\S inside a character class is not supported; list the characters instead")
        return f"[^{space}]", nxt
    if c == "B" and in_class:
        return "B", nxt  # Annex B: an unknown escape inside a class is the letter itself
    if c == "b" and in_class:
        return r"\x08", nxt  # backspace in both dialects; spelled out to be unambiguous
    if c in _SHARED_ESCAPES:
        return "\\" + c, nxt
    if c == "0" and not source[nxt : nxt + 1].isdigit():
        return r"\x00", nxt
    if c.isdigit():
        if in_class:
            raise TranslateError(f"octal escape \\{c} inside a character class is not supported")
        digits = _DIGITS.match(source, i + 1)
        end = digits.end() if digits else nxt
        return "(?:\\" + source[i + 1 : end] + ")", end  # the group keeps `\1` then `0` from reading as `\10`
    if c == "c" and nxt < len(source) and source[nxt].isascii() and source[nxt].isalpha():
        return f"\\x{ord(source[nxt]) % 32:02x}", nxt + 1
    if c == "x" and HEX2.match(source, nxt):
        return "\\x" + source[nxt : nxt + 2], nxt + 2
    if c == "u" and HEX4.match(source, nxt):
        return ("\\x{%s}" if re2 else "\\u%s") % source[nxt : nxt + 4], nxt + 4
    if c == "k" and not in_class and source.startswith("<", nxt):
        end = source.find(">", nxt)
        name = source[nxt + 1 : end] if end > 0 else ""
        if GROUP_NAME.fullmatch(name):
            return f"(?P={name})", end + 1
    # Annex B identity escape: `\e` is just "e" in JavaScript, while Python rejects or reinterprets it.
    return re.escape(c), nxt


def _char_class(source: str, i: int, *, re2: bool) -> tuple[str, int]:
    """Translate the character class opening at `source[i] == "["`."""
    j = i + 1
    negated = source.startswith("^", j)
    if negated:
        j += 1
    if source.startswith("]", j):
        # JavaScript allows empty classes: [] never matches, [^] matches any character.
        never = "[^\\x00-\\x{10ffff}]" if re2 else "(?!)"
        return ("[\\s\\S]" if negated else never), j + 1
    out = ["[^" if negated else "["]
    prev = ""
    while j < len(source):
        c = source[j]
        if c == "]":
            out.append("]")
            return "".join(out), j + 1
        if c == "\\":
            piece, j = _escape(source, j, in_class=True, re2=re2)
            prev = source[j - 1] if source[j - 2] == "\\" and source[j - 1] in _CLASS_ESCAPES else c
        else:
            # Escape what Python may read as nested sets or set operations (it warns on [[, --, &&, ~~, ||),
            # and a `-` next to a class escape, which is a literal in JavaScript (`[\w-.]`) and an error in Python.
            literal = c in "[&~|" or (
                c == "-" and (prev in ("-", *_CLASS_ESCAPES) or _CLASS_ESCAPE_AT.match(source, j + 1))
            )
            piece = "\\" + c if literal else c
            j += 1
            prev = c
        out.append(piece)
    raise TranslateError("unterminated character class")


def _group_open(source: str, i: int) -> tuple[str, int]:
    """Translate a group opening; JavaScript spells named groups `(?<name>` where Python wants `(?P<name>`.

    JavaScript has no other `(?` forms: `(?i)`, `(?P<n>` or `(?#` would mean something else to Python and RE2.
    """
    if source.startswith("(?<", i) and not source.startswith(("(?<=", "(?<!"), i):
        end = source.find(">", i)
        name = source[i + 3 : end] if end > 0 else ""
        if not GROUP_NAME.fullmatch(name):
            raise TranslateError(f"invalid group name {name!r}")
        return f"(?P<{name}>", end + 1
    if source.startswith("(?", i) and not source.startswith(("(?:", "(?=", "(?!", "(?<=", "(?<!"), i):
        raise TranslateError(f"{source[i : i + 3]!r} is not JavaScript syntax (it has no inline flags)")
    return "(", i + 1


def compile_pattern(source: str) -> re.Pattern[str]:
    """Translate and compile a JavaScript regex.

    Raises:
        TranslateError: when the pattern is invalid in either dialect (the message says why).
    """
    try:
        return re.compile(translate_pattern(source), FLAGS)
    except re.error as e:
        raise TranslateError(str(e)) from e


_DOLLAR = re.compile(r"\$([0-9]{1,2}|.?)", re.DOTALL)  # [0-9]: other Unicode digits are literal in JS


def translate_replacement(to: str, groups: int) -> str:
    """Turn a JavaScript replacement string into a Python `re` template for a pattern with `groups` groups.

    Our rulesets accept only the unambiguous JavaScript forms: `$N`/`$NN` naming an existing group, `$&` and
    `$$`. JavaScript would silently keep the rest literally, which is always a mistake in a rule.

    Raises:
        TranslateError: naming the first offending `$` reference.
    """
    return "".join(
        part.replace("\\", "\\\\")
        if isinstance(part, str)
        else f"\\g<{part}>"  # backslashes are literal in JS
        for part in replacement_parts(to, groups)
    )


def replacement_parts(to: str, groups: int) -> tuple[str | int, ...]:
    """Split a JavaScript replacement into literal text and group numbers (0 for `$&`), adjacent text merged.

    Raises:
        TranslateError: as `translate_replacement`.
    """
    if "$" not in to:
        return (to,) if to else ()
    out: list[str | int] = []
    pos = 0
    for m in _DOLLAR.finditer(to):
        out.append(to[pos : m.start()])
        ref = m.group(1)
        pos = m.end()
        if ref == "$":
            out.append("$")
        elif ref == "&":
            out.append(0)
        elif ref.isascii() and ref.isdigit():
            out.extend(_group_reference(ref, groups))
        elif ref in ("`", "'"):
            raise TranslateError(f"${ref} (text before/after the match) is not supported")
        else:
            raise TranslateError(f"stray '$' before {ref!r}; write $$ for a literal dollar sign")
    out.append(to[pos:])
    merged: list[str | int] = []
    for part in out:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return tuple(merged)


def _group_reference(ref: str, groups: int) -> tuple[int]:
    """Resolve `$N`/`$NN` the JavaScript way, refusing the forms JavaScript would leave as literal text."""
    if len(ref) == 2 and 1 <= int(ref) <= groups:
        return (int(ref),)
    if 1 <= int(ref[0]) <= groups:
        if len(ref) == 2 and ref[0] != "0":
            raise TranslateError(
                f"${ref} is ambiguous with {groups} group(s): write $0{ref[0]} then {ref[1]!r}"
            )
        return (int(ref[0]),)
    raise TranslateError(f"${ref} refers to a group the pattern does not have ({groups} group(s))")


def normalize_replacement(to: str, groups: int) -> str:
    """Rewrite a JavaScript replacement so that `translate_replacement` accepts it with the same meaning.

    Used when importing third-party rulesets: `$3` with two groups (literal in JavaScript) becomes `$$3`, and
    `$12` meaning group 1 then "2" becomes `$012`.
    """

    def fix(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref in ("$", "&", "`", "'"):
            return (
                m.group()
            )  # meaningful in JavaScript; `$\`` and `$'` are then refused by translate_replacement
        if not (ref.isascii() and ref.isdigit()):
            return "$$" + ref  # JavaScript keeps `$` followed by anything else literally
        if len(ref) == 2 and 1 <= int(ref) <= groups:
            return m.group()
        if 1 <= int(ref[0]) <= groups:
            return f"$0{ref}" if len(ref) == 2 and ref[0] != "0" else m.group()
        return "$" + m.group()

    return _DOLLAR.sub(fix, to)
