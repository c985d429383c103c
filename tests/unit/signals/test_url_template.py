"""The URL template maps (subject, content) to a page and back; a bad one is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.signals.urls import (
    InvalidUrlTemplateError,
    MalformedUrlError,
    Page,
    UrlTemplate,
    check_url,
)

TEMPLATE = UrlTemplate.parse("https://Music.example/{subject}/{content}")
IDS = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters=",/\\?#%"
    ),
    min_size=1,
    max_size=40,
).filter(lambda s: not any(c.isspace() for c in s))


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("https://music.example/{content}", "no {subject}"),
        ("https://music.example/tracks", "no {subject}"),
        ("ftp://music.example/{subject}", "not an absolute http"),
        ("music.example/{subject}", "not an absolute http"),
        ("https://{subject}.music.example/", "must be in the path"),
        ("https://music.example/{content}/{subject}", "must come after"),
        ("https://music.example/{subject}{content}", "need a separator"),
        ("https://music.example/{subject}?c={content}", "no query"),
    ],
)
def test_a_template_that_cannot_name_pages_is_refused_with_the_reason(
    template: str, why: str
) -> None:
    with pytest.raises(InvalidUrlTemplateError, match=why.replace("{", r"\{").replace("}", r"\}")):
        UrlTemplate.parse(template)


@given(IDS, IDS)
def test_every_page_url_parses_back_to_its_subject_and_content(subject: str, content: str) -> None:
    assert TEMPLATE.page(TEMPLATE.url(subject, content)) == Page(subject, content)
    assert TEMPLATE.page(TEMPLATE.url(subject)) == Page(subject, None)


@given(IDS, IDS)
def test_paths_never_hold_a_robots_special_character(subject: str, content: str) -> None:
    path = TEMPLATE.content_path(subject, content) or ""
    assert not set(path) & {"*", "$", " "}


def test_urls_the_template_does_not_name_are_not_pages() -> None:
    assert TEMPLATE.page("https://other.example/alice/t1") is None
    assert TEMPLATE.page("https://music.example/alice/t1/extra") is None
    assert TEMPLATE.page("https://music.example/") is None
    assert TEMPLATE.page("http://music.example/alice/t1") is None  # another origin
    assert TEMPLATE.page("https://MUSIC.example/alice/t1?x=1#y") == Page("alice", "t1")


@pytest.mark.parametrize("url", ["", "not a url", "/alice/t1", "mailto:a@b.c", "https://", 7])
def test_a_text_that_is_not_an_http_url_is_malformed(url: object) -> None:
    with pytest.raises(MalformedUrlError):
        check_url(url)  # type: ignore[arg-type]
