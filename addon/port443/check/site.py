"""`port443 check`: does a site support HTTPS properly? Certificate, redirects, HSTS, mixed content, parity.

Connections go through `probe.open_tls` like the proxy's probes (one TLS and verification path), and
`--resolve`/`--connect-to` mappings apply to every connection. Each site yields a JSON-ready report.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import publicsuffix2

from port443.check.certinfo import CertInfo, parse_certificate
from port443.check.grade import Facts, Hsts, grade, parse_hsts, preload_problems
from port443.check.htmlscan import MixedItem, scan
from port443.net.fetch import FETCH_ERRORS, Response, fetch
from port443.net.probe import classify
from port443.proxy.decide import Decider
from port443.proxy.hsts import PreloadList

_MAX_HOPS = 10


@dataclass(slots=True)
class CheckSettings:
    """How to reach and trust sites."""

    context: ssl.SSLContext
    connect_to: Mapping[tuple[str, int], tuple[str, int]]
    timeout: float = 10.0
    decider: Decider | None = None
    preload: PreloadList | None = None


def site_host(target: str) -> str:
    """The host of a HOST or URL argument, lower-case, without a trailing dot.

    Raises:
        ValueError: when there is no host in it.
    """
    parts = urlsplit(target if "://" in target else f"http://{target}")
    if not parts.hostname:
        raise ValueError(f"no host in {target!r}")
    return parts.hostname.lower().rstrip(".")


def base_domain(host: str) -> str | None:
    """The registrable domain (eTLD+1) of `host`; unknown TLDs count as public suffixes, as the PSL's `*` rule says."""
    suffix = publicsuffix2.get_tld(host, strict=False)
    if not suffix or suffix == host:
        return None
    labels = host.split(".")
    return ".".join(labels[-(suffix.count(".") + 2) :])


