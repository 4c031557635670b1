"""The dashboard's data: one snapshot of the store and the running proxy, and the JSON API's documents.

`build_overview` reads the store (run it off the event loop: it queries every table) and takes what only
the running proxy knows (the rules in force, strict-mode exceptions, its mode) as plain values, so
`port443 report --html` builds the same overview from the store alone. The JSON documents use the
report's field names and ISO 8601 UTC times, so `/api/insecure` and `port443 report --json` agree.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from port443.proxy.decide import Learned
from port443.proxy.notes import hour_of
from port443.proxy.report import as_dicts, clients_as_dicts
from port443.proxy.store import Choice, ClientUse, HourlyCount, InsecureSite, InsecureStore

CHART_DAYS = 7
"""Days the hourly chart shows (the store keeps 14)."""
TOP_SITES = 10
PER_ROW = 5
"""Devices listed per insecure site, and insecure sites listed per device."""

STEPS = ("ruleset", "hsts-preload", "learned", "probe", "user-policy")
"""The steps that upgrade, in the order the counters show them."""
STEP_NAMES = {
    "ruleset": "Rulesets",
    "hsts-preload": "HSTS preload",
    "learned": "Learned",
    "probe": "Probed",
    "user-policy": "Your choice",
}


@dataclass(frozen=True, slots=True)
class RulesInfo:
    """The rules in force in the running proxy."""

    rulesets: int
    files: tuple[str, ...]
    """The user's rule files and folders (`--rules`)."""
    shipped: bool
    """The shipped HTTPS Everywhere rules are loaded too."""
    failed: int
    """Files skipped (or kept at their last good version)."""
    problems: tuple[str, ...] = ()
    """`file:line: field: problem` of those files, as the proxy logged them."""


@dataclass(frozen=True, slots=True)
class Exemption:
    """A strict-mode "continue over HTTP" exception a device opened."""

    client: str
    host: str
    until: float


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the dashboard shows, read at `generated`."""

    generated: float
    upgrades: dict[str, int]
    sites: list[InsecureSite]
    site_devices: dict[str, list[str]]
    learned: list[Learned]
    devices: list[ClientUse]
    device_sites: dict[str, list[str]]
    hourly: list[HourlyCount]
    """One entry per hour of the last CHART_DAYS days, oldest first, hours without traffic included."""
    policies: list[Choice]
    exemptions: list[Exemption] = field(default_factory=list)
    rules: RulesInfo | None = None
    """None when no proxy is running (`port443 report --html`)."""
    mode: str = ""

    @property
    def upgraded(self) -> int:
        """Requests upgraded, by every step."""
        return sum(self.upgrades.values())

    @property
    def insecure_hits(self) -> int:
        """Requests left on plain HTTP, over the insecure sites kept."""
        return sum(s.hits for s in self.sites)

    @property
    def requests(self) -> int:
        """Plain-HTTP requests decided on, over the devices kept."""
        return sum(d.requests for d in self.devices)

    def policy_of(self, host: str) -> str:
        """The choice recorded for exactly `host`, or ''."""
        for choice in self.policies:
            if choice.host == host:
                return choice.policy.value
        return ""


def build_overview(
    store: InsecureStore,
    *,
    now: float | None = None,
    rules: RulesInfo | None = None,
    exemptions: Sequence[Exemption] = (),
    mode: str = "",
) -> Overview:
    """Read one snapshot of `store` (flushed first, so it holds what the proxy noted until now).

    Raises:
        StoreError: when the store cannot be written or read.
    """
    now = time.time() if now is None else now
    store.flush(now)
    return Overview(
        generated=now,
        upgrades=store.upgrade_counts(),
        sites=store.insecure_sites(),
        site_devices=store.site_clients(PER_ROW),
        learned=store.learned(now),
        devices=store.clients(),
        device_sites=store.client_sites(PER_ROW),
        hourly=fill_hours(store.hourly(now - CHART_DAYS * 86400), now),
        policies=store.policies(),
        exemptions=sorted(exemptions, key=lambda e: (e.host, e.client)),
        rules=rules,
        mode=mode,
    )


def fill_hours(counts: Sequence[HourlyCount], now: float, days: int = CHART_DAYS) -> list[HourlyCount]:
    """One count per hour of the `days` days up to `now`, zeros where the store has none."""
    last = hour_of(now)
    first = last - (days * 24 - 1) * 3600
    known = {int(c.hour): c for c in counts}
    return [known.get(h, HourlyCount(float(h), 0, 0)) for h in range(first, last + 1, 3600)]


def iso(seconds: float) -> str:
    """ISO 8601 UTC to the second, as `port443 report --json` writes times."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


# --- the JSON API's documents ------------------------------------------------------------------------


def summary_json(o: Overview) -> dict[str, object]:
    """`/api/summary`: the counters, the hourly series, the top insecure sites and the rules."""
    return {
        "generated": iso(o.generated),
        "mode": o.mode or None,
        "upgraded": o.upgraded,
        "upgraded_by_step": {step: o.upgrades.get(step, 0) for step in STEPS}
        | {step: n for step, n in o.upgrades.items() if step not in STEPS},
        "insecure_hits": o.insecure_hits,
        "insecure_sites": len(o.sites),
        "requests": o.requests,
        "devices": len(o.devices),
        "learned": len(o.learned),
        "policies": len(o.policies),
        "exceptions": len(o.exemptions),
        "hourly": [{"hour": iso(h.hour), "upgrades": h.upgrades, "insecure": h.insecure} for h in o.hourly],
        "top_insecure": [{"host": s.host, "hits": s.hits} for s in o.sites[:TOP_SITES]],
        "rules": rules_json(o.rules),
    }


def rules_json(rules: RulesInfo | None) -> dict[str, object] | None:
    """The rules in force, or None without a running proxy."""
    if rules is None:
        return None
    return {
        "rulesets": rules.rulesets,
        "files": list(rules.files),
        "shipped": rules.shipped,
        "failed_files": rules.failed,
        "problems": list(rules.problems),
    }


def insecure_json(o: Overview) -> list[dict[str, object]]:
    """`/api/insecure`: `port443 report --json`'s rows, with the devices that used each site and its choice."""
    rows = as_dicts(o.sites)
    for row in rows:
        host = str(row["host"])
        row["devices"] = o.site_devices.get(host, [])
        row["policy"] = o.policy_of(host) or None
    return rows


def learned_json(o: Overview) -> list[dict[str, object]]:
    """`/api/learned`: what probes, failures and confirmed loops taught, with expiry (as `port443 learned --json`)."""
    return [
        {
            "host": x.host,
            "path": x.path or None,
            "secure": x.secure,
            "reason": str(x.reason),
            "detail": x.detail,
            "expires": iso(x.expires),
        }
        for x in o.learned
    ]


def devices_json(o: Overview) -> list[dict[str, object]]:
    """`/api/devices`: `port443 report --by-client --json`'s rows, with the insecure sites each device used."""
    rows = clients_as_dicts(o.devices)
    for row in rows:
        row["insecure_sites"] = o.device_sites.get(str(row["client"]), [])
    return rows


def policy_json(o: Overview) -> dict[str, object]:
    """`/api/policy`: the per-site choices and the strict-mode exceptions in force."""
    return {
        "policies": [{"host": c.host, "policy": c.policy.value, "set_at": iso(c.set_at)} for c in o.policies],
        "exceptions": [{"client": e.client, "host": e.host, "until": iso(e.until)} for e in o.exemptions],
    }
