"""The site-wide files: robots.txt, tdmrep.json and rsl.xml, written as a stream.

Every file says the same as the per-content headers, for paths of the URL template:
the site default (a catalogue without any fact for `*`) at the template's root, then a
line per catalogue whose signals differ from the default, and a line per content whose
signals differ from its catalogue's. The most specific path wins, as in robots.txt
(RFC 9309 §2.2.2); the lines are also written most specific first (a subject's contents,
then its catalogue, the root last), which is what first-match readers (TDMRep's
tdmrep.json, urllib.robotparser) need. Paths: a catalogue is a prefix (`/alice/`), a
content an exact path (`/alice/track-1$` in robots.txt and RSL, where `$` anchors the end).

Writers take an iterator and write to a binary stream, so memory stays flat however many
subjects there are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import IO, Final
from xml.sax.saxutils import quoteattr

import orjson

from projections.signals.content import ContentSignals
from projections.signals.source import CatalogueSignals
from projections.signals.urls import UrlTemplate

ROBOTS: Final = "robots.txt"
TDMREP: Final = "tdmrep.json"
RSL: Final = "rsl.xml"
FILES: Final = (ROBOTS, TDMREP, RSL)
MEDIA_TYPES: Final = {
    ROBOTS: "text/plain; charset=utf-8",
    TDMREP: "application/json",
    RSL: "application/rsl+xml",
}
RSL_NAMESPACE: Final = "https://rslstandard.org/rsl"
WELL_KNOWN_PATHS: Final = {
    ROBOTS: "/robots.txt",
    TDMREP: "/.well-known/tdmrep.json",
    RSL: "/rsl.xml",
}
"""Where a web front publishes each file on the template's origin (the audit reads there)."""

_FLUSH: Final = 1 << 16
_XML_SPECIAL: Final = re.compile(r"[&<>\"']")


class Line:
    """One path of a site-wide file and the signals that hold there."""

    __slots__ = ("parent", "path", "prefix", "signals")

    def __init__(
        self, path: str, prefix: bool, signals: ContentSignals, parent: ContentSignals | None
    ) -> None:
        self.path = path
        self.prefix = prefix  # True: the path and everything below; False: exactly the path
        self.signals = signals
        self.parent = parent  # the signals of the enclosing path (None at the root)


def lines(
    template: UrlTemplate, default: ContentSignals, catalogues: Iterable[CatalogueSignals]
) -> Iterator[Line]:
    """Yield every path with its signals, most specific first, the root last."""
    for catalogue in catalogues:
        for content, signals in catalogue.contents:
            path = template.content_path(catalogue.subject, content)
            if path is not None and signals is not catalogue.catalogue:
                yield Line(path, False, signals, catalogue.catalogue)
        if catalogue.catalogue is not default:
            yield Line(
                template.catalogue_path(catalogue.subject), True, catalogue.catalogue, default
            )
    yield Line(template.prefix, True, default, None)


def _robots_path(line: Line) -> str:
    return line.path if line.prefix else line.path + "$"


def _differs(line: Line, value: object, parent_value: object) -> bool:
    return line.parent is None or value != parent_value


class _Buffered:
    """Collect small writes and pass them on in 64 KiB pieces."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)
        if self.size >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        self.out.write(b"".join(self.parts))
        self.parts, self.size = [], 0


def _robots_parts(line: Line) -> tuple[tuple[str, str], ...]:
    """Return the (directive, value) pairs a path states beyond its parent."""
    signals, parent = line.signals, line.parent
    parts = []
    if signals.content_usage is not None and _differs(
        line, signals.content_usage, parent and parent.content_usage
    ):
        parts.append(("Content-Usage", signals.content_usage))
    if signals.content_signal is not None and _differs(
        line, signals.content_signal, parent and parent.content_signal
    ):
        parts.append(("Content-Signal", signals.content_signal))
    return tuple(parts)


def _tdmrep_fields(line: Line) -> dict[str, object] | None:
    signals, parent = line.signals, line.parent
    value = (signals.tdm_reservation, signals.tdm_policy)
    if not _differs(line, value, parent and (parent.tdm_reservation, parent.tdm_policy)):
        return None
    fields: dict[str, object] = {"tdm-reservation": signals.tdm_reservation}
    if signals.tdm_policy is not None:
        fields["tdm-policy"] = signals.tdm_policy
    return fields


def _rsl_license(line: Line) -> str | None:
    license_xml = line.signals.rsl_license()
    parent = line.parent
    if not license_xml or not _differs(line, license_xml, parent and parent.rsl_license()):
        return None
    return license_xml


class _Rendered:
    """What a (signals, parent) pair states in each file, computed once per pair."""

    __slots__ = ("robots", "rsl", "tdmrep")

    def __init__(self, line: Line) -> None:
        self.robots = _robots_parts(line)
        self.tdmrep = _tdmrep_fields(line)
        self.rsl = _rsl_license(line)


class _Renderings:
    """Cache `_Rendered` by the identity of a line's signals and parent.

    Requires signals from one `SignalRenderer` (equal signals are the same object).
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, bool], _Rendered] = {}

    def of(self, line: Line) -> _Rendered:
        key = (id(line.signals), id(line.parent), line.parent is None)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = _Rendered(line)
        return found