async def check_sites(
    targets: Sequence[str],
    settings: CheckSettings,
    *,
    concurrency: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Check every site, at most `concurrency` at a time; reports come back in the order given."""
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(target: str) -> dict[str, Any]:
        nonlocal done
        async with gate:
            report = await check_site(target, settings)
        done += 1
        if progress is not None:
            progress(done, len(targets))
        return report

    return list(await asyncio.gather(*(one(t) for t in targets)))


async def check_site(target: str, settings: CheckSettings) -> dict[str, Any]:
    """Check one site; network failures are findings in the report, never exceptions."""
    host = site_host(target)
    https = await _check_https(host, settings)
    http = await follow(f"http://{host}/", settings)
    hsts = (
        parse_hsts(https.root.header("Strict-Transport-Security")) if https.root and https.valid else Hsts()
    )
    final = https.final
    title, mixed = (
        scan(final.body.decode("utf-8", "replace")) if final is not None and https.valid else (None, [])
    )
    http_final = http.responses[-1] if http.responses else None
    http_title = scan(http_final.body.decode("utf-8", "replace"))[0] if http_final is not None else None
    parity = (
        _parity(http_final, http_title, final, title)
        if http_final is not None and final is not None
        else None
    )
    first_location = http.hops[0]["location"] if http.hops else None
    redirects_to_https = (
        bool(http.hops) and http.hops[-1]["url"].startswith("https://") and http.error is None
    )
    same_host = first_location is not None and _same_https_host(first_location, host)
    downgrade = https.downgrade or http.downgrade
    facts = Facts(
        https_error=https.error,
        cert_error=https.cert_error,
        days_left=https.cert.days_left() if https.cert is not None else None,
        tls_version=https.tls_version,
        http_reachable=bool(http.responses),
        redirects_to_https=redirects_to_https,
        downgrade=downgrade,
        hsts=hsts,
        mixed_active=sum(1 for m in mixed if m.active),
        mixed_passive=sum(1 for m in mixed if not m.active),
        parity_same=parity["same"] if parity else None,
    )
    verdict, reasons, passed = grade(facts)
    http_redirect_ok = (redirects_to_https and same_host) if http.responses else None
    return {
        "host": host,
        "grade": verdict,
        "passed": passed,
        "reasons": reasons,
        "https": https.as_json(host),
        "http": {
            "reachable": bool(http.responses),
            "error": http.error,
            "redirects_to_https": redirects_to_https,
            "same_host": same_host,
            "downgrade": bool(http.downgrade),
            "hops": http.hops,
        },
        "hsts": _hsts_json(host, hsts, https, http_redirect_ok, settings.preload),
        "mixed_content": [_mixed_json(m) for m in mixed],
        "parity": parity,
        "port443": _port443(host, settings.decider, https, downgrade),
    }


@dataclass(slots=True)
class _HttpsResult:
    root: Response | None = None
    final: Response | None = None
    error: str | None = None
    cert_error: str | None = None
    cert: CertInfo | None = None
    tls_version: str | None = None
    downgrade: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None and self.cert_error is None

    def as_json(self, host: str) -> dict[str, Any]:
        cert = self.cert
        certificate = None
        if cert is not None:
            certificate = {
                "valid": self.cert_error is None,
                "error": self.cert_error,
                "hostname_match": cert.covers(host),
                "issuer": cert.issuer,
                "subject": cert.subject,
                "not_before": cert.not_before.isoformat(),
                "not_after": cert.not_after.isoformat(),
                "days_left": cert.days_left(),
                "self_signed": cert.self_signed,
            }
        return {
            "reachable": self.error is None,
            "error": self.error,
            "tls_version": self.tls_version,
            "certificate": certificate,
        }


async def _check_https(host: str, settings: CheckSettings) -> _HttpsResult:
    result = _HttpsResult()
    url = f"https://{host}/"
    try:
        result.root = await fetch(
            url, timeout=settings.timeout, context=settings.context, connect_to=settings.connect_to
        )
    except ssl.SSLCertVerificationError as e:
        result.cert_error = e.verify_message or str(e)
        # Look at the certificate anyway, to say what is wrong with it; nothing else is trusted from here.
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
        try:
            result.root = await fetch(
                url, timeout=settings.timeout, context=insecure, connect_to=settings.connect_to
            )
        except FETCH_ERRORS:  # the certificate was the problem we report; a second failure adds nothing
            return result
    except FETCH_ERRORS as e:  # network failures are findings
        result.error = _describe(e)
        return result
    root = result.root
    result.tls_version = root.tls_version
    if root.peer_cert is not None:
        result.cert = parse_certificate(root.peer_cert)
    if result.valid:
        chain = await follow(url, settings, first=root)
        result.downgrade = chain.downgrade
        result.final = chain.responses[-1] if chain.responses else root
    return result


@dataclass(slots=True)
class _Chain:
    responses: list[Response]
    hops: list[dict[str, Any]]
    error: str | None = None
    downgrade: str | None = None


async def follow(url: str, settings: CheckSettings, *, first: Response | None = None) -> _Chain:
    """Follow redirects from `url`, recording every hop and any hop from https back to http."""
    chain = _Chain([], [])
    seen: set[str] = set()
    while len(chain.hops) < _MAX_HOPS and url not in seen:
        seen.add(url)
        try:
            response = first if first is not None and not chain.responses else None
            if response is None:
                response = await fetch(
                    url, timeout=settings.timeout, context=settings.context, connect_to=settings.connect_to
                )
        except FETCH_ERRORS as e:  # network failures are findings
            chain.error = f"{url}: {_describe(e)}"
            break
        chain.responses.append(response)
        location = response.header("Location") if 300 <= response.status < 400 else None
        target = urljoin(url, location) if location else None
        chain.hops.append({"url": url, "status": response.status, "location": target})
        if target is None:
            break
        if url.startswith("https://") and target.startswith("http://"):
            chain.downgrade = chain.downgrade or f"{url} -> {target}"
        url = target
    return chain


def _describe(error: Exception) -> str:
    """A readable reason for a failed fetch (SSL errors are ValueErrors too, so they go first)."""
    if isinstance(error, ssl.SSLError) or not isinstance(error, ValueError):
        return classify(error)[1]
    return str(error)


def _same_https_host(location: str, host: str) -> bool:
    target = urlsplit(location)
    return target.scheme == "https" and (target.hostname or "").lower() == host


def _parity(
    http_final: Response, http_title: str | None, https_final: Response, https_title: str | None
) -> dict[str, Any]:
    same = http_final.status // 100 == https_final.status // 100 and http_title == https_title
    return {
        "http_status": http_final.status,
        "https_status": https_final.status,
        "http_title": http_title,
        "https_title": https_title,
        "same": same,
    }


def _hsts_json(
    host: str, hsts: Hsts, https: _HttpsResult, http_redirect_ok: bool | None, preload: PreloadList | None
) -> dict[str, Any]:
    problems = preload_problems(
        host,
        base_domain(host),
        https_error=https.error,
        cert_valid=https.valid,
        http_redirect_ok=http_redirect_ok,
        hsts=hsts,
    )
    return {
        "present": hsts.present,
        "header": hsts.header,
        "max_age": hsts.max_age,
        "include_subdomains": hsts.include_subdomains,
        "preload": hsts.preload,
        "preloaded": preload.lookup(host) if preload is not None else None,
        "eligible": not problems,
        "eligibility_problems": problems,
    }


def _mixed_json(item: MixedItem) -> dict[str, Any]:
    return {"tag": item.tag, "attribute": item.attribute, "url": item.url, "active": item.active}


def _port443(
    host: str, decider: Decider | None, https: _HttpsResult, downgrade: str | None
) -> dict[str, Any] | None:
    """What the proxy would do with http://HOST/; when only a probe would decide, this check is that probe."""
    if decider is None:
        return None
    known = decider.decide_known(f"http://{host}/")
    if known is not None:
        return {
            "upgrade": known.upgrade,
            "step": known.step.value,
            "reason": known.reason,
            "ruleset": known.ruleset,
        }
    if https.error is not None:
        reason = f"no HTTPS: {https.error}"
    elif https.cert_error is not None:
        reason = f"bad-certificate: {https.cert_error}"
    elif downgrade:
        reason = f"redirects-to-http: {downgrade}"
    else:
        reason = "HTTPS works"
    return {"upgrade": reason == "HTTPS works", "step": "probe", "reason": reason, "ruleset": None}
