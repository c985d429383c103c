"""Training datasets built from consent snapshots: registration and impacts, pure parts.

`registration` returns the `RegisterDataset` command of a verified snapshot (its decider,
in `ledger.deciders`, registers a dataset name once). `items_digest` is the
canonical digest of the pairs a dataset used. `impact_of` tells whether an item the
snapshot allowed is denied now, and which event changed it; it decides with
`ledger.decisions.decide`, the one implementation of the rules.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ledger.commands import RegisterDataset
from ledger.decisions import Question, decide
from ledger.errors import InvalidInputError
from ledger.events import ConsentExpired, Entry, EventVoided, TermsPublished
from ledger.vocabulary import Basis, check_identifier

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LABEL: Final = re.compile(r"^[^\s\x00-\x1f\x7f]{1,128}$")
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")


def check_dataset_name(name: str) -> str:
    """Return a valid dataset name or raise InvalidInputError."""
    if not _NAME.match(name):
        raise InvalidInputError(
            f"dataset name {name!r} must match [A-Za-z0-9][A-Za-z0-9._-]{{0,127}}"
        )
    return name


def items_digest(pairs: Iterable[tuple[str, str]]) -> tuple[str, int]:
    """Return (SHA-256 hex, count) of the canonical item list: unique pairs, sorted by
    (subject, content) code points, each written `subject,content\\n` in UTF-8."""
    digest = hashlib.sha256()
    count = 0
    for subject, content in sorted(set(pairs)):
        check_identifier(subject, field="item subject")
        check_identifier(content, field="item content")
        digest.update(f"{subject},{content}\n".encode())
        count += 1
    return digest.hexdigest(), count


def registration(
    name: str,
    manifest: Mapping[str, Any],
    manifest_sha256: str,
    *,
    at: datetime,
    known_at: datetime,
    model: str | None = None,
    model_version: str | None = None,
    items_sha256: str | None = None,
    items_count: int | None = None,
) -> RegisterDataset:
    """Return the command registering `name` from a verified snapshot manifest."""
    check_dataset_name(name)
    for label, value in (("model", model), ("model version", model_version)):
        if value is not None and not _LABEL.match(value):
            raise InvalidInputError(f"{label} {value!r}: 1-128 characters, no spaces")
    question = manifest["question"]
    return RegisterDataset(
        name=name,
        snapshot={
            "snapshot_id": manifest["snapshot_id"],
            "purpose": question["purpose"],
            "party": question["party"],
            "aspect": question["aspect"],
            "at": at,
            "known_at": known_at,
            "position": manifest["position"],
            "tree_size": manifest["tree_size"],
            "root_hash": manifest["root_hash"],
        },
        manifest_sha256=manifest_sha256,
        model=model,
        model_version=model_version,
        items_sha256=items_sha256,
        items_count=items_count,
    )


@dataclass(frozen=True)
class Impact:
    """An item the snapshot allowed that is denied now, and the event that changed it."""

    subject: str
    content: str | None
    basis: str
    event_id: str | None

    def to_json(self) -> dict[str, Any]:
        """Return `{subject, content, basis, event_id}` as impacts list it."""
        return {
            "subject": self.subject,
            "content": self.content,
            "basis": self.basis,
            "event_id": self.event_id,
        }


def impact_of(
    history: Sequence[Entry],
    terms: Mapping[str, TermsPublished],
    question: Question,
    position: int,
    snapshot_event_id: str | None,
) -> Impact | None:
    """Return the impact on an item the snapshot allowed (decided by `snapshot_event_id`),
    or None if `question` (the item, asked now) is still allowed.

    The event named is the void of the snapshot's deciding event if it was voided, the
    expiry record of an expired grant (the grant itself until one is recorded), else the
    revocation or erasure the decision names.
    """
    decision = decide(history, terms, question, position)
    if decision.allowed:
        return None
    known = [e.event for e in history if e.event.recorded_at <= question.known_at]
    changed: str | None = None
    for event in known:
        if isinstance(event, EventVoided) and str(event.voided_event_id) == snapshot_event_id:
            changed = str(event.event_id)
    if changed is None and decision.event_ids:
        deciding = decision.event_ids[0]
        changed = str(deciding)
        if decision.basis is Basis.GRANT_EXPIRED:
            for event in known:
                if isinstance(event, ConsentExpired) and event.grant_event_id == deciding:
                    changed = str(event.event_id)
    return Impact(question.subject, question.content, decision.basis.value, changed)
