"""Drift: does what the web serves still say what the ledger says?

Pure comparison of fetched bytes with `ContentSignals`; fetching is the caller's
(`services.drift`). What is compared, per page of the URL template:
- headers: `X-Robots-Tag` (its noai/noimageai tokens), `tdm-reservation`, `tdm-policy`,
  `Content-Usage` and `Content-Signal` (a header the ledger expects must be there);
- `<meta>` tags of an HTML body, where present: `robots` (noai tokens),
  `tdm-reservation`, and each `cawg.*` entry;
- the site's robots.txt: the most specific `Content-Usage` / `Content-Signal` rule for
  the page's path (RFC 9309 matching: longest pattern, `*` and `$`);
- the site's tdmrep.json: the first entry whose `location` matches the path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Final

import orjson

from projections.signals.content import (
    CONTENT_SIGNAL_HEADER,
    CONTENT_USAGE_HEADER,
    TDM_POLICY_HEADER,
    TDM_RESERVATION_HEADER,
    X_ROBOTS_TAG_HEADER,
    ContentSignals,
)

NOAI_TOKENS: Final = frozenset({"noai", "noimageai"})
ROBOTS_DIRECTIVES: Final = ("content-usage", "content-signal")


@dataclass(frozen=True)
class Mismatch:
    """One place where the served signals differ from the ledger's."""

    url: str
    source: str  # "header", "meta", "robots.txt", "tdmrep.json", "fetch"
    field: str
    served: str | None
    expected: str | None

    def to_json(self) -> dict[str, Any]:
        """Return the mismatch as JSON."""
        return {
            "url": self.url,
            "source": self.source,
            "field": self.field,
            "served": self.served,
            "expected": self.expected,
        }

    def line(self) -> str:
        """Return the mismatch as one line of text."""
        return (
            f"{self.url}: {self.source} {self.field}: served {self.served!r}, "
            f"the ledger says {self.expected!r}"
        )


class _MetaParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta":
            return
        found = dict(attrs)
        name, content = found.get("name"), found.get("content")
        if name is not None and content is not None:
            self.meta.setdefault(name.lower() if not name.startswith("cawg.") else name, content)


def meta_tags(html: str) -> dict[str, str]:
    """Return the `<meta name content>` pairs of an HTML document (first of each name)."""
    parser = _MetaParser()
    parser.feed(html)
    parser.close()
    return parser.meta


def _noai(value: str | None) -> str | None:
    if value is None:
        return None
    tokens = [t.strip().lower() for t in value.split(",")]
    found = [t for t in tokens if t in NOAI_TOKENS]
    return ", ".join(found) or None


def compare_page(
    url: str, headers: Mapping[str, str], body: str, expected: ContentSignals
) -> list[Mismatch]:
    """Return how a page's headers and `<meta>` tags differ from the expected signals.

    `headers` must look names up case-insensitively (an httpx or Starlette header map).
    """
    found: list[Mismatch] = []
    want = expected.headers()

    def check(source: str, name: str, served: str | None, wanted: str | None) -> None:
        if served != wanted:
            found.append(Mismatch(url, source, name, served, wanted))

    check(
        "header",
        X_ROBOTS_TAG_HEADER,
        _noai(headers.get(X_ROBOTS_TAG_HEADER)),
        expected.x_robots_tag,
    )
    for name in (
        TDM_RESERVATION_HEADER,
        TDM_POLICY_HEADER,
        CONTENT_USAGE_HEADER,
        CONTENT_SIGNAL_HEADER,
    ):
        served = headers.get(name)
        check("header", name, served.strip() if served is not None else None, want.get(name))
    meta = meta_tags(body) if "<meta" in body.lower() else {}
    if "robots" in meta:
        check("meta", "robots", _noai(meta["robots"]), expected.x_robots_tag)
    if TDM_RESERVATION_HEADER in meta:
        check(
            "meta",
            TDM_RESERVATION_HEADER,
            meta[TDM_RESERVATION_HEADER],
            str(expected.tdm_reservation),
        )
    for label, use in expected.training_mining.items():
        if label in meta:
            check("meta", label, meta[label], use)
    return found


@dataclass(frozen=True)
class RobotsRule:
    """One `Content-Usage` or `Content-Signal` rule of robots.txt's `*` group."""

    directive: str  # lower-case
    pattern: str
    value: str

    def matches(self, path: str) -> bool:
        """Tell whether the rule's path pattern matches `path` (RFC 9309 §2.2.3)."""
        return _pattern(self.pattern).match(path) is not None


def _pattern(pattern: str) -> re.Pattern[str]:
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""))


def robots_rules(text: str) -> list[RobotsRule]:
    """Return the AI-usage rules of robots.txt's `User-agent: *` group(s)."""
    rules: list[RobotsRule] = []
    in_star = False
    agent_line = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or ":" not in line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "user-agent":
            in_star = (in_star and agent_line) or value == "*"
            agent_line = True
            continue
        agent_line = False
        if in_star and name in ROBOTS_DIRECTIVES:
            if value.startswith("/"):
                pattern, _, prefs = value.partition(" ")
            else:
                pattern, prefs = "/", value
            rules.append(RobotsRule(name, pattern, prefs.strip()))
    return rules


def robots_value(rules: Sequence[RobotsRule], directive: str, path: str) -> str | None:
    """Return the value of the most specific rule for `path` (longest pattern wins)."""
    best: RobotsRule | None = None
    for rule in rules:
        longer = best is None or len(rule.pattern) > len(best.pattern)
        if rule.directive == directive and longer and rule.matches(path):
            best = rule
    return best.value if best is not None else None


def tdmrep_value(entries: Iterable[Mapping[str, Any]], path: str) -> tuple[int, str | None] | None:
    """Return (tdm-reservation, tdm-policy) of the first entry whose location matches."""
    for entry in entries:
        location = str(entry.get("location", ""))
        if _pattern(location + ("" if location.endswith("*") else "$")).match(path):
            return int(entry.get("tdm-reservation", 0)), entry.get("tdm-policy")
    return None


def compare_site(
    url: str,
    path: str,
    robots: Sequence[RobotsRule] | None,
    tdmrep: Sequence[Mapping[str, Any]] | None,
    expected: ContentSignals,
) -> list[Mismatch]:
    """Return how the site-wide files' rules for one page differ from the expected signals.

    A file that could not be fetched is None (reported once by the caller).
    """
    found: list[Mismatch] = []
    if robots is not None:
        for directive, wanted in (
            ("content-usage", expected.content_usage),
            ("content-signal", expected.content_signal),
        ):
            served = robots_value(robots, directive, path)
            if served != wanted:
                found.append(Mismatch(url, "robots.txt", directive, served, wanted))
    if tdmrep is not None:
        served_tdm = tdmrep_value(tdmrep, path)
        wanted_tdm = (expected.tdm_reservation, expected.tdm_policy)
        if served_tdm != wanted_tdm:
            found.append(
                Mismatch(url, "tdmrep.json", "tdm-reservation", str(served_tdm), str(wanted_tdm))
            )
    return found


def parse_tdmrep(data: bytes) -> list[Mapping[str, Any]]:
    """Return the entries of a tdmrep.json document; raise ValueError if it is not one."""
    value = orjson.loads(data)
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise ValueError("tdmrep.json must be a JSON array of objects")
    return value
