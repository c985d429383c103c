"""The decision rules of BRIEF §2, one behaviour per test, on the pure function."""

from __future__ import annotations

from ledger.vocabulary import Basis
from tests.unit.ledger.histories import History


def test_no_events_deny_the_platform_with_no_terms_accepted() -> None:
    decision = History().ask("ai-training")
    assert (decision.allowed, decision.basis, decision.event_ids) == (
        False,
        Basis.NO_TERMS_ACCEPTED,
        (),
    )
    assert decision.terms_version is None


def test_terms_default_granted_allows_the_platform_and_names_the_acceptance() -> None:
    h = History()
    h.publish("v1", "2024-01-01", ai_training="granted")
    acceptance = h.accept("v1", "2024-02-01")
    decision = h.ask("ai-training", when="2024-03-01")
    assert decision.allowed
    assert decision.basis is Basis.TERMS_DEFAULT
    assert decision.event_ids == (acceptance,)
    assert decision.terms_version == "v1"


def test_terms_without_a_clause_for_the_purpose_deny_with_terms_default() -> None:
    h = History()
    h.publish("v1", "2024-01-01", ai_training="granted")
    h.accept("v1", "2024-02-01")
    decision = h.ask("data-mining", when="2024-03-01")
    assert (decision.allowed, decision.basis) == (False, Basis.TERMS_DEFAULT)


def test_accepting_terms_is_never_consent_to_an_opt_in_purpose() -> None:
    h = History()
    h.publish("v1", "2024-01-01", ai_training="granted", ai_generative_training="denied")
    h.accept("v1", "2024-02-01")
    decision = h.ask("ai-generative-training", when="2024-03-01")
    assert (decision.allowed, decision.basis) == (False, Basis.OPT_IN_REQUIRED)
    assert decision.terms_version == "v1"


def test_third_parties_never_get_a_terms_default() -> None:
    h = History()
    h.publish("v1", "2024-01-01", ai_training="granted")
    h.accept("v1", "2024-02-01")
    for party in ("aurora-labs", "*"):
        decision = h.ask("ai-training", party=party, when="2024-03-01")
        assert (decision.allowed, decision.basis) == (False, Basis.OPT_IN_REQUIRED)


def test_acceptance_before_terms_take_effect_keeps_the_previous_version_in_force() -> None:
    h = History()
    h.publish("v1", "2024-01-01", ai_training="granted")
    h.publish("v2", "2025-05-14", ai_training="denied")
    h.accept("v1", "2024-02-01")
    h.accept("v2", "2025-05-01")  # accepted before v2 is in force
    before = h.ask("ai-training", when="2025-05-10")
    after = h.ask("ai-training", when="2025-05-20")
    assert (before.allowed, before.terms_version) == (True, "v1")
    assert (after.allowed, after.terms_version) == (False, "v2")


def test_accepting_terms_before_they_take_effect_with_no_earlier_version_means_none() -> None:
    h = History()
    h.publish("v2", "2025-05-14", ai_training="granted")
    h.accept("v2", "2025-05-01")
    decision = h.ask("ai-training", when="2025-05-10")
    assert (decision.basis, decision.terms_version) == (Basis.NO_TERMS_ACCEPTED, None)


def test_explicit_revocation_beats_a_granted_terms_default() -> None:
    h = History()
    h.publish("v1", "2024-01-01", ai_training="granted")
    h.accept("v1", "2024-02-01")
    revocation = h.revoke("ai-training", effective="2024-03-01")
    decision = h.ask("ai-training", when="2024-04-01")
    assert (decision.allowed, decision.basis, decision.event_ids) == (
        False,
        Basis.EXPLICIT_REVOCATION,
        (revocation,),
    )
    assert decision.terms_version == "v1"


def test_explicit_grant_beats_a_denied_terms_default() -> None:
    h = History()
    h.publish("v1", "2024-01-01", ai_training="denied")
    h.accept("v1", "2024-02-01")
    h.grant("ai-training", effective="2024-03-01")
    assert h.ask("ai-training", when="2024-04-01").basis is Basis.EXPLICIT_GRANT


