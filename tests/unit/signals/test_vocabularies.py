"""One decision per purpose speaks every vocabulary; "no preference" is not "no"."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.vocabulary import Vocabulary
from projections.signals.content import OUTPUTS, SignalRenderer
from projections.signals.vocabularies import (
    AIPREF,
    Combine,
    Preference,
    Rule,
    SignalVocabulary,
    State,
    signal_tables,
)

VOCABULARY = Vocabulary()
RENDERER = SignalRenderer(VOCABULARY, tdm_policy_url="https://music.example/tdm-policy")
PURPOSES = RENDERER.purposes


def states(default: State = State.DENIED, **named: State) -> dict[str, State]:
    """Every signal purpose in `default` state, except `purpose_name=State`."""
    return {p: named.get(p.replace("-", "_"), default) for p in PURPOSES}


def test_the_signals_follow_the_four_purposes_with_a_cawg_label() -> None:
    assert PURPOSES == ("ai-generative-training", "ai-training", "ai-inference", "data-mining")


def test_everything_allowed_then_one_revocation_changes_every_vocabulary_at_once() -> None:
    before = RENDERER.render(states(State.ALLOWED))
    after = RENDERER.render(states(State.ALLOWED, ai_generative_training=State.DENIED))
    assert (before.content_usage, after.content_usage) == ("train-ai=y", "train-ai=n")
    assert before.content_signal == "ai-train=yes, ai-input=yes"
    assert after.content_signal == "ai-train=no, ai-input=yes"
    assert (before.x_robots_tag, after.x_robots_tag) == (None, "noai, noimageai")
    assert before.training_mining["cawg.ai_generative_training"] == "allowed"
    assert after.training_mining["cawg.ai_generative_training"] == "notAllowed"
    assert (before.rsl_permits, before.rsl_prohibits) == (("ai-all", "ai-train", "ai-input"), ())
    assert (after.rsl_permits, after.rsl_prohibits) == (("ai-input",), ("ai-train",))
    changed = {n for n in OUTPUTS if before.outputs()[n] != after.outputs()[n]}
    assert changed == {"aipref", "content-signal", "cawg", "rsl", "noai", "json", "html"}
    assert before.tdm_reservation == after.tdm_reservation == 0  # mining stays allowed


def test_generative_training_denied_alone_says_train_ai_no_since_it_is_training() -> None:
    signals = RENDERER.render(states(State.ALLOWED, ai_generative_training=State.DENIED))
    assert signals.content_usage == "train-ai=n"
    assert signals.headers()["Content-Usage"] == "train-ai=n"


def test_a_term_no_purpose_feeds_states_no_preference_and_is_left_out() -> None:
    table = SignalVocabulary(
        "t", "1", "test", (Rule("search", ("web-search",)), Rule("train-ai", ("ai-training",)))
    )
    prefs = table.preferences({"ai-training": State.DENIED})
    assert prefs == {"search": Preference.NONE, "train-ai": Preference.NO}
    assert table.spell(Preference.NONE) is None
    # AIPREF's `search` has no purpose in the ledger: it is never said, neither y nor n.
    assert "search" not in (RENDERER.render(states()).content_usage or "")


def test_a_unanimous_term_says_nothing_when_its_purposes_disagree() -> None:
    rule = Rule("ai-all", ("a", "b"), Combine.UNANIMOUS)
    assert rule.preference({"a": State.ALLOWED, "b": State.DENIED}) is Preference.NONE
    assert rule.preference({"a": State.DENIED, "b": State.DENIED}) is Preference.NO
    assert rule.preference({"a": State.ALLOWED, "b": State.ALLOWED}) is Preference.YES


def test_a_grant_with_conditions_is_cawg_constrained_and_a_reservation_where_none_exists() -> None:
    signals = RENDERER.render(states(State.ALLOWED, data_mining=State.CONSTRAINED))
    assert signals.training_mining["cawg.data_mining"] == "constrained"
    assert signals.tdm_reservation == 1  # TDMRep cannot say "under conditions": reserved,
    assert signals.tdm_policy == "https://music.example/tdm-policy"  # and the policy says how


def test_every_answer_names_the_version_of_every_vocabulary_table() -> None:
    body = RENDERER.render(states()).to_json()
    assert body["vocabularies"] == {t.name: t.version for t in signal_tables(VOCABULARY)}
    assert body["vocabularies"]["aipref"].startswith("draft-ietf-aipref-vocab-")
    assert set(body["vocabularies"]) == {
        "aipref",
        "content-signal",
        "tdmrep",
        "rsl",
        "cawg",
        "noai",
    }
    assert AIPREF.version in body["vocabularies"].values()


def test_the_cawg_assertion_has_the_training_mining_label_and_shape() -> None:
    assertion = RENDERER.render(states(State.ALLOWED, ai_training=State.DENIED)).cawg_assertion()
    assert assertion["label"] == "cawg.training-mining"
    entries = assertion["data"]["entries"]  # type: ignore[index]
    assert set(entries) == {
        "cawg.ai_generative_training",
        "cawg.ai_training",
        "cawg.ai_inference",
        "cawg.data_mining",
    }
    for entry in entries.values():
        assert set(entry) == {"use"}
        assert entry["use"] in ("allowed", "notAllowed", "constrained")


@given(st.lists(st.sampled_from(list(State)), min_size=4, max_size=4))
def test_each_digest_is_the_sha256_of_the_exact_bytes_served(values: list[State]) -> None:
    signals = RENDERER.render(dict(zip(PURPOSES, values, strict=True)))
    outputs = signals.outputs()
    assert signals.digests() == {n: hashlib.sha256(b).hexdigest() for n, b in outputs.items()}
    assert outputs["json"] == orjson.dumps(signals.statement())
    assert outputs["html"] == signals.meta_html().encode()
    headers = signals.headers()
    if "Content-Usage" in headers:
        assert outputs["aipref"] == f"Content-Usage: {headers['Content-Usage']}".encode()


def test_a_missing_state_is_refused_by_name() -> None:
    partial = states()
    del partial["data-mining"]
    with pytest.raises(ValueError, match="data-mining"):
        RENDERER.render(partial)
