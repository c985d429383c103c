"""AI signals under BRIEF §2.1: model-less questions, conditions, works with contributors.

Signals answer questions without a model (only model-less events cover them), say CAWG
`constrained` for an allowance decided by a grant with conditions, and ask a registered
work's contributors. Checked per page, in the bulk lookup and in the site-wide files, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses

import pytest

from projections.signals.drift import robots_rules
from services.bootstrap import Services

pytestmark = pytest.mark.timeout(120)

TEMPLATE = "https://music.example/{subject}/{content}"
URL = "https://music.example/label/t1"


@pytest.fixture
def signals_services(services: Services) -> Services:
    services.settings = dataclasses.replace(services.settings, content_url_template=TEMPLATE)
    services.signals.configure(None, TEMPLATE)
    return services


def cawg(services: Services, subject: str, content: str) -> dict[str, str]:
    return dict(services.signals.page(subject, content).signals.training_mining)


def test_a_model_specific_grant_moves_no_signal(signals_services: Services) -> None:
    services = signals_services
    services.ledger.grant("artist-1", "ai-training", party="*", model="aurora-7")
    assert cawg(services, "artist-1", "track-1")["cawg.ai_training"] == "notAllowed"
    assert services.signals.publish().published == []
    services.ledger.grant("artist-1", "ai-training", party="*")
    assert cawg(services, "artist-1", "track-1")["cawg.ai_training"] == "allowed"
    services.ledger.revoke("artist-1", "ai-training", party="*", model="aurora-7")
    assert cawg(services, "artist-1", "track-1")["cawg.ai_training"] == "allowed"


def test_a_grant_with_conditions_is_constrained_in_every_read(signals_services: Services) -> None:
    services = signals_services
    services.ledger.grant(
        "artist-1", "ai-training", party="*", conditions=["credit the artist in the model card"]
    )
    assert cawg(services, "artist-1", "track-1")["cawg.ai_training"] == "constrained"
    (result,) = services.signals.lookup(["https://music.example/artist-1/track-1"])["results"]
    entries = result["signals"]["training_mining"]["entries"]
    assert entries["cawg.ai_training"] == {"use": "constrained"}


def test_a_contributor_who_is_denied_denies_the_work_everywhere(
    signals_services: Services,
) -> None:
    services = signals_services
    ledger = services.ledger
    for purpose in ("ai-training", "ai-generative-training"):
        ledger.grant("label", purpose, party="*")
    ledger.register_content("t1", "label", [{"subject": "singer", "aspects": ["voice"]}])
    page = services.signals.page("label", "t1")
    assert page.decisions["ai-training"].allowed is False
    assert str(page.decisions["ai-training"].basis) == "contributor-denied"
    assert page.signals.content_usage == "train-ai=n"
    assert cawg(services, "label", "t2")["cawg.ai_training"] == "allowed"  # not registered
    (result,) = services.signals.lookup([URL])["results"]
    assert result["decisions"]["ai-training"]["basis"] == "contributor-denied"
    robots = (services.signals.site_files().files["robots.txt"].path).read_text()
    assert "Content-Usage: /label/t1$ train-ai=n" in robots
    assert "Content-Usage: /label/ train-ai=y" in robots
    assert robots_rules(robots)
    for purpose in ("ai-training", "ai-generative-training"):
        ledger.grant("singer", purpose, party="*", aspect="voice")
    assert services.signals.page("label", "t1").signals.content_usage == "train-ai=y"