def test_content_revocation_beats_catalogue_grant() -> None:
    h = History()
    h.grant("ai-training", effective="2025-01-01")
    h.revoke("ai-training", content=["t2"], effective="2024-12-01")  # older, but more specific
    assert h.ask("ai-training", content="t1").allowed
    assert not h.ask("ai-training", content="t2").allowed
    assert h.ask("ai-training").allowed  # the catalogue as such


def test_content_grant_does_not_cover_the_catalogue_question() -> None:
    h = History()
    h.grant("ai-generative-training", content=["t1", "t2"])
    assert h.ask("ai-generative-training", content="t2").allowed
    assert h.ask("ai-generative-training").basis is Basis.OPT_IN_REQUIRED
    assert not h.ask("ai-generative-training", content="t3").allowed


def test_aspect_grant_covers_only_its_aspect_and_not_the_question_about_all() -> None:
    h = History()
    grant = h.grant("ai-generative-training", aspect="voice")
    assert h.ask("ai-generative-training", aspect="voice").event_ids == (grant,)
    assert not h.ask("ai-generative-training", aspect="music").allowed
    assert not h.ask("ai-generative-training").allowed


def test_grant_for_all_aspects_covers_a_question_about_one_aspect() -> None:
    h = History()
    h.grant("ai-generative-training")
    assert h.ask("ai-generative-training", aspect="likeness").allowed


def test_aspect_revocation_beats_a_later_grant_for_all_aspects() -> None:
    h = History()
    h.revoke("ai-generative-training", aspect="voice", effective="2024-01-01")
    h.grant("ai-generative-training", effective="2025-01-01")
    assert not h.ask("ai-generative-training", aspect="voice").allowed
    assert h.ask("ai-generative-training", aspect="music").allowed


def test_named_party_beats_open_revocation_and_open_events_bind_other_third_parties() -> None:
    h = History()
    h.revoke("ai-training", party="*", content=["t1"], effective="2025-01-01")
    h.grant("ai-training", party="aurora-labs", effective="2024-01-01")  # catalogue, older
    assert h.ask("ai-training", party="aurora-labs", content="t1").allowed
    other = h.ask("ai-training", party="crawlbot", content="t1")
    assert (other.allowed, other.basis) == (False, Basis.EXPLICIT_REVOCATION)


def test_open_grant_applies_to_any_named_third_party_but_never_to_the_platform() -> None:
    h = History()
    h.grant("data-mining", party="*")
    assert h.ask("data-mining", party="crawlbot").allowed
    assert h.ask("data-mining", party="*").allowed
    assert h.ask("data-mining").basis is Basis.NO_TERMS_ACCEPTED


def test_question_about_any_third_party_ignores_grants_to_named_parties() -> None:
    h = History()
    h.grant("data-mining", party="aurora-labs")
    assert h.ask("data-mining", party="*").basis is Basis.OPT_IN_REQUIRED


def test_latest_effective_event_wins_within_equal_specificity() -> None:
    h = History()
    revocation = h.revoke("ai-training", effective="2025-03-01")
    h.grant("ai-training", effective="2025-02-01")  # recorded later, effective earlier
    decision = h.ask("ai-training", when="2025-04-01")
    assert decision.event_ids == (revocation,)
    assert h.ask("ai-training", when="2025-02-15").allowed


def test_equal_effective_times_are_broken_by_ledger_position() -> None:
    h = History()
    h.grant("ai-training", effective="2025-03-01")
    revocation = h.revoke("ai-training", effective="2025-03-01")
    assert h.ask("ai-training").event_ids == (revocation,)


def test_expiry_is_exclusive_and_an_expired_grant_denies_with_grant_expired() -> None:
    h = History()
    grant = h.grant("ai-generative-training", effective="2025-01-01", expires="2026-01-01")
    just_before = h.ask("ai-generative-training", when="2025-12-31T23:59:59.999999Z")
    at_expiry = h.ask("ai-generative-training", when="2026-01-01")
    assert just_before.allowed
    assert (at_expiry.allowed, at_expiry.basis, at_expiry.event_ids) == (
        False,
        Basis.GRANT_EXPIRED,
        (grant,),
    )


