"""The URL template: where the web front serves each content, and back.

`LEDGER_CONTENT_URL_TEMPLATE` is an absolute http(s) URL with `{subject}` and, usually,
`{content}` in its path, e.g. `https://music.example/{subject}/{content}`. The catalogue
of a subject is the template cut before `{content}` (`https://music.example/alice/`).
Ids are percent-encoded in URLs (every character but unreserved ones), so a path never
holds a robots.txt special character (`*`, `$`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, quote, unquote, urlsplit

from ledger.errors import InvalidInputError
from ledger.vocabulary import check_identifier

SUBJECT: Final = "{subject}"
CONTENT: Final = "{content}"
MAX_URL_LENGTH: Final = 4096
_BLANK: Final = re.compile(r"[\s\x00-\x1f\x7f]")
_UNRESERVED: Final = re.compile(r"[A-Za-z0-9._~-]+\Z")  # RFC 3986 §2.3: never encoded
_IDS: Final = re.compile(r"[A-Za-z0-9._~-]{1,256}\Z")  # ids check_identifier accepts as is


class InvalidUrlTemplateError(InvalidInputError):
    """Refuse a URL template that cannot map (subject, content) to a page."""

    title = "Invalid URL template"


class MalformedUrlError(InvalidInputError):
    """Refuse a text that is not an absolute http(s) URL."""

    title = "Malformed URL"


@dataclass(frozen=True)
class Page:
    """A URL the template maps back to: a subject's catalogue (content None) or a content."""

    subject: str
    content: str | None


def check_url(url: str) -> str:
    """Return `url` if it is an absolute http(s) URL with a host; raise MalformedUrlError."""
    _split(url)
    return url


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise MalformedUrlError(f"URL must be 1-{MAX_URL_LENGTH} characters, got {url!r:.80}")
    if _BLANK.search(url):
        raise MalformedUrlError(f"URL {url!r:.80} holds whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise MalformedUrlError(f"URL {url!r:.80}: {error}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise MalformedUrlError(f"URL {url!r:.80} is not an absolute http(s) URL with a host")
    return parts


@dataclass(frozen=True)
class UrlTemplate:
    """A validated content URL template; build it with `UrlTemplate.parse`."""

    template: str
    origin: str  # scheme://host[:port], lower-cased
    prefix: str  # the path before {subject}, e.g. "/" or "/music/"
    between: str  # the path between {subject} and {content} ("" if no {content})
    suffix: str  # the path after {content} (or after {subject} if there is none)
    has_content: bool

    @classmethod
    def parse(cls, template: str) -> UrlTemplate:
        """Validate a template; raise InvalidUrlTemplateError saying what is wrong."""
        if SUBJECT not in template:
            raise InvalidUrlTemplateError(
                f"URL template {template!r} has no {SUBJECT}: it cannot name a subject's pages"
            )
        if template.count(SUBJECT) > 1 or template.count(CONTENT) > 1:
            raise InvalidUrlTemplateError(
                f"URL template {template!r} must hold {SUBJECT} (and {CONTENT}) once each"
            )
        probe = template.replace(SUBJECT, "s").replace(CONTENT, "c")
        try:
            check_url(probe)
        except MalformedUrlError:
            raise InvalidUrlTemplateError(
                f"URL template {template!r} is not an absolute http(s) URL with a host"
            ) from None
        scheme, _, rest = template.partition("://")
        slash = rest.find("/")
        authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
        if "{" in authority or "?" in path or "#" in path:
            raise InvalidUrlTemplateError(
                f"URL template {template!r}: {SUBJECT} and {CONTENT} must be in the path, "
                "with no query or fragment"
            )
        prefix, _, after = path.partition(SUBJECT)
        has_content = CONTENT in after
        if CONTENT in prefix:
            raise InvalidUrlTemplateError(
                f"URL template {template!r}: {CONTENT} must come after {SUBJECT}"
            )
        between, _, suffix = after.partition(CONTENT) if has_content else ("", "", after)
        if has_content and not between:
            raise InvalidUrlTemplateError(
                f"URL template {template!r}: {SUBJECT} and {CONTENT} need a separator"
            )
        return cls(
            template,
            f"{scheme.lower()}://{authority.lower()}",
            prefix,
            between,
            suffix,
            has_content,
        )

    def __post_init__(self) -> None:
        """Compile the patterns that map URLs back to pages."""
        ident = r"([^/?#]+)"
        pattern = re.escape(self.prefix) + ident
        if self.has_content:
            catalogue = pattern + re.escape(self.between)
            pattern = f"(?:{pattern}{re.escape(self.between)}{ident}{re.escape(self.suffix)})"
            pattern = f"^(?:{pattern}|{catalogue}?)$"
        else:
            pattern = f"^{pattern}{re.escape(self.suffix)}$"
        object.__setattr__(self, "_pattern", re.compile(pattern))
        # The whole URL at once, for the common case of a plain URL of the template: an
        # exact origin, no query or fragment, nothing to decode.
        plain = f"^{re.escape(self.origin)}{pattern[1:]}"
        object.__setattr__(self, "_plain", re.compile(plain, re.IGNORECASE))

    @property
    def hosts(self) -> tuple[str]:
        """Return the only origin the template names (scheme://host[:port])."""
        return (self.origin,)

    def catalogue_path(self, subject: str) -> str:
        """Return the path of a subject's catalogue: its pages' common prefix."""
        return f"{self.prefix}{_encode(subject)}{self.between if self.has_content else ''}"

    def content_path(self, subject: str, content: str) -> str | None:
        """Return the path of a content's page (None if the template has no {content})."""
        if not self.has_content:
            return None
        return f"{self.catalogue_path(subject)}{_encode(content)}{self.suffix}"

    def path(self, subject: str, content: str | None) -> str:
        """Return the path of a content's page, or of the catalogue for content None."""
        if content is None:
            return self.catalogue_path(subject)
        found = self.content_path(subject, content)
        return self.catalogue_path(subject) if found is None else found

    def url(self, subject: str, content: str | None = None) -> str:
        """Return the absolute URL of a content's page, or of the catalogue."""
        return self.origin + self.path(subject, content)

    def page(self, url: str) -> Page | None:
        """Return the page a URL names, or None if the template does not name it.

        Raises MalformedUrlError for a text `check_url` refuses. Scheme and host compare
        case-insensitively; a query or fragment is ignored.
        """
        plain = self._plain.match(url) if isinstance(url, str) else None  # type: ignore[attr-defined]
        if plain is not None and "%" not in url and len(url) <= MAX_URL_LENGTH:
            found = [g for g in plain.groups() if g is not None]
            if _IDS.match(found[0]) and (len(found) == 1 or _IDS.match(found[1])):
                return Page(found[0], found[1] if len(found) > 1 else None)
        parts = _split(url)
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        if origin != self.origin:
            return None
        match = self._pattern.match(parts.path)  # type: ignore[attr-defined]
        if match is None:
            return None
        groups = [g for g in match.groups() if g is not None]
        try:
            subject = check_identifier(unquote(groups[0]), field="subject")
            content = (
                check_identifier(unquote(groups[1]), field="content") if len(groups) > 1 else None
            )
        except InvalidInputError:
            return None
        return Page(subject, content)


def _encode(value: str) -> str:
    if _UNRESERVED.match(value):  # the common case, ten times faster than quote()
        return value
    return quote(value, safe="")
