"""Grading a site's HTTPS, and hstspreload.org's rules for preloading. Pure: facts in, verdict out.

A site with no working, trusted HTTPS gets F. Otherwise each problem caps the grade: a redirect back to
HTTP at D, plain HTTP still served or active mixed content or an old TLS version at C, passive mixed
content, differing HTTP/HTTPS pages or a certificate about to expire at B. A+ needs HSTS for at least
180 days. Grades A+ to B pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GRADES = ("A+", "A", "B", "C", "D", "F")
PASSING = frozenset(("A+", "A", "B"))
PRELOAD_MIN_AGE = 31_536_000  # one year: hstspreload.org's minimum
A_PLUS_MIN_AGE = 15_768_000  # 180 days
EXPIRY_WARNING_DAYS = 14
_OLD_TLS = frozenset(("SSLv3", "TLSv1", "TLSv1.1"))


@dataclass(frozen=True, slots=True)
class Hsts:
    """A Strict-Transport-Security header, read the way browsers read it."""

    header: str | None = None
    max_age: int | None = None
    include_subdomains: bool = False
    preload: bool = False

    @property
    def present(self) -> bool:
        """A header with a usable max-age (a header without one is ignored by browsers)."""
        return self.max_age is not None


def parse_hsts(header: str | None) -> Hsts:
    """Parse a Strict-Transport-Security value (RFC 6797 §6.1); malformed max-age means no policy."""
    if header is None:
        return Hsts()
    max_age: int | None = None
    include = preload = False
    for directive in header.split(";"):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        value = value.strip().strip('"')
        if name == "max-age" and value.isdigit():
            max_age = int(value)
        elif name == "includesubdomains":
            include = True
        elif name == "preload":
            preload = True
    return Hsts(header, max_age, include, preload)


def preload_problems(
    host: str,
    base_domain: str | None,
    *,
    cert_valid: bool,
    http_redirect_ok: bool | None,
    hsts: Hsts,
    https_error: str | None = None,
) -> list[str]:
    """Why `host` cannot be submitted to the HSTS preload list (hstspreload.org's rules); [] if it can.

    `http_redirect_ok` is None when nothing listens on port 80 (then there is nothing to redirect).
    """
    problems = []
    if base_domain is None or base_domain != host:
        problems.append(
            f"only a registrable domain can be preloaded (this is a subdomain of {base_domain or '?'})"
        )
    if https_error is not None:
        problems.append("HTTPS must work on port 443")
    elif not cert_valid:
        problems.append("the certificate must be valid")
    if http_redirect_ok is False:
        problems.append("http:// must first redirect to https:// on the same host")
    if not hsts.present:
        problems.append("no Strict-Transport-Security header on HTTPS")
        return problems
    if (hsts.max_age or 0) < PRELOAD_MIN_AGE:
        problems.append(f"max-age must be at least {PRELOAD_MIN_AGE} (one year); it is {hsts.max_age}")
    if not hsts.include_subdomains:
        problems.append("the includeSubDomains directive is missing")
    if not hsts.preload:
        problems.append("the preload directive is missing")
    return problems


@dataclass(frozen=True, slots=True)
class Facts:
    """What the checker found, reduced to what grading needs."""

    https_error: str | None = None
    cert_error: str | None = None
    days_left: int | None = None
    tls_version: str | None = None
    http_reachable: bool = False
    redirects_to_https: bool = False
    downgrade: str | None = None
    hsts: Hsts = field(default_factory=Hsts)
    mixed_active: int = 0
    mixed_passive: int = 0
    parity_same: bool | None = None


def grade(facts: Facts) -> tuple[str, list[str], bool]:
    """The grade, the reasons (worst first), and whether the site passes."""
    if facts.https_error is not None:
        return "F", [f"HTTPS does not work: {facts.https_error}"], False
    if facts.cert_error is not None:
        return "F", [f"the certificate is not valid: {facts.cert_error}"], False
    caps: list[tuple[str, str]] = []
    if facts.downgrade:
        caps.append(("D", f"a redirect goes back to plain HTTP: {facts.downgrade}"))
    if facts.http_reachable and not facts.redirects_to_https:
        caps.append(("C", "plain HTTP is still served: http:// does not redirect to https://"))
    if facts.mixed_active:
        caps.append(
            (
                "C",
                f"{facts.mixed_active} active http:// subresource(s) on the HTTPS page (browsers block them)",
            )
        )
    if facts.tls_version in _OLD_TLS:
        caps.append(("C", f"outdated protocol {facts.tls_version}"))
    if facts.mixed_passive:
        caps.append(("B", f"{facts.mixed_passive} passive http:// subresource(s) on the HTTPS page"))
    if facts.days_left is not None and facts.days_left < EXPIRY_WARNING_DAYS:
        caps.append(("B", f"the certificate expires in {facts.days_left} day(s)"))
    if facts.parity_same is False:
        caps.append(("B", "the HTTP and HTTPS pages differ (status or title)"))
    if not facts.hsts.present:
        caps.append(("A", "no HSTS: browsers may still try plain HTTP first"))
    elif (facts.hsts.max_age or 0) < A_PLUS_MIN_AGE:
        caps.append(("A", f"HSTS max-age is short ({facts.hsts.max_age} s; 180 days or more for A+)"))
    caps.sort(key=lambda c: GRADES.index(c[0]), reverse=True)
    verdict = caps[0][0] if caps else "A+"
    reasons = [reason for _, reason in caps] or ["HTTPS works, HTTP redirects to it, and HSTS is set"]
    return verdict, reasons, verdict in PASSING