def test_expired_grant_falls_back_to_a_granted_terms_default() -> None:
    h = History()
    h.publish("v1", "2024-01-01", ai_training="granted")
    h.accept("v1", "2024-01-02")
    h.grant("ai-training", effective="2025-01-01", expires="2025-06-01")
    decision = h.ask("ai-training", when="2025-07-01")
    assert (decision.allowed, decision.basis) == (True, Basis.TERMS_DEFAULT)


def test_expired_grant_over_a_broader_revocation_reports_grant_expired() -> None:
    h = History()
    h.revoke("ai-training", effective="2024-01-01")
    grant = h.grant("ai-training", content=["t1"], effective="2025-01-01", expires="2025-06-01")
    decision = h.ask("ai-training", content="t1", when="2025-07-01")
    assert (decision.allowed, decision.basis, decision.event_ids) == (
        False,
        Basis.GRANT_EXPIRED,
        (grant,),
    )


def test_voided_grant_is_ignored_once_the_void_is_known() -> None:
    h = History()
    grant = h.grant("ai-generative-training", effective="2025-01-01")
    before_void = h.clock
    h.void(grant)
    assert h.ask("ai-generative-training").basis is Basis.OPT_IN_REQUIRED
    assert h.ask("ai-generative-training", known_at=before_void).event_ids == (grant,)


def test_void_acts_whatever_the_effective_instant_asked() -> None:
    h = History()
    grant = h.grant("ai-generative-training", effective="2020-01-01")
    h.void(grant)
    assert not h.ask("ai-generative-training", when="2021-01-01").allowed


def test_voided_acceptance_takes_its_terms_out_of_force() -> None:
    h = History()
    h.publish("v1", "2024-01-01", ai_training="granted")
    h.publish("v2", "2025-01-01", ai_training="denied")
    h.accept("v1", "2024-02-01")
    wrong = h.accept("v2", "2025-02-01")
    h.void(wrong)
    decision = h.ask("ai-training", when="2025-03-01")
    assert (decision.allowed, decision.terms_version) == (True, "v1")


def test_erased_subject_is_denied_everything_from_the_moment_erasure_is_known() -> None:
    h = History()
    h.grant("ai-training", effective="2020-01-01")
    before = h.clock
    erasure = h.erase()
    decision = h.ask("ai-training", when="2021-01-01")
    assert (decision.allowed, decision.basis, decision.event_ids) == (
        False,
        Basis.ERASED,
        (erasure,),
    )
    assert h.ask("ai-training", when="2021-01-01", known_at=before).allowed


def test_future_effective_grant_applies_only_from_its_effective_time() -> None:
    h = History()
    h.grant("ai-generative-training", effective="2030-01-01")
    assert not h.ask("ai-generative-training", when="2029-12-31").allowed
    assert h.ask("ai-generative-training", when="2030-01-01").allowed


def test_backfilled_consent_changes_the_past_only_as_known_after_it_was_entered() -> None:
    h = History()
    h.publish("v1", "2020-01-01", ai_training="denied")
    h.accept("v1", "2020-01-02")
    entered_before = h.clock
    h.grant("ai-training", effective="2021-06-01")  # paper form entered now
    now_view = h.ask("ai-training", when="2022-01-01")
    then_view = h.ask("ai-training", when="2022-01-01", known_at=entered_before)
    assert (now_view.allowed, then_view.allowed) == (True, False)
    assert then_view.basis is Basis.TERMS_DEFAULT


def test_answer_reports_the_ledger_position_it_reflects() -> None:
    h = History()
    h.grant("ai-training")
    h.grant("data-mining")
    h.publish("v1", "2024-01-01", ai_training="granted")
    assert h.ask("ai-training").position == 3 == h.head
