"""AI signals follow the decisions for any third party (BRIEF §7), in every form."""

from __future__ import annotations

import pytest

from ledger.decisions import Decision
from ledger.vocabulary import Basis, ConsentModel, Purpose, Vocabulary
from projections.ai_signals import derive_signals, signal_purposes

VOCABULARY = Vocabulary()


def decisions(**allowed: bool) -> dict[str, Decision]:
    """Decisions for every signal purpose: denied unless named `purpose_name=True`."""
    answers = {}
    for purpose in signal_purposes(VOCABULARY):
        yes = allowed.get(purpose.name.replace("-", "_"), False)
        basis = Basis.EXPLICIT_GRANT if yes else Basis.OPT_IN_REQUIRED
        answers[purpose.name] = Decision(yes, basis, (), None, 7)
    return answers


def test_signals_ask_about_every_purpose_with_a_cawg_label() -> None:
    names = [p.name for p in signal_purposes(VOCABULARY)]
    assert names == ["ai-generative-training", "ai-training", "ai-inference", "data-mining"]


def test_everything_denied_reserves_all_rights() -> None:
    signals = derive_signals(decisions(), VOCABULARY, tdm_policy_url="https://x.example/p")
    body = signals.to_json()
    brief_fields = {k: body[k] for k in ("x_robots_tag", "tdm", "training_mining", "position")}
    assert brief_fields == {
        "x_robots_tag": "noai, noimageai",
        "tdm": {"tdm-reservation": 1, "tdm-policy": "https://x.example/p"},
        "training_mining": {
            "entries": {
                "cawg.ai_generative_training": {"use": "notAllowed"},
                "cawg.ai_training": {"use": "notAllowed"},
                "cawg.ai_inference": {"use": "notAllowed"},
                "cawg.data_mining": {"use": "notAllowed"},
            }
        },
        "position": 7,
    }
    assert signals.headers() == {
        "X-Robots-Tag": "noai, noimageai",
        "tdm-reservation": "1",
        "tdm-policy": "https://x.example/p",
        "Content-Usage": "train-ai=n",
        "Content-Signal": "ai-train=no, ai-input=no",
    }


def test_allowed_generative_training_and_mining_lift_noai_and_the_reservation() -> None:
    signals = derive_signals(
        decisions(ai_generative_training=True, data_mining=True),
        VOCABULARY,
        tdm_policy_url="https://x.example/p",
    )
    assert signals.x_robots_tag is None
    assert (signals.tdm_reservation, signals.tdm_policy) == (0, None)
    assert signals.headers() == {
        "tdm-reservation": "0",
        "Content-Usage": "train-ai=n",  # ai-training is still denied: training is training
        "Content-Signal": "ai-train=no, ai-input=no",
    }
    assert signals.training_mining["cawg.ai_training"] == "notAllowed"
    assert signals.training_mining["cawg.data_mining"] == "allowed"


def test_meta_tags_carry_the_same_values_escaped() -> None:
    html = derive_signals(
        decisions(), VOCABULARY, tdm_policy_url='https://x.example/p?a=1&b="2"'
    ).meta_html()
    assert '<meta name="robots" content="noai, noimageai">' in html
    assert '<meta name="tdm-reservation" content="1">' in html
    assert '<meta name="tdm-policy" content="https://x.example/p?a=1&amp;b=&quot;2&quot;">' in html
    assert html.count("<meta ") == 7


def test_a_deployment_purpose_with_a_cawg_label_gets_its_entry() -> None:
    vocabulary = VOCABULARY.with_purposes(
        [Purpose("voice-cloning", ConsentModel.OPT_IN, "ai_voice_cloning")]
    )
    answers = {
        p.name: Decision(False, Basis.OPT_IN_REQUIRED, (), None, 1)
        for p in signal_purposes(vocabulary)
    }
    signals = derive_signals(answers, vocabulary)
    assert signals.training_mining["cawg.ai_voice_cloning"] == "notAllowed"


def test_a_missing_decision_is_refused_by_name() -> None:
    partial = decisions()
    del partial["data-mining"]
    with pytest.raises(ValueError, match="data-mining"):
        derive_signals(partial, VOCABULARY)
