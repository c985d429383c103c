"""The SoundCloud 2024-2025 scenario: load it into a ledger and walk through its rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.application import ConsentLedger, Receipt
from ledger.events import ConsentGranted, Entry, EventVoided
from ledger.instants import format_instant, parse_instant

ALL_PURPOSES_2024 = [
    {"purpose": "ai-generative-training", "default": "denied"},
    {"purpose": "ai-training", "default": "granted"},
    {"purpose": "ai-inference", "default": "granted"},
    {"purpose": "data-mining", "default": "granted"},
    {"purpose": "personalization", "default": "granted"},
    {"purpose": "content-identification", "default": "granted"},
    {"purpose": "fraud-detection", "default": "granted"},
]
ALL_PURPOSES_2025 = [
    {"purpose": "ai-generative-training", "default": "denied"},
    {"purpose": "ai-training", "default": "denied"},
    {"purpose": "ai-inference", "default": "denied"},
    {"purpose": "data-mining", "default": "denied"},
    {"purpose": "personalization", "default": "granted"},
    {"purpose": "content-identification", "default": "granted"},
    {"purpose": "fraud-detection", "default": "granted"},
]


def t(text: str) -> datetime:
    """Parse a scenario time."""
    return parse_instant(text)


@dataclass(frozen=True)
class Scenario:
    """What the demo recorded that the walkthrough refers to."""

    mistaken_grant: Receipt
    void: Receipt
    paper_consent: Receipt


def load_demo(ledger: ConsentLedger) -> Scenario:
    """Record the SoundCloud story: two terms versions, artists opting in and out."""
    web = {"channel": "web", "method": "settings-toggle"}
    ledger.publish_terms("2024-02", t("2024-02-07"), ALL_PURPOSES_2024)
    ledger.publish_terms("2025-05", t("2025-05-14"), ALL_PURPOSES_2025)

    # Nova accepted both versions: the default for ai-training flips with the terms.
    ledger.accept_terms("artist-nova", "2024-02", effective_at=t("2024-02-10"), evidence=web)
    ledger.accept_terms("artist-nova", "2025-05", effective_at=t("2025-05-20"), evidence=web)
    mistaken = ledger.grant(
        "artist-nova", "ai-generative-training", effective_at=t("2025-06-01"), evidence=web
    )
    void = ledger.void(mistaken.event_id, "entered for the wrong artist by support")

    # Echo opted out of ai-training under the 2024 terms, later opted in to voice models.
    ledger.accept_terms("artist-echo", "2024-02", effective_at=t("2024-02-12"), evidence=web)
    ledger.revoke(
        "artist-echo", "ai-training", effective_at=t("2024-03-01"), reason="artist opted out"
    )
    ledger.accept_terms("artist-echo", "2025-05", effective_at=t("2025-05-22"), evidence=web)
    ledger.grant(
        "artist-echo",
        "ai-generative-training",
        aspect="voice",
        effective_at=t("2025-06-01"),
        evidence={"channel": "web", "method": "opt-in-form", "email": "echo@example.org"},
    )

    # Lumen allowed training on the catalogue, then pulled one track.
    ledger.accept_terms("artist-lumen", "2025-05", effective_at=t("2025-05-15"), evidence=web)
    ledger.grant("artist-lumen", "ai-training", effective_at=t("2025-06-01"), evidence=web)
    ledger.revoke(
        "artist-lumen",
        "ai-training",
        content_ids=["lumen-track-2"],
        effective_at=t("2025-07-01"),
        reason="unreleased demo",
    )

    # Vega licensed a third-party lab until 2026, and refused every other third party.
    ledger.accept_terms("artist-vega", "2025-05", effective_at=t("2025-05-16"), evidence=web)
    ledger.grant(
        "artist-vega",
        "ai-generative-training",
        party="aurora-labs",
        effective_at=t("2025-08-01"),
        expires_at=t("2026-01-01"),
        evidence={"channel": "contract", "method": "signed-licence", "notice_id": "LIC-77"},
    )
    ledger.revoke("artist-vega", "ai-training", party="*", effective_at=t("2025-05-16"))

    # Orion's consent was on paper in 2023 and entered (backfilled) today.
    paper = ledger.grant(
        "artist-orion",
        "ai-training",
        effective_at=t("2023-11-15"),
        evidence={"channel": "paper", "method": "signed-form", "name": "O. Rion"},
    )
    ledger.accept_terms("artist-ghost", "2024-02", effective_at=t("2024-03-01"), evidence=web)
    ledger.grant(
        "artist-ghost",
        "ai-training",
        effective_at=t("2024-04-01"),
        evidence={"channel": "web", "method": "opt-in-form", "email": "ghost@example.org"},
    )
    ledger.erase("artist-ghost", reason="account deleted (GDPR Art. 17)")
    return Scenario(mistaken_grant=mistaken, void=void, paper_consent=paper)


def find_scenario(ledger: ConsentLedger) -> Scenario | None:
    """Return the demo's landmarks if the demo is already loaded, else None."""
    if ledger.terms("2024-02") is None:
        return None
    nova = ledger.subject_entries("artist-nova")
    orion = ledger.subject_entries("artist-orion")
    mistaken = next((e for e in nova if isinstance(e.event, ConsentGranted)), None)
    void = next((e for e in nova if isinstance(e.event, EventVoided)), None)
    paper = next((e for e in orion if isinstance(e.event, ConsentGranted)), None)
    if mistaken is None or void is None or paper is None:
        return None

    def receipt(entry: Entry) -> Receipt:
        return Receipt(entry.event.event_id, entry.position, entry.event.recorded_at)

    return Scenario(receipt(mistaken), receipt(void), receipt(paper))


