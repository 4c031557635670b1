"""A person's actions on a site (never upgrade, always HTTPS, clear, forget, remove an exception), checked.

The dashboard's forms, its JSON API and the CLI all name a host; this turns what they sent into a host in
the form the decider keys its choices by (lower case, no trailing dot, IDNA), or says why not. Pure: the
addon and the CLI apply the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from port443.errors import UsageError
from port443.proxy.clients import parse_address
from port443.proxy.decide import Policy
from port443.proxy.inert import visible
from port443.proxy.pages import shown

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
MAX_NAME = 253
"""Characters of a DNS name at most (RFC 1035 section 2.3.4, without the trailing dot)."""


class Action(StrEnum):
    """What a person can do about a site from the dashboard or the CLI."""

    NEVER = "never"
    """Never upgrade it (and its subdomains)."""
    ALWAYS = "always"
    """Always send it to HTTPS."""
    CLEAR = "clear"
    """Drop the never/always choice: the usual steps decide again."""
    FORGET = "forget"
    """Forget what was learned about it, so the next request probes it again."""
    REVOKE = "revoke"
    """Remove the strict-mode "continue over HTTP" exceptions devices opened for it."""

    @property
    def policy(self) -> Policy | None:
        """The choice this action records (None for clear, forget and revoke)."""
        return {Action.NEVER: Policy.NEVER, Action.ALWAYS: Policy.ALWAYS}.get(self)


@dataclass(frozen=True, slots=True)
class Request:
    """One action on one host, checked."""

    action: Action
    host: str


def parse_host(text: str) -> str:
    """A host name or IP address as the decider keys it: lower case, no trailing dot, IDNA for Unicode.

    Raises:
        UsageError: for anything else (empty, a URL, spaces, a label over 63 characters...).
    """
    name = text.strip().lower().rstrip(".")
    address = parse_address(name)
    if address is not None:
        return str(address)
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as e:
            raise UsageError(f"{_said(text)}: not a host name ({e})") from e
    if not name or len(name) > MAX_NAME or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise UsageError(f"{_said(text)}: not a host name (letters, digits, '-' and dots, like example.com)")
    return name


def parse_request(action: str, host: str) -> Request:
    """An action and its host, as a form or the API sent them.

    Raises:
        UsageError: an unknown action or a malformed host.
    """
    try:
        chosen = Action(action.strip().lower())
    except ValueError:
        known = ", ".join(a.value for a in Action)
        raise UsageError(f"{_said(action)}: not an action (one of {known})") from None
    return Request(chosen, parse_host(host))


def _said(text: str) -> str:
    """Text a person sent, fit for an error message: bounded, controls shown as escapes."""
    return repr(visible(shown(text, 100)))