def _attr(path: str) -> str:
    return quoteattr(path) if _XML_SPECIAL.search(path) else f'"{path}"'


def robots_rules(line: Line) -> bytes:
    """Return a path's robots.txt rules: AIPREF `Content-Usage` and `Content-Signal`."""
    path = _robots_path(line)
    return "".join(f"{d}: {path} {v}\n" for d, v in _robots_parts(line)).encode()


def tdmrep_entry(line: Line) -> bytes:
    """Return a path's tdmrep.json entry (`location`, `tdm-reservation`, `tdm-policy`)."""
    fields = _tdmrep_fields(line)
    if fields is None:
        return b""
    return orjson.dumps({"location": line.path + ("*" if line.prefix else ""), **fields})


def rsl_content(line: Line) -> bytes:
    """Return a path's RSL `<content url>` element with its `permits`/`prohibits`."""
    license_xml = _rsl_license(line)
    if license_xml is None:
        return b""
    return f"  <content url={_attr(_robots_path(line))}>{license_xml}</content>\n".encode()


def write_files(
    outs: dict[str, IO[bytes]],
    paths: Iterable[Line],
    *,
    comment: str,
    license_url: str | None,
) -> None:
    """Write any of robots.txt, tdmrep.json and rsl.xml (keys of `outs`) in one pass.

    robots.txt keeps crawling allowed (`Allow: /`): the signals are about use, not
    access; it names the RSL document with `License:` when `license_url` is given.
    """
    robots = _Buffered(outs[ROBOTS]) if ROBOTS in outs else None
    tdmrep = _Buffered(outs[TDMREP]) if TDMREP in outs else None
    rsl = _Buffered(outs[RSL]) if RSL in outs else None
    if robots is not None:
        robots.write(f"# {comment}\nUser-agent: *\n".encode())
    if tdmrep is not None:
        tdmrep.write(b"[")
    if rsl is not None:
        rsl.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- {comment} -->\n'.encode())
        rsl.write(f'<rsl xmlns="{RSL_NAMESPACE}">\n'.encode())
    first = True
    renderings = _Renderings()
    for line in paths:
        rendered = renderings.of(line)
        if robots is not None and rendered.robots:
            path = _robots_path(line)
            robots.write("".join(f"{d}: {path} {v}\n" for d, v in rendered.robots).encode())
        if tdmrep is not None and rendered.tdmrep is not None:
            location = line.path + ("*" if line.prefix else "")
            entry = orjson.dumps({"location": location, **rendered.tdmrep})
            tdmrep.write((b"\n" if first else b",\n") + entry)
            first = False
        if rsl is not None and rendered.rsl is not None:
            url = _attr(_robots_path(line))
            rsl.write(f"  <content url={url}>{rendered.rsl}</content>\n".encode())
    if robots is not None:
        robots.write(b"Allow: /\n")
        if license_url is not None:
            robots.write(f"\nLicense: {license_url}\n".encode())
        robots.flush()
    if tdmrep is not None:
        tdmrep.write(b"\n]\n")
        tdmrep.flush()
    if rsl is not None:
        rsl.write(b"</rsl>\n")
        rsl.flush()