def walkthrough(ledger: ConsentLedger, scenario: Scenario, say: Callable[[str], None]) -> None:
    """Print the decisions that show each rule at work."""
    before_paper = scenario.paper_consent.recorded_at - timedelta(microseconds=1)
    steps: list[tuple[str, dict[str, object]]] = [
        (
            "Terms default: 2024 terms defaulted ai-training to granted",
            {"subject": "artist-nova", "purpose": "ai-training", "at": t("2024-06-01")},
        ),
        (
            "New terms accepted in May 2025 flip the default to denied",
            {"subject": "artist-nova", "purpose": "ai-training", "at": t("2025-06-01")},
        ),
        (
            "Opt-in purpose: accepting terms is never consent to generative training",
            {"subject": "artist-lumen", "purpose": "ai-generative-training"},
        ),
        (
            "An explicit opt-out beats the 2024 default",
            {"subject": "artist-echo", "purpose": "ai-training", "at": t("2024-06-01")},
        ),
        (
            "Aspect: Echo opted in for voice only",
            {"subject": "artist-echo", "purpose": "ai-generative-training", "aspect": "voice"},
        ),
        (
            "…which does not cover the music itself",
            {"subject": "artist-echo", "purpose": "ai-generative-training", "aspect": "music"},
        ),
        (
            "Catalogue grant covers Lumen's first track",
            {"subject": "artist-lumen", "purpose": "ai-training", "content": "lumen-track-1"},
        ),
        (
            "A content revocation beats the catalogue grant",
            {"subject": "artist-lumen", "purpose": "ai-training", "content": "lumen-track-2"},
        ),
        (
            "Third party with an explicit grant",
            {
                "subject": "artist-vega",
                "purpose": "ai-generative-training",
                "party": "aurora-labs",
                "at": t("2025-09-01"),
            },
        ),
        (
            "…whose grant expired on 2026-01-01",
            {
                "subject": "artist-vega",
                "purpose": "ai-generative-training",
                "party": "aurora-labs",
                "at": t("2026-02-01"),
            },
        ),
        (
            "Third parties never get a terms default",
            {"subject": "artist-nova", "purpose": "ai-training", "party": "crawlbot"},
        ),
        (
            "An open revocation for '*' binds every third party",
            {"subject": "artist-vega", "purpose": "ai-training", "party": "crawlbot"},
        ),
        (
            "Backfilled paper consent: allowed in 2024, as we know it now",
            {"subject": "artist-orion", "purpose": "ai-training", "at": t("2024-01-01")},
        ),
        (
            "…but as the ledger knew it before the paper form was entered: denied",
            {
                "subject": "artist-orion",
                "purpose": "ai-training",
                "at": t("2024-01-01"),
                "known_at": before_paper,
            },
        ),
        (
            "A voided grant no longer counts",
            {"subject": "artist-nova", "purpose": "ai-generative-training"},
        ),
        (
            "…though it did, as known before the void",
            {
                "subject": "artist-nova",
                "purpose": "ai-generative-training",
                "known_at": scenario.mistaken_grant.recorded_at,
            },
        ),
        (
            "An erased subject is denied everything",
            {"subject": "artist-ghost", "purpose": "ai-training"},
        ),
    ]
    say("Consent Ledger demo — the SoundCloud 2024-2025 story")
    for title, q in steps:
        decision = ledger.check(**q)  # type: ignore[arg-type]
        verdict = "ALLOWED" if decision.allowed else "DENIED "
        when = q.get("at")
        at = format_instant(when)[:10] if isinstance(when, datetime) else "now"
        who = f"{q['subject']} {q['purpose']}"
        extra = " ".join(
            f"{k}={q[k]}" for k in ("party", "content", "aspect") if k in q and q[k] is not None
        )
        say(f"- {title}")
        say(
            f"    {verdict} {who} {extra} at {at}: basis {decision.basis.value}, "
            f"terms {decision.terms_version or '-'}, position {decision.position}"
        )
