"""The site-wide files, read by parsers others wrote, say what each page's headers say.

robots.txt through Scrapy's `protego` and Python's `urllib.robotparser`; tdmrep.json and
the RSL document through their own matching rules (first match, most specific path).
"""

from __future__ import annotations

import io
import urllib.robotparser
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st
from protego import Protego

from ledger.vocabulary import Vocabulary
from projections.signals.content import ContentSignals, SignalRenderer
from projections.signals.drift import parse_tdmrep, robots_rules, robots_value, tdmrep_value
from projections.signals.sitewide import ROBOTS, RSL, RSL_NAMESPACE, TDMREP, lines, write_files
from projections.signals.source import CatalogueSignals
from projections.signals.urls import UrlTemplate
from projections.signals.vocabularies import State

RENDERER = SignalRenderer(Vocabulary(), tdm_policy_url="https://music.example/tdm")
TEMPLATE = UrlTemplate.parse("https://music.example/{subject}/{content}")
DEFAULT = RENDERER.render(dict.fromkeys(RENDERER.purposes, State.DENIED))
STATES = st.lists(st.sampled_from([State.ALLOWED, State.DENIED]), min_size=4, max_size=4).map(
    lambda values: RENDERER.render(dict(zip(RENDERER.purposes, values, strict=True)))
)
# Ids that are prefixes of each other ("t1", "t10") test that a content path is exact.
NAMES = st.sampled_from(["a", "ab", "t1", "t10", "t1.0", "x-y", "Zz"])
CATALOGUES = st.dictionaries(
    NAMES, st.tuples(STATES, st.dictionaries(NAMES, STATES, max_size=3)), max_size=5
).map(
    lambda found: [
        CatalogueSignals(subject, catalogue, sorted(contents.items()))
        for subject, (catalogue, contents) in sorted(found.items())
    ]
)


def render(catalogues: list[CatalogueSignals]) -> dict[str, bytes]:
    outs = {name: io.BytesIO() for name in (ROBOTS, TDMREP, RSL)}
    write_files(
        outs,  # type: ignore[arg-type]
        lines(TEMPLATE, DEFAULT, catalogues),
        comment="test",
        license_url="https://music.example/rsl.xml",
    )
    return {name: out.getvalue() for name, out in outs.items()}


def pages(catalogues: list[CatalogueSignals]) -> list[tuple[str, str, ContentSignals]]:
    """Every (url, path, expected signals), plus a content without a fact of its own."""
    found = [(TEMPLATE.url("nobody", "t1"), TEMPLATE.path("nobody", "t1"), DEFAULT)]
    for catalogue in catalogues:
        s = catalogue.subject
        found.append((TEMPLATE.url(s), TEMPLATE.path(s, None), catalogue.catalogue))
        own = dict(catalogue.contents)
        for content in ("t1", "t10", "other"):
            signals = own.get(content, catalogue.catalogue)
            found.append((TEMPLATE.url(s, content), TEMPLATE.path(s, content), signals))
    return found


def as_allow_disallow(robots: str) -> str:
    """Turn each `Content-Usage: PATH train-ai=y|n` into Allow/Disallow for a robots parser."""
    out = []
    for line in robots.splitlines():
        if line.startswith("Content-Usage:"):
            path, prefs = line.split(" ", 2)[1:]
            out.append(("Allow: " if prefs == "train-ai=y" else "Disallow: ") + path)
        elif line.startswith("User-agent"):
            out.append(line)
    return "\n".join(out) + "\n"


@settings(max_examples=60, deadline=None)
@given(CATALOGUES)
def test_protego_longest_match_over_content_usage_agrees_with_every_page(
    catalogues: list[CatalogueSignals],
) -> None:
    robots = render(catalogues)[ROBOTS].decode()
    parser = Protego.parse(as_allow_disallow(robots))
    ours = robots_rules(robots)
    for url, path, expected in pages(catalogues):
        assert parser.can_fetch(url, "SomeAIBot") == (expected.content_usage == "train-ai=y"), url
        assert robots_value(ours, "content-usage", path) == expected.content_usage, url
        assert robots_value(ours, "content-signal", path) == expected.content_signal, url


@settings(max_examples=30, deadline=None)
@given(CATALOGUES)
def test_robots_txt_keeps_crawling_allowed_for_protego_and_urllib(
    catalogues: list[CatalogueSignals],
) -> None:
    robots = render(catalogues)[ROBOTS].decode()
    standard = urllib.robotparser.RobotFileParser()
    standard.parse(robots.splitlines())
    scrapy = Protego.parse(robots)
    for url, _, _ in pages(catalogues):
        assert standard.can_fetch("SomeAIBot", url)
        assert scrapy.can_fetch(url, "SomeAIBot")


def test_urllib_robotparser_first_match_reads_most_specific_first() -> None:
    # urllib.robotparser takes the first matching rule and has no `$`: the file lists a
    # subject's lines before the root's, so a catalogue exception wins there too.
    granted = RENDERER.render(dict.fromkeys(RENDERER.purposes, State.ALLOWED))
    robots = render([CatalogueSignals("alice", granted, [])])[ROBOTS].decode()
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(as_allow_disallow(robots).splitlines())
    assert parser.can_fetch("SomeAIBot", "https://music.example/alice/t1")
    assert not parser.can_fetch("SomeAIBot", "https://music.example/bob/t1")


@settings(max_examples=60, deadline=None)
@given(CATALOGUES)
def test_tdmrep_json_first_match_agrees_with_every_page(catalogues: list[CatalogueSignals]) -> None:
    entries = parse_tdmrep(render(catalogues)[TDMREP])
    for entry in entries:
        assert set(entry) <= {"location", "tdm-reservation", "tdm-policy"}
        assert entry["tdm-reservation"] in (0, 1)
    for url, path, expected in pages(catalogues):
        assert tdmrep_value(entries, path) == (expected.tdm_reservation, expected.tdm_policy), url


@settings(max_examples=40, deadline=None)
@given(CATALOGUES)
def test_the_rsl_document_parses_and_its_most_specific_content_matches_every_page(
    catalogues: list[CatalogueSignals],
) -> None:
    root = ET.fromstring(render(catalogues)[RSL])
    assert root.tag == f"{{{RSL_NAMESPACE}}}rsl"
    rules = []
    for content in root.findall(f"{{{RSL_NAMESPACE}}}content"):
        license_ = content.find(f"{{{RSL_NAMESPACE}}}license")
        assert license_ is not None
        terms = {
            child.tag.split("}")[1]: tuple((child.text or "").split())
            for child in license_
            if child.get("type") == "usage"
        }
        rules.append((content.get("url") or "", terms))
    for url, path, expected in pages(catalogues):
        matching = [
            (pattern, terms)
            for pattern, terms in rules
            if (path == pattern[:-1] if pattern.endswith("$") else path.startswith(pattern))
        ]
        _, terms = max(matching, key=lambda rule: len(rule[0]))
        assert terms.get("permits", ()) == expected.rsl_permits, url
        assert terms.get("prohibits", ()) == expected.rsl_prohibits, url
