"""The command line's help text: the purposes of the vocabulary and worked examples."""

from __future__ import annotations

from typing import Final

from ledger.vocabulary import DEFAULT_PURPOSES, Vocabulary

EXAMPLES: Final = """\
examples:
  consent-ledger demo                          # load the SoundCloud 2024-2025 scenario
  consent-ledger terms publish 2025-05 --effective-from 2025-05-14 \\
      --clause ai-training=denied --clause personalization=granted --document terms.pdf
  consent-ledger terms accept artist-1 2025-05 --at 2025-05-20T09:30:00Z
  consent-ledger grant artist-1 ai-training --party acme-ai --content track-1 track-2
  consent-ledger check artist-1 ai-generative-training --at 2024-06-01 --json
  printf 'subject,content\\nartist-1,track-1\\n' | consent-ledger filter ai-training
  consent-ledger --database-url postgresql://localhost/ledger history artist-1
  consent-ledger export out/ && consent-ledger verify out/ --public-key log.pub
  consent-ledger serve --port 8000             # HTTP API, docs at /docs

Global flags (--database-url, --data-dir, --kafka, --json) go before or after the verb.
Exit codes: 0 done, 1 verify/audit found a problem, 2 invalid input or usage,
3 not found, 4 conflict, 5 store unavailable.
"""


def purposes_help(vocabulary: Vocabulary | None = None) -> str:
    """Return the list of purposes for `--help`: name, consent model, CAWG label."""
    purposes = (vocabulary or Vocabulary()).purposes.values()
    width = max(len(p.name) for p in DEFAULT_PURPOSES) + 2
    lines = [
        f"  {p.name:<{width}}{p.model.value}" + (f" (CAWG {p.cawg_label})" if p.cawg_label else "")
        for p in purposes
    ]
    return (
        "purposes (LEDGER_PURPOSES_FILE may add more; opt-in purposes need an explicit grant):\n"
        + "\n".join(lines)
    )
